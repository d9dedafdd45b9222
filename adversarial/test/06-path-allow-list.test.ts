import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { startAnthropicServer, type AnthropicTestServer } from '@ccproxy/test-harness';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from '../../proxy/test/proxy-fixture.ts';
import { postText, rawRequest } from './raw-http.ts';

/**
 * Item 6: only `/ak/<key>/v1/…` in normal form reaches the upstream. Every hostile spelling is
 * sent on a raw socket (no client library normalises it first) through a real proxy to a real
 * upstream that records every request; each must get Anthropic's 404 and reach nothing.
 */
const hostileSuffixes = [
  '',
  '/',
  '?beta=true',
  '/../../admin',
  '/v1/../../admin',
  '/v1/../admin',
  '/v1/messages/../../admin',
  '/v1/messages/..',
  '/v1/./messages',
  '/v1/messages/.',
  '/v2/x',
  '/V1/messages',
  '/v1',
  '/v1/',
  '/v1//messages',
  '//v1/messages',
  '/v1/messages/',
  '/v1/%2e%2e/%2e%2e/admin',
  '/v1/%2E%2E/admin',
  '/v1/.%2e/admin',
  '/v1/%2e/messages',
  '/v1/messages%2f..%2f..%2fadmin',
  '/v1/messages%2F..%2F..%2Fadmin',
  '/v1/messages%5c..%5cadmin',
  '/v1/..\\..\\admin',
  '/v1\\messages',
  '/v1/messages%00',
  '/v1/messages;x=1',
  '/healthz',
  '/metrics',
  '/__test/requests',
];

describe('item 6: only /v1/ routes in normal form go upstream', () => {
  let db: Database;
  let upstream: AnthropicTestServer;
  let proxy: RunningProxy;
  let prefixed: RunningProxy;
  let key: string;

  beforeAll(async () => {
    db = await openTestDatabase();
    upstream = await startAnthropicServer();
    proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: upstream.url });
    prefixed = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: `${upstream.url}/prefix` });
    ({ key } = await seedKey(db, { routing: 'PlanOnly' }));
  });
  afterAll(async () => {
    await proxy?.close();
    await prefixed?.close();
    await upstream?.close();
    await db?.close();
  });

  const portOf = (running: RunningProxy) => Number(new URL(running.url).port);
  const notFound = {
    type: 'error',
    error: { type: 'not_found_error', message: 'Not found.' },
    request_id: expect.any(String),
  };

  for (const [name, running] of [
    ['plain upstream', () => proxy],
    ['upstream with a path prefix', () => prefixed],
  ] as const) {
    it.each(hostileSuffixes)(`${name}: /ak/<key>%s → 404 not_found_error, upstream untouched`, async (suffix) => {
      const before = upstream.requests.length;
      const answer = await rawRequest(portOf(running()), postText(`/ak/${key}${suffix}`));
      expect(answer.status, answer.raw).toBe(404);
      expect(JSON.parse(answer.body)).toEqual(notFound);
      expect(answer.body).not.toContain(key);
      // Let anything the proxy might have sent arrive before counting.
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(upstream.requests.slice(before).map((r) => r.path)).toEqual([]);
    });
  }

  it.each(['/v1/mes sages', '/v1/m\u00e9ssages', '/v1/messages\u0000'])(
    'a request line Node cannot parse (/ak/<key>%j) → 400 invalid_request_error, closed, upstream untouched',
    async (suffix) => {
      const before = upstream.requests.length;
      const answer = await rawRequest(portOf(proxy), postText(`/ak/${key}${suffix}`));
      expect(answer.status, answer.raw).toBe(400);
      expect(JSON.parse(answer.body)).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
      expect(answer.closed).toBe(true);
      expect(upstream.requests.length).toBe(before);
    },
  );

  it('a known key and an unknown one get the same answer for a bad path (no key oracle)', async () => {
    const known = await rawRequest(portOf(proxy), postText(`/ak/${key}/v1/../../admin`));
    const unknown = await rawRequest(portOf(proxy), postText(`/ak/ak_${'x'.repeat(43)}/v1/../../admin`));
    const strip = (body: string) => ({ ...(JSON.parse(body) as object), request_id: '' });
    expect([known.status, strip(known.body)]).toEqual([unknown.status, strip(unknown.body)]);
  });

  it.each([
    ['/v1/messages?beta=true', '/v1/messages?beta=true'],
    ['/v1/messages/count_tokens?beta=true', '/v1/messages/count_tokens?beta=true'],
    ['/v1/models/claude-sonnet-4-5', '/v1/models/claude-sonnet-4-5'],
    ['/v1/messages?q=%2e%2e/..&x=a\\b', '/v1/messages?q=%2e%2e/..&x=a\\b'],
  ])('%s is forwarded as %s, also below a prefix', async (suffix, seen) => {
    const before = upstream.requests.length;
    const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [] });
    const plain = await rawRequest(portOf(proxy), postText(`/ak/${key}${suffix}`, body, { 'x-api-key': 'sk-test' }));
    expect(plain.status).not.toBe(0);
    expect(plain.headers['x-ccproxy-request-id']).toBeDefined();
    const below = await rawRequest(portOf(prefixed), postText(`/ak/${key}${suffix}`, body, { 'x-api-key': 'sk-test' }));
    expect(below.status).not.toBe(0);
    expect(upstream.requests.slice(before).map((r) => r.path)).toEqual([seen, `/prefix${seen}`]);
  });

  it('count_tokens and messages still answer 200 through the proxy', async () => {
    const body = JSON.stringify({
      model: 'claude-sonnet-4-5',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'hi' }],
    });
    for (const path of ['/v1/messages?beta=true', '/v1/messages/count_tokens?beta=true']) {
      const answer = await rawRequest(portOf(proxy), postText(`/ak/${key}${path}`, body, { 'x-api-key': 'sk-test' }));
      expect(answer.status, answer.raw).toBe(200);
    }
  });
});
