import { createServer } from 'node:http';

/**
 * The benchmark's upstream: the cheapest server that speaks the Messages wire format, so what
 * is measured is the proxy, not the test server. `?events=N&gapMs=G` shape the SSE stream.
 * Prints its port on stdout once listening.
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
const head = sse('message_start', { type: 'message_start', message: { ...JSON.parse(message), content: [], stop_reason: null } }) + sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
const delta = sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'tokens tokens ' } });
const tail = sse('content_block_stop', { type: 'content_block_stop', index: 0 }) + sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 180 } }) + sse('message_stop', { type: 'message_stop' });

const server = createServer((req, res) => {
  res.socket?.setNoDelay(true);
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://x');
    // The failover scenario: Anthropic overloaded, answered at once.
    if (req.headers['x-bench-fail'] === '529') {
      res.writeHead(529, { 'content-type': 'application/json' }).end('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}');
      return;
    }
    if (!Buffer.concat(chunks).includes('"stream":true')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(message), 'request-id': 'req_bench' }).end(message);
      return;
    }
    const events = Number(url.searchParams.get('events') ?? '20');
    const gapMs = Number(url.searchParams.get('gapMs') ?? '0');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_bench' });
    res.write(head);
    let sent = 0;
    const next = () => {
      if (res.destroyed) return;
      if (sent === events) return void res.end(tail);
      sent += 1;
      res.write(delta);
      if (gapMs > 0) setTimeout(next, gapMs);
      else setImmediate(next);
    };
    next();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address !== null && typeof address !== 'string') process.stdout.write(`${address.port}\n`);
});
