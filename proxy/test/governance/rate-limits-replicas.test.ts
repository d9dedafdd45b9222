import { once } from 'node:events';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Database, KeyWrapper } from '@ccproxy/core';
import {
  createTestDatabase,
  openMigratedDatabase,
  renderSse,
  startAnthropicServer,
  startBedrockServer,
  type AnthropicTestServer,
  type BedrockTestServer,
  type CcproxyProcess,
  type Reply,
} from '@ccproxy/test-harness';
import { agent, kmsForReplicas, seedKey, send, startReplicas, type Answer } from './governance-fixture.ts';

const minuteMs = 60_000;
const bedrockApiKey = 'bedrock-governance-key';
/** A slot's lease on these replicas (CCPROXY_STREAM_SLOT_LEASE_MS): renewed every second. */
const slotLeaseMs = 3000;

/** Waits for a new UTC minute when fewer than `needMs` are left in this one: a run stays in one rate window. */
async function freshMinute(needMs: number): Promise<void> {
  const left = minuteMs - (Date.now() % minuteMs);
  if (left < needMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

/** An SSE answer of `events` events, `delayMs` apart, that then ends, stalls or breaks off. */
function stream(events: number, delayMs: number, then: 'end' | 'stall' | 'reset'): Reply {
  const all = renderSse({
    id: 'msg_governance',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-5-20250929',
    content: Array.from({ length: 10 }, (_, i) => ({ type: 'text' as const, text: `part ${i} of a long answer` })),
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 25, output_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  });
  return { kind: 'raw', chunks: then === 'end' ? all : all.slice(0, events), delayMs, then };
}

/** Rate limits held by two real `ccproxy proxy` processes on one real Postgres, under concurrent load. */
describe('rate limits across proxy replicas', () => {
  let db: Database;
  let url: string;
  let anthropic: AnthropicTestServer;
  let bedrock: BedrockTestServer;
  let replicas: CcproxyProcess[];
  let env: Record<string, string>;
  let wrapper: KeyWrapper;
  let stop: () => Promise<void>;
  const extra: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    url = await createTestDatabase(inject('postgresUrl'), 'govrate');
    db = await openMigratedDatabase({ url });
    anthropic = await startAnthropicServer();
    bedrock = await startBedrockServer({ apiKey: bedrockApiKey });
    const kms = await kmsForReplicas();
    wrapper = kms.wrapper;
    env = {
      ...kms.env,
      DATABASE_URL: url,
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
      CCPROXY_STREAM_SLOT_LEASE_MS: String(slotLeaseMs),
    };
    // Long answers, streams that stall or break off, and Plan failures, by the prompt's text.
    anthropic.respondWith((body) => {
      const text = body.messages?.at(-1)?.content;
      if (text === 'slow') return { kind: 'message', content: [{ type: 'text', text: 'slow' }], delayMs: 100 };
      if (text === 'long-stream') return stream(0, 200, 'end');
      if (text === 'stall-stream') return stream(3, 10, 'stall');
      if (text === 'die-stream') return stream(4, 300, 'reset');
      if (text === 'fail-429')
        return {
          kind: 'error',
          status: 429,
          type: 'rate_limit_error',
          message: 'Rate limited',
          headers: { 'retry-after': '20' },
        };
      if (text === 'fail-529') return { kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' };
      return undefined;
    });
    ({ replicas, stop } = await startReplicas(2, env));
  }, 90_000);
  afterAll(async () => {
    for (const cleanUp of extra) await cleanUp();
    await stop?.();
    await Promise.all([anthropic?.close(), bedrock?.close()]);
    await db?.close();
    await agent.close();
  });

  const replica = (i: number): CcproxyProcess => {
    const found = replicas[i % replicas.length];
    if (found === undefined) throw new Error('no replica');
    return found;
  };

  /** `workers` clients per replica, each sending until its first 429 (at most `max` answers in all). */
  async function loadUntilRefused(key: string, workers: number, max: number) {
    const answers: Array<Answer & { replica: number }> = [];
    const worker = async (r: number) => {
      while (answers.length < max) {
        const answer = await send(replica(r).url, key, { text: 'slow' });
        answers.push({ ...answer, replica: r });
        if (answer.status !== 200) return;
      }
    };
    await Promise.all([0, 1].flatMap((r) => Array.from({ length: workers }, () => worker(r))));
    return answers;
  }

  const windowOf = async (scope: string) =>
    db.query<{ requests: string; input_tokens: string; output_tokens: string; ws: number }>(
      `SELECT requests::text, input_tokens::text, output_tokens::text, (extract(epoch FROM window_start) * 1000)::float8 AS ws
         FROM rate_windows WHERE scope = $1`,
      [scope],
    );

  it('input and output tokens per minute: admitted while the window counts less than the limit, overshoot bounded by concurrency, 429 with retry-after and anthropic-ratelimit-* headers', async () => {
    // Per request 25 input and 12 output tokens; limits of 100 requests' worth.
    const cases = [
      { kind: 'output', header: 'output-tokens', per: 12, limit: 1200, column: 'output_tokens' as const },
      { kind: 'input', header: 'input-tokens', per: 25, limit: 2500, column: 'input_tokens' as const },
    ];
    const workers = 4;
    const seeded = await Promise.all(
      cases.map((c) =>
        seedKey(db, {
          keyLimits: {
            rateLimits: c.kind === 'output' ? { outputTokensPerMinute: c.limit } : { inputTokensPerMinute: c.limit },
          },
        }),
      ),
    );
    await freshMinute(20_000);
    const before = Date.now();
    const windowEnd = Math.floor(before / minuteMs) * minuteMs + minuteMs;
    const loads = await Promise.all(seeded.map((s) => loadUntilRefused(s.key, workers, 400)));
    const after = Date.now();
    expect(after, 'the load ran inside one minute window').toBeLessThan(windowEnd);
    // The last settles reach Postgres within a sync.
    await new Promise((resolve) => setTimeout(resolve, 800));
    for (const [i, c] of cases.entries()) {
      const { namespace, name, keyId } = seeded[i] ?? { namespace: '', name: '', keyId: '' };
      const answers = loads[i] ?? [];
      const admitted = answers.filter((a) => a.status === 200).length;
      const refused = answers.filter((a) => a.status !== 200);
      const windows = await windowOf(`key:${keyId}`);
      expect(windows.length).toBe(1);
      const counted = Number(windows[0]?.[c.column]);
      expect(counted, `every admitted request's ${c.kind} tokens are counted`).toBe(admitted * c.per);
      expect(counted, 'the limit was reached').toBeGreaterThanOrEqual(c.limit);
      // The README's bound: the requests in flight when the limit is reached (one per client, 8
      // here) plus the few another replica admits in the round trip before it sees the count.
      // Measured 5–7 requests over; 17 without the near mode (tokens 250 ms stale).
      expect(counted, 'overshoot: at most 1.5 requests per concurrent client').toBeLessThanOrEqual(
        c.limit + 1.5 * 2 * workers * c.per,
      );
      expect(new Set(refused.map((a) => a.replica)), 'both replicas refuse').toEqual(new Set([0, 1]));
      for (const answer of refused) {
        expect(answer.status).toBe(429);
        const body = JSON.parse(answer.body) as { type: string; error: { type: string; message: string } };
        expect(body.type).toBe('error');
        expect(body.error.type).toBe('rate_limit_error');
        expect(body.error.message).toContain(
          `Rate limit of access key ${namespace}/${name} reached: ${c.limit} ${c.kind} tokens per minute`,
        );
        const retryAfter = Number(answer.headers['retry-after']);
        expect(retryAfter).toBeGreaterThanOrEqual(Math.ceil((windowEnd - after) / 1000));
        expect(retryAfter).toBeLessThanOrEqual(Math.ceil((windowEnd - before) / 1000));
        expect(answer.headers[`anthropic-ratelimit-${c.header}-limit`]).toBe(String(c.limit));
        expect(answer.headers[`anthropic-ratelimit-${c.header}-remaining`]).toBe('0');
        expect(answer.headers[`anthropic-ratelimit-${c.header}-reset`]).toBe(new Date(windowEnd).toISOString());
      }
    }
    // At retry-after the window has turned: both replicas admit both keys again.
    await new Promise((resolve) => setTimeout(resolve, windowEnd - Date.now() + 100));
    for (const s of seeded)
      for (const r of [0, 1]) expect((await send(replica(r).url, s.key)).status, 'admitted at retry-after').toBe(200);
  }, 150_000);

  /** A streaming request whose first bytes have arrived; `abort` cuts the client's connection. */
  async function openStream(r: number, key: string, text: string) {
    const controller = new AbortController();
    const response = await request(`${replica(r).url}/ak/${key}/v1/messages`, {
      method: 'POST',
      dispatcher: agent,
      signal: controller.signal,
      body: JSON.stringify({
        model: 'claude-sonnet-4-5-20250929',
        max_tokens: 16,
        stream: true,
        messages: [{ role: 'user', content: text }],
      }),
      headers: { 'x-api-key': 'sk-ant-governance', 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    response.body.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.body.on('error', () => undefined);
    await once(response.body, 'data');
    const ended = once(response.body, 'end').then(() => Buffer.concat(chunks).toString());
    ended.catch(() => undefined);
    return { abort: () => controller.abort(), ended };
  }

  /** Polls `replica` until a request of `key` is admitted; the ms it took. */
  async function admittedWithin(r: number, key: string, timeoutMs: number): Promise<number> {
    const start = Date.now();
    while (Date.now() - start < timeoutMs) {
      const answer = await send(replica(r).url, key);
      if (answer.status === 200) return Date.now() - start;
      expect(answer.status).toBe(429);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`not admitted within ${timeoutMs} ms`);
  }

  it('concurrent streams across replicas: a slot comes back at once when the client disconnects mid-stream or the upstream dies mid-stream', async () => {
    const seeded = await seedKey(db, { userLimits: { rateLimits: { concurrentStreams: 2 } } });
    const upstreamBefore = anthropic.requests.length;
    // Two streams the upstream never finishes, one per replica: the user's two slots.
    const stalled = [await openStream(0, seeded.key, 'stall-stream'), await openStream(1, seeded.key, 'stall-stream')];
    for (const r of [0, 1]) {
      const refused = await send(replica(r).url, seeded.key);
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toBe('1');
      expect(JSON.parse(refused.body).error.message).toContain(
        `Rate limit of user ${seeded.namespace}/${seeded.userName} reached: 2 concurrent streams`,
      );
    }
    // The client goes away mid-stream: its replica aborts the upstream call and frees the slot.
    stalled[0]?.abort();
    expect(await admittedWithin(1, seeded.key, 1000)).toBeLessThan(1000);
    await expect.poll(() => anthropic.requests[upstreamBefore]?.aborted, { timeout: 2000 }).toBe(true);
    stalled[1]?.abort();
    expect(await admittedWithin(0, seeded.key, 1000)).toBeLessThan(1000);

    // The probes' own slots are released just after their answers end, off the request path (as
    // below): wait for that, or the next two streams race it (seen in CI: a 429 here).
    await expect
      .poll(
        async () => (await db.query('SELECT 1 FROM stream_slots WHERE scope = $1', [`user:${seeded.userId}`])).length,
        { timeout: 1000, interval: 50 },
      )
      .toBe(0);
    // Two streams whose upstream breaks off after four events: each client hears an error event, and the slots are free.
    const dying = [await openStream(0, seeded.key, 'die-stream'), await openStream(1, seeded.key, 'die-stream')];
    expect((await send(replica(0).url, seeded.key)).status, 'both slots held while they run').toBe(429);
    for (const d of dying) expect(await d.ended).toContain('event: error');
    for (const r of [0, 1]) expect(await admittedWithin(r, seeded.key, 1000)).toBeLessThan(1000);
    // Released just after each answer ends (off the request path): none left behind a moment later.
    await expect
      .poll(
        async () => (await db.query('SELECT 1 FROM stream_slots WHERE scope = $1', [`user:${seeded.userId}`])).length,
        {
          timeout: 1000,
          interval: 50,
        },
      )
      .toBe(0);
  }, 60_000);

  it('concurrent streams: a replica killed with SIGKILL holds its slot at most one lease (renewed while it lived), then it is free', async () => {
    const seeded = await seedKey(db, { userLimits: { rateLimits: { concurrentStreams: 1 } } });
    const third = await startReplicas(1, env);
    extra.push(third.stop);
    const [doomed] = third.replicas;
    if (doomed === undefined) throw new Error('no replica');
    const long = await request(`${doomed.url}/ak/${seeded.key}/v1/messages`, {
      method: 'POST',
      dispatcher: agent,
      body: JSON.stringify({
        model: 'claude-sonnet-4-5-20250929',
        max_tokens: 16,
        stream: true,
        messages: [{ role: 'user', content: 'long-stream' }],
      }),
      headers: { 'x-api-key': 'sk-ant-governance', 'content-type': 'application/json' },
    });
    expect(long.statusCode).toBe(200);
    long.body.on('error', () => undefined);
    long.body.resume();
    // Past one lease: the slot lives on because its replica renews it.
    await new Promise((resolve) => setTimeout(resolve, slotLeaseMs + 1500));
    for (const r of [0, 1])
      expect((await send(replica(r).url, seeded.key)).status, 'renewed slot still held').toBe(429);
    await doomed.stop('SIGKILL');
    const killedAt = Date.now();
    expect((await send(replica(0).url, seeded.key)).status, 'held until its lease ends').toBe(429);
    await admittedWithin(0, seeded.key, slotLeaseMs + 1000);
    const freedAfter = Date.now() - killedAt;
    // Renewed every lease/3: its lease ends between 2/3 of a lease and one lease after the kill
    // (the lower bound loosened by a late renewal timer on a loaded host, the upper by the polling).
    expect(freedAfter).toBeGreaterThanOrEqual(slotLeaseMs / 3);
    expect(freedAfter).toBeLessThanOrEqual(slotLeaseMs + 500);
  }, 60_000);

  it('the Bedrock limits hold failed-over traffic across both replicas (real failover on 429 and 529), while Plan traffic of the same user is not held to them', async () => {
    const bedrockRpm = 4;
    const first = await seedKey(db, {
      userLimits: { rateLimits: { requestsPerMinute: 1000, bedrock: { requestsPerMinute: bedrockRpm } } },
      bedrockKey: { apiKey: bedrockApiKey, wrapper },
    });
    const second = await seedKey(db, { owner: first, bedrockKey: { apiKey: bedrockApiKey, wrapper } });
    await freshMinute(20_000);
    const bedrockBefore = bedrock.requests.length;
    const failing = Array.from({ length: 12 }, (_, i) =>
      send(replica(i).url, first.key, { text: i % 2 === 0 ? 'fail-429' : 'fail-529', session: `s-${i}` }),
    );
    const plan = Array.from({ length: 12 }, (_, i) => send(replica(i).url, second.key, { session: `p-${i}` }));
    const [failed, planned] = await Promise.all([Promise.all(failing), Promise.all(plan)]);
    const served = failed.filter((a) => a.status === 200);
    expect(served.length, 'Bedrock served exactly the limit, across both replicas').toBe(bedrockRpm);
    expect(bedrock.requests.length - bedrockBefore, 'Bedrock saw nothing past the limit').toBe(bedrockRpm);
    for (const refused of failed.filter((a) => a.status !== 200)) {
      expect(refused.status).toBe(429);
      const body = JSON.parse(refused.body) as { error: { type: string; message: string } };
      expect(body.error.type).toBe('rate_limit_error');
      expect(body.error.message).toContain(
        `Rate limit of user ${first.namespace}/${first.userName} for requests served by Bedrock reached: ${bedrockRpm} requests per minute`,
      );
      expect(refused.headers['anthropic-ratelimit-requests-limit']).toBe(String(bedrockRpm));
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(
      planned.map((a) => a.status),
      'Plan traffic of the same user, past the Bedrock limit',
    ).toEqual(planned.map(() => 200));
    const [bedrockWindow] = await windowOf(`user:${first.userId}:bedrock`);
    expect(Number(bedrockWindow?.requests)).toBe(bedrockRpm);
  }, 90_000);
});
