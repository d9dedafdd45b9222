import { describe, expect, it } from 'vitest';
import { EventRecorder } from '../src/kube/event-recorder.ts';
import type { KubeObject } from '../src/kube/kube-client.ts';
import { silent } from './kube-fixture.ts';

/**
 * Events at scale: every Warning on its own object, Normal Events one per object while few, and
 * combined into one Event per window when many alike (namespace, kind, reason) come at once.
 */
interface Recorded {
  kind: string;
  name: string;
  type: string;
  reason: string;
  message: string;
}

function recorderWith(options: { burst: number; windowMs: number }) {
  const recorded: Recorded[] = [];
  const client = {
    createEvent: async (
      involved: { kind: string; object: KubeObject },
      type: 'Normal' | 'Warning',
      reason: string,
      message: string,
    ) => {
      recorded.push({ kind: involved.kind, name: involved.object.metadata.name, type, reason, message });
    },
  };
  return { recorder: new EventRecorder(client, silent, options), recorded };
}

const object = (name: string, namespace = 'team-a'): KubeObject => ({
  metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: '1' },
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('EventRecorder', () => {
  it('records every Warning on its own object, however many', async () => {
    const { recorder, recorded } = recorderWith({ burst: 3, windowMs: 60_000 });
    for (let i = 0; i < 25; i += 1)
      await recorder.record('AccessKey', object(`k${i}`), 'Warning', 'SecretInvalid', 'bad');
    expect(recorded.map((e) => e.name)).toEqual(Array.from({ length: 25 }, (_, i) => `k${i}`));
    await recorder.stop();
    expect(recorded).toHaveLength(25);
  });

  it('records a burst of Normal Events one per object, then one combined Event for the rest of the window', async () => {
    const { recorder, recorded } = recorderWith({ burst: 3, windowMs: 100 });
    for (let i = 0; i < 30; i += 1)
      await recorder.record('AccessKey', object(`k${i}`), 'Normal', 'KeyActive', 'Access key is active.');
    expect(recorded.map((e) => e.name)).toEqual(['k0', 'k1', 'k2']);
    await expect.poll(() => recorded.length, { timeout: 2_000, interval: 20 }).toBe(4);
    const combined = recorded[3];
    expect(combined).toMatchObject({ kind: 'AccessKey', name: 'k29', type: 'Normal', reason: 'KeyActive' });
    expect(combined?.message).toMatch(/^\(combined from similar events\): 27 AccessKeys: k3, k4, .*k22 and 7 more\./);
    // A new window: one per object again.
    await sleep(120);
    await recorder.record('AccessKey', object('late'), 'Normal', 'KeyActive', 'Access key is active.');
    expect(recorded.at(-1)?.name).toBe('late');
  });

  it('keeps separate budgets per namespace, kind and reason', async () => {
    const { recorder, recorded } = recorderWith({ burst: 2, windowMs: 60_000 });
    for (const [kind, namespace, reason] of [
      ['AccessKey', 'a', 'KeyActive'],
      ['AccessKey', 'b', 'KeyActive'],
      ['ProxyUser', 'a', 'Reconciled'],
      ['AccessKey', 'a', 'KeyRotated'],
    ] as const)
      for (let i = 0; i < 2; i += 1)
        await recorder.record(kind, object(`${kind}${i}`, namespace), 'Normal', reason, 'm');
    expect(recorded).toHaveLength(8);
    await recorder.stop();
    expect(recorded).toHaveLength(8);
  });

  it('records what it holds when stopped (a term of leadership ends)', async () => {
    const { recorder, recorded } = recorderWith({ burst: 1, windowMs: 60_000 });
    for (let i = 0; i < 5; i += 1) await recorder.record('ProxyUser', object(`u${i}`), 'Normal', 'Reconciled', 'ok');
    expect(recorded).toHaveLength(1);
    await recorder.stop();
    expect(recorded).toHaveLength(2);
    expect(recorded[1]?.message).toMatch(/^\(combined from similar events\): 4 ProxyUsers: u1, u2, u3, u4\./);
  });
});
