import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '@ccproxy/core';
import { openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

/**
 * Compressed Plan answers whose decoded copy (read for usage only; the client gets the upstream's
 * bytes) is far larger than any answer: gzip "bombs" of 'a' with no blank line. Before the fix a
 * 100 MB one (100 KB sent) kept the proxy's CPU busy for minutes, the request was never logged
 * or metered, and a 1 GB JSON one was held for 82 s before its first byte.
 */

const start =
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_b","type":"message","role":"assistant","model":"claude-bomb","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":41,"output_tokens":1,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}}\n\n';
/** One gzip member of 1 MiB of 'a' (~1 KB): members in a row are one gzip body, as a streaming gzip writes. */
const megabyte = gzipSync(Buffer.alloc(1024 * 1024, 0x61), { level: 9 });
const plainMessage = JSON.stringify({
  id: 'msg_p',
  type: 'message',
  role: 'assistant',
  model: 'claude-plain',
  content: [{ type: 'text', text: 'hi' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 3, output_tokens: 2, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
});

interface Upstream {
  url: string;
  /** The bytes of the last bomb the upstream sent, and whether its client (the proxy) hung up. */
  sent: Buffer[];
  closedEarly: boolean;
  close(): Promise<void>;
}

/** A real node:http upstream: `x-test-answer` picks a gzip SSE bomb, a gzip JSON bomb, or a plain message. */
async function startBombUpstream(): Promise<Upstream> {
  const upstream: Upstream = { url: '', sent: [], closedEarly: false, close: async () => undefined };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.once('end', () => {
      const answer = String(req.headers['x-test-answer']);
      if (answer === 'plain') return res.writeHead(200, { 'content-type': 'application/json' }).end(plainMessage);
      const sse = answer.startsWith('sse');
      res.writeHead(200, {
        'content-type': sse ? 'text/event-stream' : 'application/json',
        'content-encoding': 'gzip',
      });
      upstream.sent = [];
      upstream.closedEarly = false;
      res.once('close', () => (upstream.closedEarly = !res.writableFinished));
      if (sse) send(res, upstream.sent, gzipSync(start));
      void writeBomb(res, upstream.sent, Number(answer.split('-')[1]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  upstream.close = () => new Promise((resolve) => server.close(() => resolve()));
  return upstream;
}

function send(res: ServerResponse, sent: Buffer[], bytes: Buffer): boolean {
  sent.push(bytes);
  return res.write(bytes);
}

/** `megabytes` MiB of 'a', gzipped, written as fast as the proxy reads them, until it hangs up. */
async function writeBomb(res: ServerResponse, sent: Buffer[], megabytes: number): Promise<void> {
  for (let i = 0; i < megabytes && !res.destroyed; i += 1) if (!send(res, sent, megabyte)) await drained(res);
  if (!res.destroyed) res.end();
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}

interface Answer {
  id: string;
  status: number;
  bytes: Buffer;
  /** ms until the response head arrived, and until the body ended (or broke off). */
  headMs: number;
  doneMs: number;
}

async function ask(proxy: RunningProxy, key: string, answer: string, leaveAfterFirstChunk = false): Promise<Answer> {
  const began = performance.now();
  const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
    method: 'POST',
    body: '{"model":"m","messages":[]}',
    headers: { 'x-api-key': 'k', 'accept-encoding': 'gzip', 'x-test-answer': answer },
  });
  const headMs = performance.now() - began;
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      if (leaveAfterFirstChunk) break; // ends the iteration: undici destroys the connection
    }
  } catch {
    // A compressed stream without message_stop is aborted by the proxy: the bytes before count.
  }
  const id = response.headers['x-ccproxy-request-id'] as string;
  return { id, status: response.statusCode, bytes: Buffer.concat(chunks), headMs, doneMs: performance.now() - began };
}

interface Row {
  input_tokens: string;
  output_tokens: string;
  complete: boolean;
  metered: boolean;
}

describe('usage of compressed answers is read within bounds (gzip bombs)', () => {
  let upstream: Upstream;
  let db: Database;
  let proxy: RunningProxy;
  let dir: string;
  let key: string;

  beforeAll(async () => {
    upstream = await startBombUpstream();
    db = await openTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-bomb-'));
    proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: upstream.url }, { spoolDir: join(dir, 'spool') });
    key = (await seedKey(db, { routing: 'PlanOnly' })).key;
  });
  afterAll(async () => {
    await proxy?.close();
    await Promise.all([db?.close(), upstream?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  /** The request's one usage row, once the recorder has stored it (within 5 s). */
  async function rowOf(id: string): Promise<Row[]> {
    const query = () =>
      db.query<Row>(
        'SELECT input_tokens::text, output_tokens::text, complete, metered FROM token_usage WHERE request_id = $1',
        [id],
      );
    await expect
      .poll(async () => (await proxy.usage?.flush(), (await query()).length), { timeout: 5_000, interval: 50 })
      .toBe(1);
    return query();
  }

  const logOf = (id: string) => proxy.logs.filter((line) => line.includes(id)).map((line) => JSON.parse(line));

  it('ends a 600 MB gzip event-stream bomb within seconds, its bytes unchanged, metered once with the usage read before it, while another request is answered promptly', async () => {
    const bombing = ask(proxy, key, 'sse-600');
    const other = await ask(proxy, key, 'plain');
    const bombed = await bombing;
    expect(bombed.doneMs).toBeLessThan(10_000); // minutes before
    expect(other.status).toBe(200);
    expect(other.doneMs).toBeLessThan(2_000);
    expect(bombed.status).toBe(200);
    // Unchanged as far as it went: no message_stop, so the compressed stream is aborted, not ended.
    const wire = Buffer.concat(upstream.sent);
    expect(bombed.bytes.length).toBeGreaterThan(0);
    expect(bombed.bytes.equals(wire.subarray(0, bombed.bytes.length))).toBe(true);
    expect(await rowOf(bombed.id)).toEqual([
      { input_tokens: '41', output_tokens: '1', complete: false, metered: true },
    ]);
    expect(logOf(bombed.id)).toMatchObject([
      { msg: 'usage unreadable: the decoded answer is over the cap; metered with what was read' },
      { msg: 'request completed', outcome: 'upstream_truncated' },
    ]);
  });

  it('answers a 4 GB gzip JSON bomb (4 MB sent) within seconds, byte for byte, as a body too large to check, metered once as not complete', async () => {
    const bombed = await ask(proxy, key, 'json-4096');
    expect(bombed.headMs).toBeLessThan(5_000); // the whole 4 GB was decoded before the first byte
    expect(bombed.status).toBe(200);
    // Larger than any message once decoded (16 MiB), so relayed unchecked, as a plain one.
    expect(bombed.bytes.equals(Buffer.concat(upstream.sent))).toBe(true);
    expect(await rowOf(bombed.id)).toEqual([{ input_tokens: '0', output_tokens: '0', complete: false, metered: true }]);
    expect(logOf(bombed.id)).toMatchObject([
      { msg: 'usage unreadable: the decoded answer is over the cap; metered with what was read' },
      { msg: 'request completed', outcome: 'complete' },
    ]);
  });

  it('stops decoding a bomb when its client leaves: the request is logged and metered within seconds, the upstream hung up on', async () => {
    const left = await ask(proxy, key, 'sse-20000', true);
    await expect.poll(() => logOf(left.id), { timeout: 5_000 }).toMatchObject([{ outcome: 'client_closed' }]);
    expect(await rowOf(left.id)).toEqual([{ input_tokens: '41', output_tokens: '1', complete: false, metered: true }]);
    await expect.poll(() => upstream.closedEarly).toBe(true);
    // Well short of the 20 GB it would have sent.
    expect(upstream.sent.length).toBeLessThan(20_000);
  });
});
