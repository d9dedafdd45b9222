import { createServer, type ServerResponse } from 'node:http';
import { eventStampPrefix, monotonicMs } from './drivers.ts';

/**
 * The benchmark's upstream: the cheapest server that speaks the Messages wire format, so what
 * is measured is the proxy, not the test server. `?events=N&gapMs=G&delayMs=D` (or the headers
 * `x-bench-events`, `x-bench-gap-ms`, `x-bench-delay-ms`, for gateways that drop the query) shape
 * the answer: N deltas G ms apart, after D ms before the head; `x-bench-stamp: 1` writes into each
 * delta's text the monotonic time it was written. Prints its port once listening.
 */
const message = JSON.stringify({
  id: 'msg_bench',
  type: 'message',
  role: 'assistant',
  model: 'claude-bench',
  content: [{ type: 'text', text: 'x'.repeat(700) }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 120, output_tokens: 180, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
});
const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const head =
  sse('message_start', { type: 'message_start', message: { ...JSON.parse(message), content: [], stop_reason: null } }) +
  sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
const delta = sse('content_block_delta', {
  type: 'content_block_delta',
  index: 0,
  delta: { type: 'text_delta', text: 'tokens tokens ' },
});
/** A delta whose text is the monotonic time it was written (`x-bench-stamp: 1`): the driver reads each event's delivery delay from it. */
const stampedDelta = () =>
  sse('content_block_delta', {
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'text_delta', text: `${eventStampPrefix}${monotonicMs().toFixed(4)}` },
  });
const tail =
  sse('content_block_stop', { type: 'content_block_stop', index: 0 }) +
  sse('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { output_tokens: 180 },
  }) +
  sse('message_stop', { type: 'message_stop' });

const streamWanted = /"stream"\s*:\s*true/;
const server = createServer((req, res) => {
  res.socket?.setNoDelay(true);
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://x');
    const shape = (name: string, header: string, fallback: number) =>
      Number(url.searchParams.get(name) ?? req.headers[header] ?? fallback);
    const delayMs = shape('delayMs', 'x-bench-delay-ms', 0);
    const answer = () =>
      respond(
        req.headers['x-bench-fail'] === '529',
        // Python gateways (LiteLLM) re-serialise the body with a space after the colon.
        streamWanted.test(Buffer.concat(chunks).toString('latin1')),
        shape('events', 'x-bench-events', 20),
        shape('gapMs', 'x-bench-gap-ms', 0),
        req.headers['x-bench-stamp'] === '1',
        res,
      );
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});

function respond(
  fail: boolean,
  stream: boolean,
  events: number,
  gapMs: number,
  stamp: boolean,
  res: ServerResponse,
): void {
  // The failover scenario: Anthropic overloaded, answered at once.
  if (fail) {
    res
      .writeHead(529, { 'content-type': 'application/json' })
      .end('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}');
    return;
  }
  if (!stream) {
    res
      .writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(message),
        'request-id': 'req_bench',
      })
      .end(message);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_bench' });
  res.write(head);
  let sent = 0;
  const next = () => {
    if (res.destroyed) return;
    if (sent === events) return void res.end(tail);
    sent += 1;
    res.write(stamp ? stampedDelta() : delta);
    if (gapMs > 0) setTimeout(next, gapMs);
    else setImmediate(next);
  };
  next();
}

server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', 4096, () => {
  const address = server.address();
  if (address !== null && typeof address !== 'string') process.stdout.write(`${address.port}\n`);
});
