import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  PgDatabase,
  claimTrial,
  createLogger,
  eachRequest,
  insertUsage,
  listBreakerEvents,
  listRequests,
  recordPlanFailure,
  recordPlanSuccess,
  usageBreakdown,
  type Database,
  type UsageRecord,
} from '@ccproxy/core';
import { createTestDatabase, openMigratedDatabase } from '@ccproxy/test-harness';

const policy = { failures: 3, windowMs: 60_000, openMs: 0 };
const now = Date.now();
const page = { start: 0, end: 100, descending: true };

/**
 * The request log's and breaker history's storage on a real Postgres: failures stored beside
 * metered requests but never in the aggregates, and one breaker_events row per transition
 * however many replicas (connections) race on it.
 */
describe('request log and breaker history storage', () => {
  let db: Database;
  let other: Database;
  let keyId: string;
  let userId: string;

  beforeAll(async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'reqlog');
    db = await openMigratedDatabase({ url });
    // A second pool on the same database: another replica.
    other = new PgDatabase({ url, logger: createLogger({ level: 'silent' }) });
    const [user] = await db.query<{ id: string }>(
      "INSERT INTO users (namespace, name, uid) VALUES ('team', 'olga', 'u1') RETURNING id::text",
    );
    userId = user?.id ?? '';
    const [key] = await db.query<{ id: string }>(
      `INSERT INTO access_keys (namespace, name, uid, user_id, key_hash, key_prefix)
       VALUES ('team', 'olga-key', 'k1', $1, 'hash', 'ak_x') RETURNING id::text`,
      [userId],
    );
    keyId = key?.id ?? '';
  });
  afterAll(async () => {
    await other?.close();
    await db?.close();
  });

  const record = (requestId: string, fields: Partial<UsageRecord> = {}): UsageRecord => ({
    requestId,
    occurredAt: now,
    userId,
    accessKeyId: keyId,
    provider: 'bedrock',
    failover: true,
    modelRequested: 'claude-sonnet-4-5',
    modelServed: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
    inputTokens: 100,
    outputTokens: 50,
    cacheReadTokens: 10,
    cacheCreationTokens: 5,
    latencyMs: 12,
    ttfbMs: 4,
    status: 200,
    complete: true,
    ...fields,
  });

  it('stores failures beside metered requests, outside the aggregates, and filters them by outcome', async () => {
    await insertUsage(db, [
      record('r-ok'),
      record('r-client', { provider: 'plan', failover: false, status: 400, metered: false, inputTokens: 0 }),
      record('r-proxy', {
        provider: null,
        status: 503,
        metered: false,
        errorCode: 'PRX_UNAVAILABLE',
        complete: false,
        modelRequested: null,
        modelServed: null,
      }),
      record('r-cut', { status: 200, complete: false }),
    ]);
    const all = await listRequests(db, { from: now - 1000, to: now + 1000 }, { sort: 'occurredAt', ...page });
    expect(all.total).toBe(4);
    const byId = new Map(all.rows.map((row) => [row.id, row]));
    expect(byId.get('r-ok')).toMatchObject({ outcome: 'ok', provider: 'bedrock', userId: 'team/olga', metered: true });
    expect(byId.get('r-ok')?.costMicroUsd).toBeGreaterThan(0);
    expect(byId.get('r-client')).toMatchObject({ outcome: 'client_error', costMicroUsd: null, metered: false });
    expect(byId.get('r-proxy')).toMatchObject({
      outcome: 'upstream_error',
      provider: null,
      errorCode: 'PRX_UNAVAILABLE',
    });
    expect(byId.get('r-cut')).toMatchObject({ outcome: 'incomplete' });
    for (const [outcome, id] of [
      ['ok', 'r-ok'],
      ['client_error', 'r-client'],
      ['upstream_error', 'r-proxy'],
      ['incomplete', 'r-cut'],
    ] as const) {
      const found = await listRequests(db, { from: now - 1000, to: now + 1000, outcome }, { sort: 'status', ...page });
      expect(found.rows.map((row) => row.id)).toEqual([id]);
    }
    const none = await listRequests(
      db,
      { from: now - 1000, to: now + 1000, provider: 'none' },
      { sort: 'status', ...page },
    );
    expect(none.rows.map((row) => row.id)).toEqual(['r-proxy']);
    // Free text: each word a substring of user, key or model; LIKE's wildcards are literal.
    const text = async (q: string) =>
      (await listRequests(db, { from: now - 1000, to: now + 1000, q }, { sort: 'occurredAt', ...page })).total;
    expect(await text('OLGA-KEY sonnet')).toBe(3);
    expect(await text('team/olga')).toBe(4);
    expect(await text('%')).toBe(0);
    expect(await text('olga nothing-like-this')).toBe(0);
    // Only the metered requests are in the roll-ups (two of four), and so in the breakdown.
    const [sum] = await db.query<{ n: string }>(
      "SELECT sum(requests)::text AS n FROM usage_aggregates WHERE bucket = 'day'",
    );
    expect(sum?.n).toBe('2');
    const byModel = await usageBreakdown(db, { by: 'model', bucket: 'hour', from: now - 1000, to: now + 1000 });
    expect(byModel.map((row) => [row.group, row.requests])).toEqual([
      ['global.anthropic.claude-sonnet-4-5-20250929-v1:0', 2],
    ]);
    const byProvider = await usageBreakdown(db, { by: 'provider', bucket: 'month', from: now - 1000, to: now + 1000 });
    expect(byProvider).toHaveLength(1);
    expect(byProvider[0]?.costMicroUsd).toBeGreaterThan(0);
  });

  it('exports every matching row once, newest first, across keyset batches', async () => {
    await insertUsage(
      db,
      Array.from({ length: 25 }, (_, i) => record(`batch-${String(i).padStart(2, '0')}`, { occurredAt: now + 5000 })),
    );
    const seen: string[] = [];
    for await (const row of eachRequest(db, { from: now + 4000, to: now + 6000 }, 7)) seen.push(row.id);
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    expect(seen).toEqual([...seen].sort().reverse());
  });

  it('writes one breaker_events row per opening however many replicas race, closes it, counts failed trials', async () => {
    // Ten failures at once from two "replicas": the breaker opens once.
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        recordPlanFailure(i % 2 === 0 ? db : other, keyId, policy, i < 5 ? 'status_529' : 'unreachable'),
      ),
    );
    let { rows } = await listBreakerEvents(db, {}, page);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ accessKeyId: 'team/olga-key', closedAt: null, failures: 3, reopened: 0 });
    expect(rows[0]?.reasons).toHaveLength(3);
    // Bedrock failover requests while open are counted (the ones stored above, at or after the opening).
    await insertUsage(db, [record('while-open', { occurredAt: Date.now() + 10 })]);
    // A half-open trial that fails opens it again: the same event, one failed trial more.
    expect(await claimTrial(db, keyId, policy)).toBe(true);
    await recordPlanFailure(db, keyId, policy, 'status_500');
    ({ rows } = await listBreakerEvents(db, { q: 'olga-key status_529' }, page));
    expect(rows).toHaveLength(1);
    expect(rows[0]?.reopened).toBe(1);
    // The failover row above is stamped 10 ms ahead: close only after it, or it falls outside.
    await new Promise((resolve) => setTimeout(resolve, 30));
    await recordPlanSuccess(other, keyId);
    await recordPlanSuccess(db, keyId);
    ({ rows } = await listBreakerEvents(db, {}, page));
    expect(rows).toHaveLength(1);
    expect(rows[0]?.closedAt).not.toBeNull();
    expect(rows[0]?.bedrockRequests).toBeGreaterThanOrEqual(1);
    expect(rows[0]?.openMs).toBeGreaterThanOrEqual(0);
    // A new streak that opens it again is a second event.
    await Promise.all([1, 2, 3].map(() => recordPlanFailure(db, keyId, policy, 'status_529')));
    ({ rows } = await listBreakerEvents(db, {}, page));
    expect(rows).toHaveLength(2);
    expect(rows[0]?.reasons).toEqual(['status_529', 'status_529', 'status_529']);
  });
});
