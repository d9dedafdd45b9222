import { ConverseStreamTranslator, encodeEventFrame, InvokeStreamTranslator, ToolNameMap } from '@ccproxy/proxy';

/** µs per ConverseStream frame turned into SSE, in-process: text deltas fed one frame per chunk. */
export function translationCostPerFrame(frames: number): number {
  const delta = encodeEventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'tokens tokens ' } });
  const start = encodeEventFrame('messageStart', { role: 'assistant' });
  let sink = 0;
  const run = (count: number) => {
    const translator = new ConverseStreamTranslator({
      model: 'claude-bench',
      messageId: 'msg_bench',
      requestId: 'req_bench',
      toolNames: new ToolNameMap(),
    });
    sink += translator.push(start).length;
    for (let i = 0; i < count; i += 1) sink += translator.push(delta).length;
  };
  run(Math.min(frames, 5_000));
  const began = process.hrtime.bigint();
  run(frames);
  const micros = Number(process.hrtime.bigint() - began) / 1e3 / frames;
  if (sink === 0) throw new Error('translation produced nothing');
  return micros;
}

/** µs per InvokeModelWithResponseStream `chunk` frame turned into SSE (base64 decode, no parse for deltas). */
export function invokeTranslationCostPerFrame(frames: number): number {
  const chunk = (event: object) =>
    encodeEventFrame('chunk', { bytes: Buffer.from(JSON.stringify(event)).toString('base64') });
  const delta = chunk({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'tokens tokens ' } });
  let sink = 0;
  const run = (count: number) => {
    const translator = new InvokeStreamTranslator('req_bench');
    for (let i = 0; i < count; i += 1) sink += translator.push(delta).length;
  };
  run(Math.min(frames, 5_000));
  const began = process.hrtime.bigint();
  run(frames);
  const micros = Number(process.hrtime.bigint() - began) / 1e3 / frames;
  if (sink === 0) throw new Error('translation produced nothing');
  return micros;
}
