import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { upsertTeamBudget, type Database } from '@ccproxy/core';
import {
  createTestDatabase,
  openMigratedDatabase,
  startAnthropicServer,
  type AnthropicTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';
import { agent, seedKey, send, startReplicas, storedUsage, type Answer } from './governance-fixture.ts';

/** Each answer of the Anthropic test server: 25 input + 12 output tokens. */
const tokensPerRequest = 37;

/**
 * A TeamBudget (its `team_budgets` row, as the operator writes it) held by two real `ccproxy
 * proxy` processes on one Postgres, over every key of every user of the namespace; its soft-limit
 * and exhausted crossings recorded once each, whichever replica saw them first.
 */
describe('team budget across two proxy replicas', () => {
  let db: Database;
  let anthropic: AnthropicTestServer;
  let replicas: CcproxyProcess[];
  let stop: () => Promise<void>;

  beforeAll(async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'team');
    db = await openMigratedDatabase({ url });
    anthropic = await startAnthropicServer();
    ({ replicas, stop } = await startReplicas(2, { DATABASE_URL: url, ANTHROPIC_UPSTREAM_URL: anthropic.url }));
  }, 60_000);
  afterAll(async () => {
    await stop?.();
    await anthropic?.close();
    await db?.close();
    await agent.close();
  });

  it('every key of every user of the namespace counts; overspend at most one request per replica; one crossing row per kind', async () => {
    const namespace = 'team-budgeted';
    const alice = await seedKey(db, { namespace });
    const aliceSecond = await seedKey(db, { owner: alice });
    const bob = await seedKey(db, { namespace });
    const outsider = await seedKey(db, { namespace: 'team-other' });
    const cap = 30 * tokensPerRequest + 5;
    await upsertTeamBudget(db, {
      namespace,
      name: 'team',
      uid: 'tb-1',
      budget: { daily: { tokens: cap }, softLimitPercent: 1 },
    });
    // The replicas re-read team budgets on the keys' NOTIFY.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const keys = [alice.key, aliceSecond.key, bob.key];
    const answers: Answer[] = [];
    let stopped = false;
    await Promise.all(
      replicas.flatMap((replica, r) =>
        keys.map(async (key, k) => {
          while (!stopped && answers.length < 300) {
            const answer = await send(replica.url, keys[(k + r + answers.length) % keys.length] ?? key);
            answers.push(answer);
            if (answer.status === 402) stopped = true;
          }
        }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const spent = (await Promise.all([alice, aliceSecond, bob].map((seeded) => storedUsage(db, seeded.keyId)))).reduce(
      (sum, usage) => sum + usage.tokens,
      0,
    );
    expect(spent, 'the team budget was reached').toBeGreaterThanOrEqual(cap);
    expect(spent, 'overspend: at most one request per replica').toBeLessThanOrEqual(cap + 2 * tokensPerRequest);
    // Every key of the team is refused now, on both replicas; a key of another namespace is not.
    const midnight = new Date(
      Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1),
    ).toISOString();
    for (const replica of replicas)
      for (const key of keys) {
        const refused = await send(replica.url, key);
        expect(refused.status).toBe(402);
        const body = JSON.parse(refused.body) as { error: { type: string; message: string } };
        expect(body.error.type).toBe('billing_error');
        expect(body.error.message).toContain(`The daily budget of team ${namespace} is spent`);
        expect(body.error.message).toContain(`It resets at ${midnight}.`);
      }
    expect((await send(replicas[0]?.url ?? '', outsider.key)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const crossings = await db.query<{ kind: string; namespace: string; message: string; resets_at: string }>(
      `SELECT kind, namespace, message, to_char(resets_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') AS resets_at
         FROM budget_crossings WHERE scope = $1 ORDER BY kind`,
      [`team:${namespace}`],
    );
    expect(crossings.map((c) => c.kind)).toEqual(['Exhausted', 'SoftLimit']);
    for (const crossing of crossings) {
      expect(crossing.namespace).toBe(namespace);
      expect(crossing.resets_at).toBe(midnight.slice(0, 19));
      expect(crossing.message).toContain(`daily budget of team ${namespace}`);
      expect(crossing.message).toContain(midnight);
    }
    expect(crossings[0]?.message).toMatch(/is spent \(\d+ tokens used of \d+\)/);
    expect(crossings[1]?.message).toMatch(/soft limit 1%: \d+ tokens used of \d+/);
    // No other scope crossed: the keys and users have no budgets of their own.
    expect((await db.query('SELECT 1 FROM budget_crossings WHERE scope <> $1', [`team:${namespace}`])).length).toBe(0);
  }, 120_000);
});
