import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { relayBody } from '../src/pipeline/sse-relay.ts';

/**
 * The relay between two real sockets: a client server whose response is fed by `relayBody`
 * from an in-memory upstream stream split into arbitrary chunks.
 */
async function relayThroughServer(chunks: Buffer[], options: { sse: boolean; failAfter?: boolean }) {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': options.sse ? 'text/event-stream' : 'application/json' });
    const body = Readable.from(
      (async function* () {
        for (const chunk of chunks) {
          yield chunk;
          await new Promise((resolve) => setImmediate(resolve));
        }
        if (options.failAfter === true) throw Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
      })(),
    );
    void relayBody(body, res, { sse: options.sse, requestId: 'req-test', signal: new AbortController().signal });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  try {
    const response: IncomingMessage = await new Promise((resolve, reject) =>
      httpRequest({ port, host: '127.0.0.1' }, resolve).on('error', reject).end(),
    );
    const received: Buffer[] = [];
    let aborted = false;
    response.on('data', (chunk: Buffer) => received.push(chunk));
    await new Promise<void>((resolve) => {
      response.on('end', resolve);
      response.on('error', () => ((aborted = true), resolve()));
      response.on('aborted', () => ((aborted = true), resolve()));
    });
    return { body: Buffer.concat(received), aborted };
  } finally {
    server.close();
  }
}

function sse(events: Array<[string, unknown]>): Buffer {
  return Buffer.from(events.map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join(''));
}

function randomSplit(bytes: Buffer, seed: number): Buffer[] {
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) & 0x7fffffff), state);
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = 1 + (next() % 17);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

const stream = sse([
  [
    'message_start',
    { type: 'message_start', message: { id: 'msg_1', content: [], usage: { input_tokens: 3, output_tokens: 1 } } },
  ],
  ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: '한국어 テキスト 🚀 ünïcödé' } },
  ],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } }],
  ['message_stop', { type: 'message_stop' }],
]);

describe('relayBody', () => {
  it('relays SSE byte for byte whatever the chunk boundaries, multi-byte characters split included', async () => {
    for (let seed = 1; seed <= 25; seed += 1) {
      const { body } = await relayThroughServer(randomSplit(stream, seed), { sse: true });
      expect(body.equals(stream), `seed ${seed}`).toBe(true);
    }
  });

  it('ends a broken SSE stream with whole events and then an Anthropic error event, LF or CRLF framed', async () => {
    for (const framed of [stream, Buffer.from(stream.toString().replaceAll('\n', '\r\n'))]) {
      for (let seed = 1; seed <= 10; seed += 1) {
        const cut = framed.indexOf('event: content_block_stop') + 10;
        const { body, aborted } = await relayThroughServer(randomSplit(framed.subarray(0, cut), seed), {
          sse: true,
          failAfter: true,
        });
        expect(aborted).toBe(false);
        const text = body.toString();
        expect(text.startsWith(framed.subarray(0, framed.indexOf('event: content_block_stop')).toString())).toBe(true);
        expect(text).not.toContain('event: content_block_stop');
        expect(
          text.endsWith(
            'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"The upstream API broke off the response."},"request_id":"req-test"}\n\n',
          ),
        ).toBe(true);
      }
    }
  });

  it('aborts a broken non-streaming body instead of passing a truncated JSON as complete', async () => {
    const { aborted, body } = await relayThroughServer([Buffer.from('{"id":"msg_1","content":[{"type":"te')], {
      sse: false,
      failAfter: true,
    });
    expect(aborted).toBe(true);
    expect(body.toString()).toBe('{"id":"msg_1","content":[{"type":"te');
  });

  it('holds back a fast upstream while the client reads slowly (backpressure), then delivers every byte', async () => {
    const event = Buffer.from(
      `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x'.repeat(4000) } })}\n\n`,
    );
    const total = 16_000;
    const stop = Buffer.from('event: message_stop\ndata: {"type":"message_stop"}\n\n');
    const upstream = new PacedUpstream(event, total, stop);
    const { port, outcome, close } = await serveRelay(upstream, { sse: true });
    try {
      const response = await get(port);
      response.pause();
      // Whatever the sockets and both streams buffer, far less than the 64 MB the upstream holds.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(upstream.produced).toBeGreaterThan(0);
      expect(upstream.produced * event.length).toBeLessThan(16 * 1024 * 1024);
      let received = 0;
      response.on('data', (chunk: Buffer) => (received += chunk.length));
      response.resume();
      await once(response, 'end');
      expect(received).toBe(total * event.length + stop.length);
      expect(await outcome).toBe('complete');
    } finally {
      close();
    }
  });

  it('settles as client_closed when the client goes away mid-stream, and an upstream erroring afterwards is no crash', async () => {
    const event = Buffer.from('event: ping\ndata: {"type":"ping"}\n\n');
    const upstream = new PacedUpstream(event, Number.POSITIVE_INFINITY);
    // As undici does once the request's signal aborts: the body is destroyed with an error.
    const aborted = Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
    const { port, outcome, close } = await serveRelay(upstream, { sse: true, destroyWith: aborted });
    try {
      const response = await get(port);
      await once(response, 'data');
      response.destroy();
      expect(await outcome).toBe('client_closed');
      // Not `once(upstream, 'close')`: it would listen for the error itself.
      if (!upstream.closed) await new Promise((resolve) => upstream.on('close', resolve));
      expect(upstream.errored).toBe(aborted);
    } finally {
      close();
    }
  });
});

/** An upstream that makes an event only when asked for one: `produced` shows how far the relay pulled. */
class PacedUpstream extends Readable {
  produced = 0;
  readonly #event: Buffer;
  readonly #total: number;
  #last: Buffer | undefined;

  constructor(event: Buffer, total: number, last?: Buffer) {
    super();
    this.#event = event;
    this.#total = total;
    this.#last = last;
  }

  override _read(): void {
    if (this.produced >= this.#total) {
      if (this.#last !== undefined) this.push(this.#last);
      this.#last = undefined;
      return void this.push(null);
    }
    this.produced += 1;
    setImmediate(() => this.push(this.#event));
  }
}

/** A server relaying `upstream` to its one client with the pipeline's abort-on-close wiring. */
async function serveRelay(upstream: Readable, options: { sse: boolean; destroyWith?: Error }) {
  let settle: (outcome: string) => void = () => undefined;
  const outcome = new Promise<string>((resolve) => (settle = resolve));
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    void relayBody(upstream, res, { sse: options.sse, requestId: 'req-test', signal: controller.signal }).then(
      (result) => {
        if (result !== 'complete') upstream.destroy(options.destroyWith);
        settle(result);
      },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, outcome, close: () => server.close() };
}

function get(port: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => httpRequest({ port, host: '127.0.0.1' }, resolve).on('error', reject).end());
}
