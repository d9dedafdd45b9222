import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import {
  createTestDatabase,
  openMigratedDatabase,
  startAnthropicServer,
  startThrowawayPostgres,
  type AnthropicTestServer,
  type CcproxyProcess,
  type ThrowawayPostgres,
} from '@ccproxy/test-harness';
import { agent, seedKey, send, startReplicas, storedUsage, type Answer } from './governance-fixture.ts';

const outageMs = 4000;

/**
 * Postgres dies under load while budgets and rate limits apply (two real `ccproxy proxy`
 * processes on a cluster of this file's own): what each limit does without it, that nothing
 * crashes or is lost, and that every limit works again once it is back.
 */
describe('budgets and rate limits through a Postgres outage', () => {
  let postgres: ThrowawayPostgres;
  let db: Database;
  let anthropic: AnthropicTestServer;
  let replicas: CcproxyProcess[];
  let stop: () => Promise<void>;

  beforeAll(async () => {
    postgres = await startThrowawayPostgres();
    const url = await createTestDatabase(postgres.url, 'govout');
    db = await openMigratedDatabase({ url }, { reconnectDelayMs: 100 });
    anthropic = await startAnthropicServer();
    anthropic.respondWith((body) => {
      const text = body.messages?.at(-1)?.content;
      if (text === 'slow') return { kind: 'message', content: [{ type: 'text', text }], delayMs: 50 };
      if (text === 'slower') return { kind: 'message', content: [{ type: 'text', text }], delayMs: 1500 };
      return undefined;
    });
    ({ replicas, stop } = await startReplicas(2, { DATABASE_URL: url, ANTHROPIC_UPSTREAM_URL: anthropic.url }));
  }, 90_000);
  afterAll(async () => {
    await stop?.();
    await anthropic?.close();
    await db?.close();
    await postgres?.stop();
    await agent.close();
  });

  const replica = (i: number): CcproxyProcess => {
    const found = replicas[i % 2];
    if (found === undefined) throw new Error('no replica');
    return found;
  };
  const errorOf = (answer: Answer) => JSON.parse(answer.body) as { error: { type: string; message: string } };

  it('admits within what each replica already holds, refuses the rest with a clear 503, loses no usage record or token count, and enforces every limit again after', async () => {
    // Served through the outage: a budget cached far below its soft limit, request and token
    // leases far from their limits.
    const held = await seedKey(db, {
      keyLimits: {
        budget: { daily: { tokens: 10_000_000 } },
        rateLimits: { requestsPerMinute: 6000, outputTokensPerMinute: 10_000_000 },
      },
    });
    // Needs Postgres for each request: a concurrent-streams slot; a budget past its soft limit (strict).
    const streams = await seedKey(db, { keyLimits: { rateLimits: { concurrentStreams: 4 } } });
    const strict = await seedKey(db, {
      keyLimits: { budget: { daily: { tokens: 10_000_000 }, softLimitPercent: 1 } },
    });
    await db.query(
      `INSERT INTO usage_aggregates (bucket, bucket_start, access_key_id, user_id, provider, requests, input_tokens)
       SELECT 'hour', date_trunc('hour', now()), a.id, a.user_id, 'plan', 1, 200000 FROM access_keys a WHERE a.id = $1`,
      [strict.keyId],
    );
    // Requests per minute 20: a lease of 2 per replica, one used before the outage.
    const leased = await seedKey(db, { keyLimits: { rateLimits: { requestsPerMinute: 20 } } });
    // Request leases are per UTC minute: one that begins during the outage has none (its
    // requests get the 503, as the README says). This test is about a lease held, so it runs
    // from the seeding to the end of the outage inside one minute (seen failing in a full run
    // when the outage straddled one: every held-key request after it was refused).
    const leftInMinute = 60_000 - (Date.now() % 60_000);
    if (leftInMinute < 30_000) await new Promise((resolve) => setTimeout(resolve, leftInMinute + 200));
    const minute = Math.floor(Date.now() / 60_000);
    // Every key confirmed and every limit read or leased on both replicas before the outage.
    for (const r of [0, 1])
      for (const s of [held, streams, strict, leased]) expect((await send(replica(r).url, s.key)).status).toBe(200);

    const answers: Answer[] = [];
    let running = true;
    const worker = async (r: number) => {
      while (running) answers.push(await send(replica(r).url, held.key, { text: 'slow' }));
    };
    const load = Promise.all([0, 0, 1, 1].map(worker));
    // Holds a stream slot when Postgres goes and ends during the outage: its release cannot reach Postgres then.
    const slotHolder = send(replica(0).url, streams.key, { text: 'slower' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await postgres.pause();
    const during = answers.length;
    try {
      await new Promise((resolve) => setTimeout(resolve, outageMs / 4));
      for (const r of [0, 1]) {
        // The stream slot cannot be taken: 503, retried by Claude Code, never served past the limit.
        const slot = await send(replica(r).url, streams.key);
        expect(slot.status).toBe(503);
        expect(errorOf(slot).error).toEqual({
          type: 'overloaded_error',
          message: 'Rate limits cannot be checked right now; try again shortly.',
        });
        // A strict budget cannot be read: 503 PRX_BUDGET_UNAVAILABLE, never served unmetered.
        const budget = await send(replica(r).url, strict.key);
        expect(budget.status).toBe(503);
        expect(errorOf(budget).error).toEqual({
          type: 'overloaded_error',
          message: 'The proxy cannot check the budget right now; try again shortly.',
        });
        // The rest of the lease is served, then no new lease can be taken.
        expect((await send(replica(r).url, leased.key)).status, 'the request left in the lease').toBe(200);
        const unleased = await send(replica(r).url, leased.key);
        expect(unleased.status).toBe(503);
        expect(errorOf(unleased).error.message).toBe('Rate limits cannot be checked right now; try again shortly.');
      }
      await new Promise((resolve) => setTimeout(resolve, (outageMs * 3) / 4));
    } finally {
      await postgres.resume();
    }
    expect(Math.floor(Date.now() / 60_000), 'the outage ended in the minute it began').toBe(minute);
    const outageAnswers = answers.slice(during);
    running = false;
    await load;
    expect(outageAnswers.length, 'load went on through the outage').toBeGreaterThan(20);
    expect(
      answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body}`),
      'the held key is served throughout',
    ).toEqual([]);
    for (const r of replicas) expect(r.child.exitCode, 'no replica crashed').toBeNull();
    expect((await slotHolder).status).toBe(200);
    // The slot released during the outage is released once Postgres is back, not a lease (60 s) later.
    await expect
      .poll(
        async () =>
          (await db.query('SELECT 1 FROM stream_slots WHERE scope = $1', [`key:${streams.keyId}`]).catch(() => [1]))
            .length,
        { timeout: 3000, interval: 100 },
      )
      .toBe(0);

    // Every limit works again once Postgres is back.
    for (const r of [0, 1]) {
      await expect.poll(async () => (await send(replica(r).url, streams.key)).status, { timeout: 10_000 }).toBe(200);
      await expect.poll(async () => (await send(replica(r).url, strict.key)).status, { timeout: 10_000 }).toBe(200);
      await expect.poll(async () => (await send(replica(r).url, leased.key)).status, { timeout: 10_000 }).toBe(200);
    }
    // Nothing lost: every answered request's usage row (spooled during the outage) and its tokens in the rate windows.
    const admitted = answers.length + 2;
    await expect
      .poll(async () => (await storedUsage(db, held.keyId)).requests, { timeout: 15_000, interval: 200 })
      .toBe(admitted);
    expect((await storedUsage(db, held.keyId)).tokens).toBe(admitted * 37);
    await expect
      .poll(
        async () =>
          Number(
            (
              await db.query<{ t: string }>(
                'SELECT coalesce(sum(output_tokens), 0)::text AS t FROM rate_windows WHERE scope = $1',
                [`key:${held.keyId}`],
              )
            )[0]?.t,
          ),
        { timeout: 5000, interval: 100 },
      )
      .toBe(admitted * 12);
    // The budget counts them too: the spend the replicas read back is the stored one.
    const spent = await db.query<{ tokens: string }>(
      `SELECT coalesce(sum(input_tokens + output_tokens), 0)::text AS tokens FROM usage_aggregates WHERE bucket = 'hour' AND access_key_id = $1`,
      [held.keyId],
    );
    expect(Number(spent[0]?.tokens)).toBe(admitted * 37);
    const logs = replicas.flatMap((r) => r.output).join('\n');
    expect(logs).not.toMatch(/unhandled|uncaught/i);
  }, 120_000);
});
