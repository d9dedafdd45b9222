import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  breakerStateOf as stateOf,
  createLogger,
  migrate,
  PgDatabase,
  ProxyError,
  readBreaker,
  type Database,
} from '@ccproxy/core';
import { decideRoute, retryAfterMs, shouldFailOver } from '@ccproxy/proxy';
import {
  createTestDatabase,
  startAnthropicServer,
  startBedrockServer,
  type AnthropicTestServer,
  type BedrockTestServer,
} from '@ccproxy/test-harness';
import { PlanRejected } from '../src/pipeline/failover.ts';
import { seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

const bedrock = { apiKey: 'bedrock-breaker-key', model: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' };
const openMs = 1500;

describe('route and failover decisions (pure)', () => {
  it('decides by routing, breaker state and the retry-after pin: nothing else keeps a session on Bedrock', () => {
    expect(decideRoute('PlanOnly', 'open', true)).toBe('plan');
    expect(decideRoute('BedrockOnly', 'closed', false)).toBe('bedrock');
    for (const state of ['closed', 'failing'] as const) {
      expect(decideRoute('PlanWithFailover', state, false)).toBe('plan');
      expect(decideRoute('PlanWithFailover', state, true)).toBe('bedrock');
    }
    expect(decideRoute('PlanWithFailover', 'open', false)).toBe('bedrock');
    expect(decideRoute('PlanWithFailover', 'half-open', false)).toBe('trial');
    expect(decideRoute('PlanWithFailover', 'half-open', true)).toBe('bedrock');
  });

  it('reads retry-after as seconds, an HTTP date or retry-after-ms, and nothing else', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    expect(retryAfterMs({ 'retry-after': '30' }, now)).toBe(30_000);
    expect(retryAfterMs({ 'retry-after': '1.5' }, now)).toBe(1500);
    expect(retryAfterMs({ 'retry-after': 'Sun, 06 Dec 2026 12:00:20 GMT' }, now)).toBe(20_000);
    expect(retryAfterMs({ 'retry-after': 'Sun, 06 Dec 2026 11:00:00 GMT' }, now)).toBe(0);
    expect(retryAfterMs({ 'retry-after-ms': '250', 'retry-after': '30' }, now)).toBe(250);
    expect(retryAfterMs({ 'retry-after': '-5' }, now)).toBe(0);
    for (const junk of ['', ' ', 'soon', 'NaN']) expect(retryAfterMs({ 'retry-after': junk }, now)).toBeUndefined();
    expect(retryAfterMs({}, now)).toBeUndefined();
  });

  it('fails over only on unavailability, and only before the first byte', () => {
    expect(shouldFailOver(new PlanRejected(529, {}, Buffer.alloc(0)), 0)).toBe(true);
    expect(shouldFailOver(new PlanRejected(429, {}, Buffer.alloc(0)), 0)).toBe(true);
    expect(shouldFailOver(new PlanRejected(400, {}, Buffer.alloc(0)), 0)).toBe(false);
    expect(shouldFailOver(new ProxyError('PRX_UPSTREAM_UNREACHABLE'), 0)).toBe(true);
    expect(shouldFailOver(new ProxyError('PRX_UPSTREAM_TIMEOUT'), 1)).toBe(false);
    expect(shouldFailOver(new ProxyError('PRX_KEY_NOT_FOUND'), 0)).toBe(false);
  });

  it('derives the breaker state from its row; failures outside the window do not count', () => {
    const policy = { failures: 3, windowMs: 60_000, openMs: 1000 };
    const row = { consecutiveFailures: 2, streakStartedAt: 0, openedAt: null, trialStartedAt: null, lastFailoverAt: 0 };
    expect(stateOf(undefined, policy, 0)).toBe('closed');
    expect(stateOf(row, policy, 0)).toBe('failing');
    expect(stateOf(row, policy, 59_999)).toBe('failing');
    expect(stateOf(row, policy, 60_000), 'a streak older than the window reads closed').toBe('closed');
    expect(stateOf({ ...row, consecutiveFailures: 0, streakStartedAt: null }, policy, 0)).toBe('closed');
    const open = { ...row, consecutiveFailures: 3, openedAt: 1000 };
    expect(stateOf(open, policy, 1999)).toBe('open');
    expect(stateOf(open, policy, 2000)).toBe('half-open');
    expect(stateOf(open, policy, 10_000_000), 'the window never closes an open breaker').toBe('half-open');
  });
});

/** Two proxy replicas (each with its own connections) on one real Postgres. */
describe('circuit breaker shared through Postgres', () => {
  let db: Database;
  let anthropic: AnthropicTestServer;
  let bedrockServer: BedrockTestServer;
  let a: RunningProxy;
  let b: RunningProxy;
  let dbB: Database;

  beforeAll(async () => {
    const url = await createTestDatabase(inject('postgresUrl'));
    db = new PgDatabase({ url, logger: createLogger({ level: 'silent' }) });
    dbB = new PgDatabase({ url, logger: createLogger({ level: 'silent' }) });
    await migrate(db, createLogger({ level: 'silent' }));
    anthropic = await startAnthropicServer();
    bedrockServer = await startBedrockServer({ apiKey: bedrock.apiKey });
    const env = {
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockServer.url,
      CCPROXY_BREAKER_OPEN_MS: String(openMs),
    };
    a = await startProxy(db, env);
    b = await startProxy(dbB, env);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await Promise.all([anthropic?.close(), bedrockServer?.close()]);
    await Promise.all([db?.close(), dbB?.close()]);
  });

  const send = (proxy: RunningProxy, key: string, path = '/v1/messages', session = 'session-x') =>
    request(`${proxy.url}/ak/${key}${path}`, {
      method: 'POST',
      body: JSON.stringify({
        model: 'claude-test-model',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hello' }],
      }),
      headers: { 'x-api-key': 'sk-ant-dev', 'x-claude-code-session-id': session },
    }).then(async (response) => {
      const body = (await response.body.json()) as { content?: Array<{ text?: string }> };
      return { status: response.statusCode, text: body.content?.[0]?.text };
    });
  const plan = 'Hello from the test server';
  const viaBedrock = 'Hello from the Bedrock test server';

  it('opens after 3 failures; the 4th request skips Anthropic on both replicas; after the open period exactly one trial goes to Anthropic', async () => {
    const { key, namespace, name } = await seedKey(db, { bedrock });
    anthropic.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    // Three sessions (a failed-over session would stay on Bedrock and never count again).
    for (const [proxy, session] of [
      [a, 's1'],
      [b, 's2'],
      [a, 's3'],
    ] as const)
      expect(await send(proxy, key, '/v1/messages', session)).toEqual({ status: 200, text: viaBedrock });
    expect(anthropic.requests.length).toBeGreaterThanOrEqual(3);
    // Replica b learns of the breaker a opened by notification, a few ms later; until then it may
    // still try Anthropic (and fail over). Once its own gauge says open, nothing may reach Anthropic.
    const open = new RegExp(`ccproxy_breaker_open\\{key="${namespace}/${name}"\\} 1`);
    let probe = 0;
    await expect
      .poll(
        async () => (
          await send(b, key, '/v1/messages', `probe-${(probe += 1)}`),
          await b.registry.getSingleMetricAsString('ccproxy_breaker_open')
        ),
      )
      .toMatch(open);
    const touched = anthropic.requests.length;
    expect(await send(b, key, '/v1/messages', 'fresh-b')).toEqual({ status: 200, text: viaBedrock });
    expect(await send(a, key, '/v1/messages', 'fresh-a')).toEqual({ status: 200, text: viaBedrock });
    expect(anthropic.requests.length, 'no request reached Anthropic once open').toBe(touched);
    expect(await a.registry.getSingleMetricAsString('ccproxy_breaker_open')).toMatch(open);

    anthropic.respondWith(undefined);
    await new Promise((resolve) => setTimeout(resolve, openMs + 100));
    const results = await Promise.all([
      send(a, key, '/v1/messages', 'trial-1'),
      send(b, key, '/v1/messages', 'trial-2'),
    ]);
    expect(anthropic.requests.length - touched, 'exactly one trial').toBe(1);
    expect(results.map((r) => r.text).sort()).toEqual([viaBedrock, plan].sort());
    // The trial succeeded: closed again, on both replicas.
    await expect.poll(async () => (await send(b, key)).text).toBe(plan);
    expect(
      (
        await readBreaker(
          db,
          (
            await db.query<{ id: string }>('SELECT id::text FROM access_keys WHERE key_prefix = $1', [key.slice(0, 10)])
          )[0]?.id ?? '',
        )
      )?.openedAt,
    ).toBeNull();
  });

  it('never trips on count_tokens failures or 4xx answers', async () => {
    const { key } = await seedKey(db, { bedrock });
    anthropic.respondWith(() => ({ kind: 'error', status: 500, type: 'api_error', message: 'boom' }));
    for (let i = 0; i < 4; i += 1) await send(a, key, '/v1/messages/count_tokens');
    anthropic.respondWith(() => ({ kind: 'error', status: 400, type: 'invalid_request_error', message: 'bad' }));
    for (let i = 0; i < 4; i += 1) expect((await send(a, key)).status).toBe(400);
    anthropic.respondWith(undefined);
    expect(await send(a, key)).toEqual({ status: 200, text: plan });
  });

  it('a single 429 pins its session to Bedrock for the retry-after only; a 529 without one pins nothing', async () => {
    const { key } = await seedKey(db, { bedrock });
    anthropic.respondWith(() => ({
      kind: 'error',
      status: 429,
      type: 'rate_limit_error',
      message: 'Rate limited',
      headers: { 'retry-after': '1' },
    }));
    expect((await send(a, key, '/v1/messages', 'pinned')).text).toBe(viaBedrock);
    anthropic.respondWith(undefined);
    const tried = anthropic.requests.length;
    expect((await send(a, key, '/v1/messages', 'pinned')).text, 'inside the retry-after').toBe(viaBedrock);
    expect(anthropic.requests.length, 'the pinned session did not ask Anthropic').toBe(tried);
    expect((await send(a, key, '/v1/messages', 'other')).text, 'other sessions are not pinned').toBe(plan);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await send(a, key, '/v1/messages', 'pinned')).text, 'after the retry-after').toBe(plan);

    anthropic.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    expect((await send(a, key, '/v1/messages', 'blip')).text).toBe(viaBedrock);
    anthropic.respondWith(undefined);
    expect((await send(a, key, '/v1/messages', 'blip')).text, 'no retry-after: straight back').toBe(plan);
  });
});
