import { connect } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeAccessKey, type Database } from '@ccproxy/core';
import { freePort, renderSse, startAnthropicServer, type AnthropicTestServer } from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

const anthropicErrorShape = (type: string) => ({
  type: 'error',
  error: { type, message: expect.any(String) },
  request_id: expect.any(String),
});

/** Every kind of bad input and broken upstream: a precise Anthropic-shaped answer, never a crash. */
describe('bad input and broken upstreams', () => {
  let db: Database;
  let upstream: AnthropicTestServer;
  let proxy: RunningProxy;
  let key: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    db = await openTestDatabase();
    upstream = await startAnthropicServer();
    proxy = await startProxy(db, {
      ANTHROPIC_UPSTREAM_URL: upstream.url,
      CCPROXY_MAX_BODY_BYTES: String(10 * 1024 * 1024),
      CCPROXY_UPSTREAM_HEADERS_TIMEOUT_MS: '400',
      CCPROXY_UPSTREAM_BODY_TIMEOUT_MS: '400',
    });
    // Plan-only: these are the Plan path's own failures; failover has its own tests.
    ({ key } = await seedKey(db, { routing: 'PlanOnly' }));
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await proxy?.close();
    await upstream?.close();
    await db?.close();
  });

  const post = (
    path: string,
    body: string | Buffer,
    headers: Record<string, string> = { 'x-api-key': 'sk-ant-client' },
  ) =>
    request(`${proxy.url}${path}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
    });

  it.each([
    ['no access key', '/v1/messages'],
    ['garbage key', '/ak/not-a-key/v1/messages'],
    ['empty key', '/ak//v1/messages'],
    ['key with odd bytes', '/ak/%00%ff%2F..%2F/v1/messages'],
    ['very long key', `/ak/${'x'.repeat(400)}/v1/messages`],
  ])('%s → 404 not_found_error', async (_name, path) => {
    const response = await post(path, '{}');
    expect(response.statusCode).toBe(404);
    expect(await response.body.json()).toEqual(anthropicErrorShape('not_found_error'));
  });

  it.each(['example.com:443', '127.0.0.1:1'])(
    'CONNECT %s → 400 invalid_request_error, and the connection is closed',
    async (target) => {
      const { port } = new URL(proxy.url);
      const answer = await new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        const socket = connect(Number(port), '127.0.0.1', () =>
          socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`),
        );
        socket.on('data', (chunk: Buffer) => chunks.push(chunk)).on('error', () => undefined);
        socket.once('close', () => resolve(Buffer.concat(chunks).toString()));
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as unknown;
      expect(body).toEqual(anthropicErrorShape('invalid_request_error'));
    },
  );

  it('a revoked key → 404, the same answer as an unknown one', async () => {
    const revoked = await seedKey(db);
    expect(
      await post(`/ak/${revoked.key}/v1/messages`, '{"model":"m","messages":[]}').then(
        async (r) => (await r.body.dump(), r.statusCode),
      ),
    ).toBe(200);
    await revokeAccessKey(db, revoked.namespace, revoked.name);
    await expect
      .poll(async () => (await post(`/ak/${revoked.key}/v1/messages`, '{}')).statusCode, {
        timeout: 1000,
        interval: 20,
      })
      .toBe(404);
    const unknown = await post('/ak/ak_0000000000000000000000000000000000000000000/v1/messages', '{}');
    const known = await post(`/ak/${revoked.key}/v1/messages`, '{}');
    const strip = (body: { request_id: string }) => ({ ...body, request_id: '' });
    expect(strip((await known.body.json()) as { request_id: string })).toEqual(
      strip((await unknown.body.json()) as { request_id: string }),
    );
  });

  it('malformed JSON is relayed to Anthropic untouched and its 400 comes back', async () => {
    const response = await post(`/ak/${key}/v1/messages`, '{"model": "m", "messages": [');
    expect(response.statusCode).toBe(400);
    expect(await response.body.json()).toEqual(anthropicErrorShape('invalid_request_error'));
    expect(upstream.requests.at(-1)?.body.toString()).toBe('{"model": "m", "messages": [');
  });

  it('a body over the limit → 413 request_too_large, without reaching the upstream', async () => {
    const before = upstream.requests.length;
    const response = await post(`/ak/${key}/v1/messages`, Buffer.alloc(11 * 1024 * 1024, 'a'));
    expect(response.statusCode).toBe(413);
    expect(await response.body.json()).toEqual(anthropicErrorShape('request_too_large'));
    expect(upstream.requests.length).toBe(before);
  });

  it('a body just under the limit is forwarded byte for byte', async () => {
    const text = 'ü'.repeat(4 * 1024 * 1024);
    const body = Buffer.from(
      JSON.stringify({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: text }] }),
    );
    const response = await post(`/ak/${key}/v1/messages`, body);
    expect(response.statusCode).toBe(200);
    await response.body.dump();
    expect(upstream.requests.at(-1)?.body.equals(body)).toBe(true);
  });

  it('upstream unreachable → 502 api_error', async () => {
    const down = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: `http://127.0.0.1:${await freePort()}` });
    try {
      const response = await request(`${down.url}/ak/${key}/v1/messages`, { method: 'POST', body: '{}' });
      expect(response.statusCode).toBe(502);
      expect(await response.body.json()).toEqual(anthropicErrorShape('api_error'));
    } finally {
      await down.close();
    }
  });

  it('upstream resets before answering → 502; stalls before answering → 504 timeout_error', async () => {
    upstream.respondWith(() => ({ kind: 'reset' }));
    const reset = await post(`/ak/${key}/v1/messages`, '{}');
    expect(reset.statusCode).toBe(502);
    expect(await reset.body.json()).toEqual(anthropicErrorShape('api_error'));
    upstream.respondWith(() => ({ kind: 'stall' }));
    const stalled = await post(`/ak/${key}/v1/messages`, '{}');
    expect(stalled.statusCode).toBe(504);
    expect(await stalled.body.json()).toEqual(anthropicErrorShape('timeout_error'));
    upstream.respondWith(undefined);
  });

  it('upstream resets or stalls mid-stream → the stream ends with an Anthropic error event the SDK surfaces', async () => {
    const events = renderSse({
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'm',
      content: [{ type: 'text', text: 'partial answer here' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 1, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
    const client = new Anthropic({ baseURL: `${proxy.url}/ak/${key}`, apiKey: 'sk-ant-client', maxRetries: 0 });
    for (const then of ['reset', 'stall'] as const) {
      upstream.respondWith(() => ({
        kind: 'raw',
        chunks: [...events.slice(0, 3), events[3]?.subarray(0, 20) ?? Buffer.alloc(0)],
        then,
      }));
      const error = await client.messages
        .stream({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
        .finalMessage()
        .catch((e: unknown) => e);
      expect(error, then).toBeInstanceOf(Anthropic.APIError);
      expect(String((error as Error).message), then).toMatch(then === 'reset' ? /api_error/ : /timeout_error/);
    }
    upstream.respondWith(undefined);
  });

  it('a client that disconnects mid-stream aborts the upstream request; the proxy keeps serving', async () => {
    const events = renderSse({
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'm',
      content: [{ type: 'text', text: 'a long answer' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 1, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
    upstream.respondWith(() => ({ kind: 'raw', chunks: events, delayMs: 100 }));
    const controller = new AbortController();
    const response = await post(`/ak/${key}/v1/messages`, '{"stream":true}');
    const iterator = response.body[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    response.body.destroy();
    const aborted = upstream.requests.at(-1);
    await expect.poll(() => aborted?.aborted, { timeout: 2000, interval: 20 }).toBe(true);
    upstream.respondWith(undefined);
    const next = await post(`/ak/${key}/v1/messages`, '{"model":"m","messages":[]}');
    expect(next.statusCode).toBe(200);
    await next.body.dump();
  });

  it('a client that disconnects before the upstream answered aborts the upstream request (not left to the headers timeout)', async () => {
    // A proxy whose upstream headers timeout is far away: only the client leaving can end the call.
    const patient = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: upstream.url });
    try {
      upstream.respondWith(() => ({ kind: 'stall' }));
      const seen = upstream.requests.length;
      const client = new AbortController();
      const pending = request(`${patient.url}/ak/${key}/v1/messages`, {
        method: 'POST',
        body: '{"model":"m","messages":[]}',
        headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-client' },
        signal: client.signal,
      }).catch(() => undefined);
      await expect.poll(() => upstream.requests.length, { timeout: 5000, interval: 10 }).toBe(seen + 1);
      client.abort();
      await pending;
      const stalled = upstream.requests.at(-1);
      await expect.poll(() => stalled?.aborted, { timeout: 5000, interval: 20 }).toBe(true);
      upstream.respondWith(undefined);
      const next = await post(`/ak/${key}/v1/messages`, '{"model":"m","messages":[]}');
      expect(next.statusCode).toBe(200);
      await next.body.dump();
    } finally {
      upstream.respondWith(undefined);
      await patient.close();
    }
  });

  it('with failover but no usable Bedrock key, a 429 from Anthropic still reaches the client as it was', async () => {
    const failover = await seedKey(db, { routing: 'PlanWithFailover' });
    upstream.respondWith(() => ({
      kind: 'error',
      status: 429,
      type: 'rate_limit_error',
      message: 'slow down',
      headers: { 'retry-after': '9' },
    }));
    const response = await post(`/ak/${failover.key}/v1/messages`, '{"model":"m","messages":[]}');
    upstream.respondWith(undefined);
    expect(response.statusCode).toBe(429);
    expect(response.headers['retry-after']).toBe('9');
    expect(await response.body.json()).toMatchObject({
      type: 'error',
      error: { type: 'rate_limit_error', message: 'slow down' },
    });
  });

  it('left no unhandled rejection and no key in any log line', () => {
    expect(unhandled).toEqual([]);
    for (const line of proxy.logs) expect(line).not.toContain(key);
    expect(proxy.logs.some((line) => line.includes('"status":502'))).toBe(true);
  });
});
