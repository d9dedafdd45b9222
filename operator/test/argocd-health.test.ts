import { readFile } from 'node:fs/promises';
import { LuaFactory } from 'wasmoon';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { toKubeStatus } from '@ccproxy/operator/kube';

const script = await readFile(new URL('../../examples/argocd/health.lua', import.meta.url), 'utf8');
const factory = new LuaFactory();

/** Runs the health check as Argo CD does: `obj` is the live object, the script returns {status, message}. */
async function health(obj: unknown): Promise<{ status: string; message: string }> {
  const lua = await factory.createEngine();
  try {
    lua.global.set('obj', obj);
    return (await lua.doString(script)) as { status: string; message: string };
  } finally {
    lua.global.close();
  }
}

const condition = (type: string, status: string, reason: string, message = '') => ({ type, status, reason, message });
const object = (
  conditions: object[],
  extra: { generation?: number; observedGeneration?: number; deleting?: boolean } = {},
) => ({
  apiVersion: 'ccproxy.io/v1alpha1',
  kind: 'AccessKey',
  metadata: {
    name: 'k',
    namespace: 'team-a',
    generation: extra.generation ?? 1,
    ...(extra.deleting === true ? { deletionTimestamp: '2026-12-02T00:00:00Z' } : {}),
  },
  spec: {},
  status: { observedGeneration: extra.observedGeneration ?? 1, conditions },
});

describe('Argo CD health check (examples/argocd/health.lua)', () => {
  it('maps the operator conditions to Argo CD health', async () => {
    expect(
      await health({
        apiVersion: 'ccproxy.io/v1alpha1',
        kind: 'AccessKey',
        metadata: { name: 'k', generation: 1 },
        spec: {},
      }),
    ).toMatchObject({ status: 'Progressing' });
    expect(
      await health(
        object([
          condition('Ready', 'True', 'KeyActive', 'Access key is active.'),
          condition('Reconciling', 'False', 'KeyActive'),
          condition('Stalled', 'False', 'KeyActive'),
        ]),
      ),
    ).toEqual({ status: 'Healthy', message: 'Access key is active.' });
    expect(
      await health(
        object([
          condition('Ready', 'False', 'UserNotFound', 'no user'),
          condition('Reconciling', 'False', 'UserNotFound'),
          condition('Stalled', 'True', 'UserNotFound', 'ProxyUser team-a/x does not exist.'),
        ]),
      ),
    ).toEqual({ status: 'Degraded', message: 'ProxyUser team-a/x does not exist.' });
    expect(
      await health(
        object([
          condition('Ready', 'False', 'DependencyUnavailable'),
          condition('Reconciling', 'True', 'DependencyUnavailable', 'Waiting for the database'),
          condition('Stalled', 'False', 'DependencyUnavailable'),
        ]),
      ),
    ).toEqual({ status: 'Progressing', message: 'Waiting for the database' });
    expect(
      await health(
        object([
          condition('Ready', 'False', 'Revoked', 'Access key is revoked.'),
          condition('Reconciling', 'False', 'Revoked'),
          condition('Stalled', 'False', 'Revoked'),
        ]),
      ),
    ).toEqual({ status: 'Suspended', message: 'Access key is revoked.' });
    expect(
      await health(object([condition('Ready', 'True', 'KeyActive')], { generation: 2, observedGeneration: 1 })),
    ).toMatchObject({ status: 'Progressing', message: expect.stringContaining('generation 2') });
    expect(await health(object([condition('Ready', 'True', 'KeyActive')], { deleting: true }))).toMatchObject({
      status: 'Progressing',
      message: expect.stringContaining('Pending deletion'),
    });
  });

  it('reads the status exactly as the operator writes it', async () => {
    const status = toKubeStatus(
      undefined,
      {
        conditions: [
          condition('Ready', 'True', 'Encrypted', 'stored') as never,
          condition('Reconciling', 'False', 'Encrypted') as never,
          condition('Stalled', 'False', 'Encrypted') as never,
        ],
        fields: { fingerprint: 'sha256:0' },
      },
      3,
      new Date(),
    );
    expect(
      await health({
        apiVersion: 'ccproxy.io/v1alpha1',
        kind: 'BedrockKey',
        metadata: { name: 'b', generation: 3 },
        spec: {},
        status,
      }),
    ).toEqual({ status: 'Healthy', message: 'stored' });
  });

  it('is embedded unchanged in the argocd-cm patch for all three kinds', async () => {
    const patch = parse(await readFile(new URL('../../examples/argocd/argocd-cm.yaml', import.meta.url), 'utf8')) as {
      data: Record<string, string>;
    };
    expect(Object.keys(patch.data).sort()).toEqual(
      ['AccessKey', 'BedrockKey', 'ProxyUser'].map((kind) => `resource.customizations.health.ccproxy.io_${kind}`),
    );
    for (const embedded of Object.values(patch.data)) expect(embedded).toBe(script);
  });
});
