import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPriceTable, createLogger, insertUsage, ProxyError, type Database, type UsageRecord } from '@ccproxy/core';
import { usageRecord } from '@ccproxy/test-harness';
import { BudgetGuard } from '@ccproxy/proxy';
import { openTestDatabase, seedKey } from '../proxy-fixture.ts';

/** The guard on a real Postgres with an injected clock: periods end at 00:00 UTC (day) and on the 1st (month). */
describe('budget periods reset at their UTC boundary', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db?.close();
  });

  const usage = (keyId: string, userId: string, at: number, tokens: number, id: string): UsageRecord =>
    usageRecord(id, { occurredAt: at, userId, accessKeyId: keyId, inputTokens: tokens, outputTokens: 0 });

  async function ids(name: string): Promise<{ keyId: string; userId: string }> {
    const rows = await db.query<{ key_id: string; user_id: string }>(
      'SELECT id::text AS key_id, user_id::text FROM access_keys WHERE name = $1',
      [name],
    );
    return { keyId: rows[0]?.key_id ?? '', userId: rows[0]?.user_id ?? '' };
  }

  it.each([
    ['day', '2026-12-07T23:59:59.000Z', '2026-12-08T00:00:00.000Z', { daily: { tokens: 100 } }],
    ['month', '2026-12-31T23:59:59.000Z', '2027-01-01T00:00:00.000Z', { monthly: { tokens: 100 } }],
  ] as const)(
    'a spent %s budget is refused until %s, then served again from zero',
    async (_period, before, boundary, budget) => {
      const { name } = await seedKey(db);
      const { keyId, userId } = await ids(name);
      let now = Date.parse(before);
      const guard = new BudgetGuard({
        db,
        logger: createLogger({ level: 'silent' }),
        prices: buildPriceTable(),
        refreshMs: 1000,
        now: () => now,
      });
      await insertUsage(db, [usage(keyId, userId, now - 1000, 150, `${name}-spent`)]);
      const check = [
        {
          scope: { kind: 'key' as const, id: keyId },
          namespace: 'team-test',
          label: `access key team-test/${name}`,
          budget,
        },
      ];
      const refused = await Promise.resolve()
        .then(() => guard.admit(check))
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(refused).toBeInstanceOf(ProxyError);
      expect((refused as ProxyError).code).toBe('PRX_BUDGET_EXHAUSTED');
      expect((refused as ProxyError).message).toContain(`It resets at ${boundary}.`);
      expect((refused as ProxyError).headers?.['x-ccproxy-budget-reset']).toBe(boundary);

      now = Date.parse(boundary);
      const ticket = await guard.admit(check);
      expect(ticket.warning).toBeUndefined();
      await guard.settle(ticket, `${name}-next`, usage(keyId, userId, now, 10, `${name}-next`));
      // The old period's usage stays stored; only the new period's counts.
      expect(guard.spent(`key:${keyId}:${_period}`)?.tokens).toBe(10);
    },
  );
});
