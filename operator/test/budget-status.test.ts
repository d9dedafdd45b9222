import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertUsage, type Database } from '@ccproxy/core';
import { usageRecord } from '@ccproxy/test-harness';
import { reconcileUser, type ProxyUser } from '@ccproxy/operator';
import { openTestDatabase } from './kube-fixture.ts';

/** `status.budget` shows spend against each cap, from the usage every replica stored. */
describe('budget status of a ProxyUser', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db?.close();
  });

  const user = (budget: ProxyUser['spec']['budget']): ProxyUser => ({
    apiVersion: 'ccproxy.io/v1alpha1',
    kind: 'ProxyUser',
    metadata: { name: 'carol', namespace: 'team-status', uid: 'uid-carol' },
    spec: { displayName: '', description: '', suspended: false, ...(budget === undefined ? {} : { budget }) },
  });

  it('Ok, then Warning past the soft limit, then Exhausted; each period with its reset time', async () => {
    const first = await reconcileUser(db, user({ daily: { usd: 1 }, monthly: { tokens: 1000 }, softLimitPercent: 50 }));
    expect(first.fields?.budget).toMatchObject({
      state: 'Ok',
      day: { spentUsd: '0.00', limitUsd: '1.00', spentTokens: 0, percent: 0 },
      month: { spentTokens: 0, limitTokens: 1000, percent: 0 },
    });
    const userId = (await db.query<{ id: string }>("SELECT id::text FROM users WHERE name = 'carol'"))[0]?.id ?? '';
    const record = (id: string, inputTokens: number) =>
      usageRecord(id, { userId, accessKeyId: '1', inputTokens, outputTokens: 0 });
    await insertUsage(db, [record('status-1', 600)]);
    const warned = await reconcileUser(
      db,
      user({ daily: { usd: 1 }, monthly: { tokens: 1000 }, softLimitPercent: 50 }),
    );
    expect(warned.fields?.budget).toMatchObject({ state: 'Warning', month: { spentTokens: 600, percent: 60 } });
    const now = new Date();
    const tomorrow = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    expect((warned.fields?.budget as { day: { resetsAt: string } }).day.resetsAt).toBe(
      tomorrow.toISOString().replace('.000Z', 'Z'),
    );
    await insertUsage(db, [record('status-2', 500)]);
    const spent = await reconcileUser(db, user({ daily: { usd: 1 }, monthly: { tokens: 1000 }, softLimitPercent: 50 }));
    expect(spent.fields?.budget).toMatchObject({ state: 'Exhausted', month: { spentTokens: 1100, percent: 110 } });
    // No budget: no status.budget.
    expect((await reconcileUser(db, user(undefined))).fields?.budget).toBeUndefined();
  });
});
