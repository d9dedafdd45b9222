import { createServer } from 'node:http';
import { encodeEventFrame } from '@ccproxy/proxy';

/**
 * The benchmark's Bedrock Runtime: ConverseStream / Converse and InvokeModelWithResponseStream /
 * InvokeModel answers (the same 20 text deltas) with no validation and no delay, so the measured
 * difference to the Plan path is the proxy's translation. Prints its port.
 */
/** Bedrock pads every event with a random-length `p` member; these carry one, as real ones do. */
const p = 'abcdefghijklmnopqrstuvwxyzABCDEF';
const frames = Buffer.concat([
  encodeEventFrame('messageStart', { role: 'assistant', p }),
  ...Array.from({ length: 20 }, () =>
    encodeEventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'tokens tokens ' }, p }),
  ),
  encodeEventFrame('contentBlockStop', { contentBlockIndex: 0, p }),
  encodeEventFrame('messageStop', { stopReason: 'end_turn', p }),
  encodeEventFrame('metadata', { usage: { inputTokens: 120, outputTokens: 180, totalTokens: 300 }, p }),
]);
/** InvokeModelWithResponseStream: `chunk` events whose base64 `bytes` are Anthropic stream events. */
const chunk = (event: object) =>
  encodeEventFrame('chunk', { bytes: Buffer.from(JSON.stringify(event)).toString('base64'), p });
const usage = { input_tokens: 120, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
const message = { id: 'msg_bdrk_bench', type: 'message', role: 'assistant', model: 'claude-bench', content: [] };
const invokeFrames = Buffer.concat([
  chunk({ type: 'message_start', message: { ...message, stop_reason: null, stop_sequence: null, usage } }),
  chunk({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
  ...Array.from({ length: 20 }, () =>
    chunk({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'tokens tokens ' } }),
  ),
  chunk({ type: 'content_block_stop', index: 0 }),
  chunk({
    type: 'message_delta',
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { output_tokens: 180 },
  }),
  chunk({ type: 'message_stop' }),
]);
const invokeJson = JSON.stringify({
  ...message,
  content: [{ type: 'text', text: 'x'.repeat(700) }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { ...usage, output_tokens: 180 },
});
const json = JSON.stringify({
  output: { message: { role: 'assistant', content: [{ text: 'x'.repeat(700) }] } },
  stopReason: 'end_turn',
  usage: { inputTokens: 120, outputTokens: 180, totalTokens: 300 },
});

const server = createServer((req, res) => {
  res.socket?.setNoDelay(true);
  req.resume();
  req.on('end', () => {
    const url = req.url ?? '';
    if (url.endsWith('/converse-stream') || url.endsWith('/invoke-with-response-stream')) {
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
      res.end(url.endsWith('/converse-stream') ? frames : invokeFrames);
    } else if (url.endsWith('/invoke')) {
      res
        .writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(invokeJson) })
        .end(invokeJson);
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
