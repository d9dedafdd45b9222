import { createServer } from 'node:http';
import { encodeEventFrame } from '@ccproxy/proxy';

/**
 * The benchmark's Bedrock Runtime: ConverseStream / Converse answers with no validation and no
 * delay, so the measured difference to the Plan path is the proxy's translation. Prints its port.
 */
const frames = Buffer.concat([
  encodeEventFrame('messageStart', { role: 'assistant' }),
  ...Array.from({ length: 20 }, () =>
    encodeEventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'tokens tokens ' } }),
  ),
  encodeEventFrame('contentBlockStop', { contentBlockIndex: 0 }),
  encodeEventFrame('messageStop', { stopReason: 'end_turn' }),
  encodeEventFrame('metadata', { usage: { inputTokens: 120, outputTokens: 180, totalTokens: 300 } }),
]);
const json = JSON.stringify({
  output: { message: { role: 'assistant', content: [{ text: 'x'.repeat(700) }] } },
  stopReason: 'end_turn',
  usage: { inputTokens: 120, outputTokens: 180, totalTokens: 300 },
});

const server = createServer((req, res) => {
  res.socket?.setNoDelay(true);
  req.resume();
  req.on('end', () => {
    if (req.url?.endsWith('/converse-stream') === true) {
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
      res.end(frames);
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) }).end(json);
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', 4096, () => {
  const address = server.address();
  if (address !== null && typeof address !== 'string') process.stdout.write(`${address.port}\n`);
});
