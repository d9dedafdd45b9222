import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import {
  createTestDatabase,
  openMigratedDatabase,
  startAnthropicServer,
  type AnthropicTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';
import { agent, metric, seedKey, send, startReplicas, storedUsage, type Answer } from './governance-fixture.ts';

/** Each answer of the Anthropic test server: 25 input + 12 output tokens. */
const tokensPerRequest = 37;

/**
 * Budgets and rate limits held by two real `ccproxy proxy` processes sharing one real Postgres,
 * under concurrent load: what the replicas admit together, never what one of them alone does.
 */
describe('budgets and rate limits across two proxy replicas', () => {
  let db: Database;
  let url: string;
  let anthropic: AnthropicTestServer;
  let replicas: CcproxyProcess[];
  let stop: () => Promise<void>;

  beforeAll(async () => {
    url = await createTestDatabase(inject('postgresUrl'), 'gov');
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

  const must = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('missing');
    return value;
  };
  const first = () => must(replicas[0]);
  const second = () => must(replicas[1]);

  /** `workers` clients per replica, each sending until refused with `stopOn` or `max` answers in all. */
  async function load(key: string, workers: number, max: number, stopOn: number): Promise<Answer[]> {
    const answers: Answer[] = [];
    let stopped = false;
    const worker = async (replica: CcproxyProcess) => {
      while (!stopped && answers.length < max) {
        const answer = await send(replica.url, key);
        answers.push(answer);
        if (answer.status === stopOn) stopped = true;
      }
    };
    await Promise.all(replicas.flatMap((replica) => Array.from({ length: workers }, () => worker(replica))));
    return answers;
  }

  it('a token budget spent across both replicas overspends by at most one in-flight request per replica; the 402 says which budget and when it resets', async () => {
    const cap = 40 * tokensPerRequest + 5;
    // softLimitPercent 1: strict (one request at a time per replica, each on a fresh read) almost at once.
    const seeded = await seedKey(db, { keyLimits: { budget: { daily: { tokens: cap }, softLimitPercent: 1 } } });
    const answers = await load(seeded.key, 4, 400, 402);
    // Let every in-flight request end and every replica flush.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const after = await Promise.all(replicas.map((replica) => send(replica.url, seeded.key)));
    const usage = await storedUsage(db, seeded.keyId);
    const admitted = answers.filter((a) => a.status === 200).length;
    expect(usage.tokens, 'the budget was reached').toBeGreaterThanOrEqual(cap);
    expect(usage.tokens, 'overspend: at most one request per replica').toBeLessThanOrEqual(cap + 2 * tokensPerRequest);
    expect(usage.requests).toBe(admitted);
    for (const refused of [...answers.filter((a) => a.status !== 200), ...after]) {
      expect(refused.status).toBe(402);
      expect(refused.headers['x-should-retry']).toBe('false');
      const body = JSON.parse(refused.body) as {
        type: string;
        error: { type: string; message: string };
        request_id: string;
      };
      expect(body.type).toBe('error');
      expect(body.error.type).toBe('billing_error');
      expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
      const midnight = new Date(
        Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1),
      );
      expect(body.error.message).toContain(`daily budget of access key ${seeded.namespace}/${seeded.name} is spent`);
      expect(body.error.message).toContain(`resets at ${midnight.toISOString()}`);
    }
    expect(await metric(first().url, 'ccproxy_budget_exhausted_total{scope="key",period="day"}')).toMatch(/ [1-9]/);
  }, 120_000);

  it('a USD budget of the user counts every key of the user; the soft limit warns in a header and a metric first', async () => {
    // Sonnet 4.5: 25 × $3/M + 12 × $15/M = $0.000255 a request; $0.01 → 39 requests, the soft limit after 20.
    const first = await seedKey(db, { userLimits: { budget: { monthly: { usd: 0.01 }, softLimitPercent: 50 } } });
    const second = await seedKey(db, { owner: first });
    const warningOf = (a: Answer) => a.headers['x-ccproxy-budget-warning'];
    // 20–23 requests (4 clients stop after 20): 51–59% of the budget, on the first key.
    const below = await load(first.key, 2, 20, 402);
    expect(below.map((a) => a.status)).toEqual(below.map(() => 200));
    expect(
      below.slice(0, 5).filter((a) => warningOf(a) !== undefined),
      'no warning far below the soft limit',
    ).toEqual([]);
    // The README's precondition for the soft limit: the replicas see each other's spend within
    // ~2 s (the 1 s usage flush, then the 1 s re-read, started by the next request of each replica).
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await Promise.all(replicas.map((replica) => send(replica.url, second.key)));
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The second key of the same user: past the soft limit every admitted answer warns, until the 402.
    const past = await load(second.key, 2, 200, 402);
    const admitted = past.filter((a) => a.status === 200);
    expect(past.some((a) => a.status === 402)).toBe(true);
    expect(admitted.length, 'the rest of the budget: at most 19 requests').toBeLessThanOrEqual(19);
    for (const answer of admitted)
      expect(String(warningOf(answer))).toMatch(
        new RegExp(
          `^\\d+% of the monthly budget of user ${first.namespace}/${first.userName} is used; it resets at \\d{4}-\\d\\d-01T00:00:00.000Z$`,
        ),
      );
    for (const refused of past.filter((a) => a.status !== 200)) {
      expect(refused.status).toBe(402);
      const body = JSON.parse(refused.body) as { error: { message: string } };
      expect(body.error.message).toContain(`monthly budget of user ${first.namespace}/${first.userName} is spent`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const spent = (await storedUsage(db, first.keyId)).microUsd + (await storedUsage(db, second.keyId)).microUsd;
    expect(spent).toBeGreaterThanOrEqual(10_000);
    expect(spent, 'overspend: at most one request per replica').toBeLessThanOrEqual(10_000 + 2 * 255);
    const soft = await Promise.all(
      replicas.map((r) => metric(r.url, 'ccproxy_budget_soft_limit_total{scope="user",period="month"}')),
    );
    expect(soft.join('\n')).toMatch(/ [1-9]/);
  }, 120_000);

  it('requests per minute are held across both replicas under concurrent load: 429 rate_limit_error with retry-after', async () => {
    const rpm = 30;
    const seeded = await seedKey(db, { keyLimits: { rateLimits: { requestsPerMinute: rpm } } });
    // Start just after a minute boundary would be ideal; a window that turns during the run admits a second batch.
    const answers = await load(seeded.key, 5, 90, 0);
    const admitted = answers.filter((a) => a.status === 200).length;
    const refused = answers.filter((a) => a.status === 429);
    expect(admitted + refused.length).toBe(answers.length);
    const windows = new Set(
      (
        await db.query<{ w: string }>('SELECT window_start::text AS w FROM rate_windows WHERE scope = $1', [
          `key:${seeded.keyId}`,
        ])
      ).map((r) => r.w),
    );
    expect(admitted).toBeLessThanOrEqual(rpm * windows.size);
    expect(admitted).toBeGreaterThanOrEqual(rpm - 2 * 3);
    const one = must(refused[0]);
    expect(Number(one.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(one.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(one.headers['anthropic-ratelimit-requests-limit']).toBe(String(rpm));
    expect(one.headers['anthropic-ratelimit-requests-remaining']).toBe('0');
    const body = JSON.parse(one.body) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('rate_limit_error');
    expect(body.error.message).toContain(
      `Rate limit of access key ${seeded.namespace}/${seeded.name} reached: ${rpm} requests per minute`,
    );
  }, 120_000);

  it('concurrent streams are held across both replicas; a slot is free again once its request ends', async () => {
    const seeded = await seedKey(db, { userLimits: { rateLimits: { concurrentStreams: 3 } } });
    anthropic.respondWith(() => ({ kind: 'message', content: [{ type: 'text', text: 'slow' }], delayMs: 800 }));
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => send((i % 2 === 0 ? first() : second()).url, seeded.key)),
      );
      expect(answers.filter((a) => a.status === 200).length).toBe(3);
      const refused = answers.filter((a) => a.status === 429);
      expect(refused.length).toBe(7);
      expect(JSON.parse(must(refused[0]).body).error.message).toContain('3 concurrent streams');
      const next = await send(second().url, seeded.key);
      expect(next.status).toBe(200);
    } finally {
      anthropic.respondWith(undefined);
    }
  }, 60_000);

  it('output tokens per minute refuse once the window holds the limit, across replicas', async () => {
    const seeded = await seedKey(db, { keyLimits: { rateLimits: { outputTokensPerMinute: 12 * 10 } } });
    for (let i = 0; i < 10; i += 1)
      expect((await send((i % 2 === 0 ? first() : second()).url, seeded.key)).status).toBe(200);
    // Token counts reach the other replica within one sync (250 ms).
    await new Promise((resolve) => setTimeout(resolve, 600));
    for (const replica of replicas) {
      const refused = await send(replica.url, seeded.key);
      expect(refused.status).toBe(429);
      expect(refused.headers['anthropic-ratelimit-output-tokens-limit']).toBe('120');
    }
  }, 60_000);
});
