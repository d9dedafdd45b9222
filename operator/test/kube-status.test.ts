import { describe, expect, it } from 'vitest';
import { firstSightStatus, statusChanged, toKubeStatus } from '@ccproxy/operator/kube';

const ready = (status: 'True' | 'False', reason: string) => ({
  conditions: [
    { type: 'Ready' as const, status, reason, message: `${reason} message` },
    { type: 'Reconciling' as const, status: 'False' as const, reason, message: '' },
    { type: 'Stalled' as const, status: 'False' as const, reason, message: '' },
  ],
});

/** Status is computed purely: transitions keep their time, unchanged statuses are not rewritten. */
describe('Kubernetes status', () => {
  const t0 = new Date('2026-12-02T10:00:00.123Z');
  const t1 = new Date('2026-12-02T10:05:00.000Z');

  it('starts with Ready=Unknown and Reconciling=True, so kstatus reads it as in progress', () => {
    const status = toKubeStatus(undefined, firstSightStatus(4), 4, t0);
    expect(status.observedGeneration).toBe(4);
    expect(status.conditions.map((c) => `${c.type}=${c.status}`)).toEqual([
      'Ready=Unknown',
      'Reconciling=True',
      'Stalled=False',
    ]);
    expect(status.conditions[0]?.lastTransitionTime).toBe('2026-12-02T10:00:00Z');
  });

  it('keeps lastTransitionTime while a condition keeps its status, and moves it when the status flips', () => {
    const first = toKubeStatus(undefined, ready('True', 'KeyActive'), 1, t0);
    const same = toKubeStatus(first, ready('True', 'KeyActive'), 1, t1);
    expect(statusChanged(first, same)).toBe(false);
    const revoked = toKubeStatus(first, ready('False', 'Revoked'), 2, t1);
    expect(statusChanged(first, revoked)).toBe(true);
    expect(revoked.conditions[0]).toMatchObject({
      status: 'False',
      reason: 'Revoked',
      lastTransitionTime: '2026-12-02T10:05:00Z',
      observedGeneration: 2,
    });
    // Reconciling stayed False: its transition time is the original one, only its reason changed.
    expect(revoked.conditions[1]).toMatchObject({
      status: 'False',
      reason: 'Revoked',
      lastTransitionTime: '2026-12-02T10:00:00Z',
    });
  });

  it('puts kind-specific fields at the top of status', () => {
    const status = toKubeStatus(
      undefined,
      { ...ready('True', 'KeyActive'), fields: { keyPrefix: 'ak_abcdefg' } },
      1,
      t0,
      { breaker: { state: 'closed' } },
    );
    expect(status).toMatchObject({ keyPrefix: 'ak_abcdefg', breaker: { state: 'closed' } });
  });
});
