import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { startAnthropicServer, renderSse, type AnthropicTestServer } from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

/** The Plan path end to end: official SDK → proxy (real Postgres) → Anthropic test server. */
describe('Plan path', () => {
  let db: Database;
  let upstream: AnthropicTestServer;
  let proxy: RunningProxy;
  let key: string;

  beforeAll(async () => {
    db = await openTestDatabase();
    upstream = await startAnthropicServer();
    proxy = await startProxy(db, {
      ANTHROPIC_UPSTREAM_URL: upstream.url,
      CCPROXY_PLAN_API_KEY: 'sk-ant-company-default',
    });
    ({ key } = await seedKey(db));
  });
  afterAll(async () => {
    await proxy?.close();
    await upstream?.close();
    await db?.close();
  });

  /** An SDK client whose fetch keeps the exact bytes it sent. */
  function sdkClient(sentBodies: Buffer[], options: { apiKey?: string } = {}) {
    return new Anthropic({
      baseURL: `${proxy.url}/ak/${key}`,
      apiKey: options.apiKey ?? 'sk-ant-client-own',
      maxRetries: 0,
      fetch: async (input, init) => {
        if (typeof init?.body === 'string') sentBodies.push(Buffer.from(init.body));
        return fetch(input, init);
      },
    });
  }

  it('forwards path, query, headers and body bytes unchanged, and relays the answer', async () => {
    const sent: Buffer[] = [];
    const client = sdkClient(sent);
    const before = upstream.requests.length;
    // As Claude Code sends it: `?beta=true`, betas in a header, its session id.
    const message = await client.beta.messages.create(
      {
        model: 'claude-test-model',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'héllo 世界 🚀' }],
        betas: ['interleaved-thinking-2025-05-14'],
      },
      { headers: { 'x-claude-code-session-id': 'session-1' }, query: { beta: 'true' } },
    );
    expect(message.content).toEqual([{ type: 'text', text: 'Hello from the test server' }]);
    const received = upstream.requests[before];
    expect(received?.path).toBe('/v1/messages?beta=true');
    expect(received?.body.equals(sent[0] ?? Buffer.alloc(0))).toBe(true);
    expect(received?.headers.authorization).toBe('Bearer sk-ant-client-own');
    expect(received?.headers['x-api-key']).toBeUndefined();
    expect(received?.headers['anthropic-beta']).toBe('interleaved-thinking-2025-05-14');
    expect(received?.headers['x-claude-code-session-id']).toBe('session-1');
    expect(received?.headers.host).toBe(new URL(upstream.url).host);
  });

  it('relays SSE streams byte for byte, head and body', async () => {
    const body = JSON.stringify({
      model: 'm',
      max_tokens: 50,
      stream: true,
      messages: [{ role: 'user', content: 'RUN_BASH:echo ünïcödé' }],
    });
    const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-client-own' },
    });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(response.headers['request-id']).toMatch(/^req_test_/);
    expect(response.headers['x-ccproxy-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(bytes.equals(Buffer.concat(upstream.sent.at(-1) ?? []))).toBe(true);
    expect(upstream.requests.at(-1)?.headers['x-api-key']).toBe('sk-ant-client-own');
  });

  it('relays a stream whose upstream chunks split multi-byte characters, unchanged', async () => {
    const message = {
      id: 'msg_1',
      type: 'message' as const,
      role: 'assistant' as const,
      model: 'm',
      content: [{ type: 'text' as const, text: '한국어 テキスト 🚀 ünïcödé' }],
      stop_reason: 'end_turn' as const,
      stop_sequence: null,
      usage: { input_tokens: 1, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    };
    const all = Buffer.concat(renderSse(message));
    const emoji = all.indexOf(Buffer.from('🚀'));
    // Cut inside the 4-byte emoji and inside a 3-byte Hangul syllable.
    const cuts = [all.indexOf(Buffer.from('한')) + 1, emoji + 2, all.length - 5];
    const chunks = [
      all.subarray(0, cuts[0]),
      all.subarray(cuts[0], cuts[1]),
      all.subarray(cuts[1], cuts[2]),
      all.subarray(cuts[2]),
    ];
    upstream.respondWith(() => ({ kind: 'raw', chunks, delayMs: 5 }));
    try {
      const sent: Buffer[] = [];
      const final = await sdkClient(sent)
        .messages.stream({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
        .finalMessage();
      expect(final.content).toEqual(message.content);
      const raw = await request(`${proxy.url}/ak/${key}/v1/messages`, {
        method: 'POST',
        body: '{"stream":true}',
        headers: { 'x-api-key': 'k' },
      });
      expect(Buffer.from(await raw.body.arrayBuffer()).equals(all)).toBe(true);
    } finally {
      upstream.respondWith(undefined);
    }
  });

  it('forwards count_tokens and other /v1 paths', async () => {
    const count = await sdkClient([]).messages.countTokens({
      model: 'm',
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(count.input_tokens).toBeGreaterThan(0);
    expect(upstream.requests.at(-1)?.path).toBe('/v1/messages/count_tokens');
    const models = await request(`${proxy.url}/ak/${key}/v1/models?limit=5`, { headers: { 'x-api-key': 'k' } });
    expect(models.statusCode).toBe(404);
    expect(await models.body.json()).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error', message: 'Not found: GET /v1/models' },
    });
    expect(upstream.requests.at(-1)?.path).toBe('/v1/models?limit=5');
  });

  it('injects the default Plan key only when the client sends no credential', async () => {
    await request(`${proxy.url}/ak/${key}/v1/messages`, { method: 'POST', body: '{"model":"m","messages":[]}' }).then(
      (r) => r.body.dump(),
    );
    expect(upstream.requests.at(-1)?.headers['x-api-key']).toBe('sk-ant-company-default');
    await request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: '{"model":"m","messages":[]}',
      headers: { authorization: 'Bearer mine' },
    }).then((r) => r.body.dump());
    expect(upstream.requests.at(-1)?.headers['x-api-key']).toBeUndefined();
    expect(upstream.requests.at(-1)?.headers.authorization).toBe('Bearer mine');
  });

  it('exports request metrics and answers health checks', async () => {
    expect((await request(`${proxy.url}/healthz`)).statusCode).toBe(200);
    expect((await request(`${proxy.url}/readyz`)).statusCode).toBe(200);
    const metrics = await (await request(`${proxy.url}/metrics`)).body.text();
    expect(metrics).toMatch(/ccproxy_requests_total\{route="messages",upstream="plan",status_class="2xx"\} [1-9]/);
    expect(metrics).toMatch(
      /ccproxy_request_duration_seconds_bucket\{le="0.005",route="messages",upstream="plan",status_class="2xx"\}/,
    );
  });

  it('logs one line per request with the request id and never the key', async () => {
    const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: '{"model":"m","messages":[]}',
      headers: { 'x-api-key': 'sk-ant-secret-xyz' },
    });
    await response.body.dump();
    const id = response.headers['x-ccproxy-request-id'] as string;
    await expect.poll(() => proxy.logs.filter((line) => line.includes(id))).toHaveLength(1);
    const line = JSON.parse(proxy.logs.find((l) => l.includes(id)) ?? '{}');
    expect(line).toMatchObject({
      requestId: id,
      msg: 'request completed',
      status: 200,
      upstream: 'plan',
      keyPrefix: key.slice(0, 10),
    });
    for (const logged of proxy.logs) {
      expect(logged).not.toContain(key);
      expect(logged).not.toContain('sk-ant-secret-xyz');
      expect(logged).not.toContain('sk-ant-client-own');
    }
  });
});
