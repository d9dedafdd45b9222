import { once } from 'node:events';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

interface Seen {
  headers: IncomingMessage['headers'];
  body: Buffer;
  ended: boolean;
  aborted: boolean;
}

/**
 * An upstream that records each request from its head on (the Anthropic test server only
 * records whole requests), so a test can see the proxy forward a body while it still arrives.
 */
async function startRecordingUpstream(): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const entry: Seen = { headers: req.headers, body: Buffer.alloc(0), ended: false, aborted: false };
    seen.push(entry);
    req.on('data', (chunk: Buffer) => (entry.body = Buffer.concat([entry.body, chunk])));
    req.on('error', () => (entry.aborted = true));
    req.on('close', () => (entry.aborted ||= !req.complete));
    req.on('end', () => {
      entry.ended = true;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received: entry.body.length }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

/** The Plan path streams request bodies upstream as they arrive; bad bodies still get precise errors. */
describe('request bodies on the Plan path', () => {
  let db: Database;
  let upstream: Awaited<ReturnType<typeof startRecordingUpstream>>;
  let proxy: RunningProxy;
  let key: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const limit = 64 * 1024;

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    db = await openTestDatabase();
    upstream = await startRecordingUpstream();
    proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: upstream.url, CCPROXY_MAX_BODY_BYTES: String(limit) });
    ({ key } = await seedKey(db, { routing: 'PlanOnly' }));
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await proxy?.close();
    upstream?.server.close();
    await db?.close();
  });

  /** A client request whose body the test writes piece by piece. */
  const open = (headers: Record<string, string | number>) => {
    const { hostname, port } = new URL(proxy.url);
    const client = httpRequest({
      hostname,
      port,
      method: 'POST',
      path: `/ak/${key}/v1/messages`,
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-client', ...headers },
    });
    const response = once(client, 'response').then(async (args) => {
      const res = args[0] as IncomingMessage;
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      return { status: res.statusCode, body: Buffer.concat(chunks).toString() };
    });
    return { client, response };
  };

  it('forwards a body while the client is still sending it, byte for byte', async () => {
    const body = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'ü'.repeat(10_000) }] }));
    const before = upstream.seen.length;
    const { client, response } = open({ 'content-length': body.length });
    client.write(body.subarray(0, 1000));
    // Only a proxy that streams can show the upstream the first part before the client sends the rest.
    await expect.poll(() => upstream.seen[before]?.body.length ?? 0, { timeout: 2000, interval: 10 }).toBe(1000);
    expect(upstream.seen[before]?.ended).toBe(false);
    client.end(body.subarray(1000));
    expect(await response).toEqual({ status: 200, body: JSON.stringify({ received: body.length }) });
    expect(upstream.seen[before]?.body.equals(body)).toBe(true);
    expect(upstream.seen[before]?.headers['content-length']).toBe(String(body.length));
  });

  it('sends a chunked body whole, with its length, once it has arrived', async () => {
    const before = upstream.seen.length;
    const { client, response } = open({ 'transfer-encoding': 'chunked' });
    client.write('{"model":"m",');
    client.end('"messages":[]}');
    expect(await response).toEqual({ status: 200, body: JSON.stringify({ received: 27 }) });
    expect(upstream.seen[before]?.headers['content-length']).toBe('27');
    expect(upstream.seen[before]?.headers['transfer-encoding']).toBeUndefined();
  });

  it('refuses a chunked body over the limit with 413 request_too_large, without reaching the upstream', async () => {
    const before = upstream.seen.length;
    const { client, response } = open({ 'transfer-encoding': 'chunked' });
    client.on('error', () => undefined);
    client.write(Buffer.alloc(limit / 2, 'a'));
    client.end(Buffer.alloc(limit, 'a'));
    const answer = await response;
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({
      type: 'error',
      error: { type: 'request_too_large', message: `Request body exceeds ${limit} bytes.` },
    });
    expect(upstream.seen.length).toBe(before);
  });

  it('refuses a declared length over the limit before reading the body', async () => {
    const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: Buffer.alloc(limit + 1, 'a'),
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(413);
    expect(await response.body.json()).toMatchObject({ type: 'error', error: { type: 'request_too_large' } });
  });

  it('a client that goes away mid-body aborts the upstream request; the proxy keeps serving', async () => {
    const before = upstream.seen.length;
    const { client, response } = open({ 'content-length': 5000 });
    response.catch(() => undefined);
    client.on('error', () => undefined);
    client.write(Buffer.alloc(1000, 'a'));
    await expect.poll(() => upstream.seen[before]?.body.length ?? 0, { timeout: 2000, interval: 10 }).toBe(1000);
    client.destroy();
    await expect.poll(() => upstream.seen[before]?.aborted, { timeout: 2000, interval: 10 }).toBe(true);
    const next = await request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: '{"model":"m","messages":[]}',
    });
    expect(next.statusCode).toBe(200);
    expect(await next.body.json()).toEqual({ received: 27 });
  });

  it('left no unhandled rejection and no key in any log line', () => {
    expect(unhandled).toEqual([]);
    for (const line of proxy.logs) expect(line).not.toContain(key);
  });
});
