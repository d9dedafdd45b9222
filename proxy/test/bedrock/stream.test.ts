import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { encodeEventFrame } from '../../src/adapters/bedrock/event-stream-frames.ts';
import { ConverseStreamTranslator } from '../../src/adapters/bedrock/stream.ts';
import { ToolNameMap } from '../../src/adapters/bedrock/tool-names.ts';
import { sdkFinalMessage } from './sdk-final-message.ts';

const longTool = 'mcp__company_knowledge_base__search_documents_by_semantic_similarity_and_filters';

function frames(toolNames: ToolNameMap): Uint8Array {
  const parts = [
    encodeEventFrame('messageStart', { role: 'assistant', p: 'abcdefgh' }),
    encodeEventFrame('contentBlockDelta', {
      contentBlockIndex: 0,
      delta: { reasoningContent: { text: 'Think ' } },
      p: 'x',
    }),
    encodeEventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { text: 'hard 🤔' } } }),
    encodeEventFrame('contentBlockDelta', {
      contentBlockIndex: 0,
      delta: { reasoningContent: { signature: 'sig-123' } },
    }),
    encodeEventFrame('contentBlockStop', { contentBlockIndex: 0 }),
    encodeEventFrame('contentBlockDelta', { contentBlockIndex: 1, delta: { text: 'Héllo ' } }),
    encodeEventFrame('contentBlockDelta', { contentBlockIndex: 1, delta: { text: 'wörld' } }),
    encodeEventFrame('contentBlockStop', { contentBlockIndex: 1 }),
    encodeEventFrame('contentBlockStart', {
      contentBlockIndex: 2,
      start: { toolUse: { toolUseId: 'tooluse_abc', name: toolNames.toBedrock(longTool) } },
    }),
    encodeEventFrame('contentBlockDelta', { contentBlockIndex: 2, delta: { toolUse: { input: '{"q":' } } }),
    encodeEventFrame('contentBlockDelta', { contentBlockIndex: 2, delta: { toolUse: { input: '"ünï"}' } } }),
    encodeEventFrame('contentBlockStop', { contentBlockIndex: 2 }),
    encodeEventFrame('contentBlockStart', {
      contentBlockIndex: 3,
      start: { toolUse: { toolUseId: 'tooluse_def', name: 'Read' } },
    }),
    encodeEventFrame('contentBlockStop', { contentBlockIndex: 3 }),
    encodeEventFrame('messageStop', { stopReason: 'tool_use' }),
    encodeEventFrame('metadata', {
      usage: { inputTokens: 11, outputTokens: 22, totalTokens: 33, cacheReadInputTokens: 5, cacheWriteInputTokens: 7 },
      metrics: { latencyMs: 10 },
    }),
  ];
  return Buffer.concat(parts);
}

function randomSplit(bytes: Uint8Array, seed: number): Uint8Array[] {
  let state = seed;
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    const size = 1 + (state % 97);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

function translate(chunks: Uint8Array[], toolNames: ToolNameMap): string {
  const translator = new ConverseStreamTranslator({
    model: 'claude-sonnet-4-5',
    messageId: 'msg_bdrk_1',
    requestId: 'req-1',
    toolNames,
  });
  return chunks.map((chunk) => translator.push(chunk)).join('') + translator.finish();
}

describe('ConverseStreamTranslator', () => {
  it('produces the same SSE whatever the chunk boundaries', () => {
    const toolNames = new ToolNameMap();
    const bytes = frames(toolNames);
    const whole = translate([bytes], toolNames);
    for (let seed = 1; seed <= 40; seed += 1)
      expect(translate(randomSplit(bytes, seed), toolNames), `seed ${seed}`).toBe(whole);
    const events = [...whole.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(events).toEqual([
      'message_start',
      'ping',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
  });

  it('is assembled by the official SDK into the right message, usage included', async () => {
    const toolNames = new ToolNameMap();
    const message = await sdkFinalMessage(translate([frames(toolNames)], toolNames));
    expect(message.content).toEqual([
      { type: 'thinking', thinking: 'Think hard 🤔', signature: 'sig-123' },
      { type: 'text', text: 'Héllo wörld' },
      { type: 'tool_use', id: 'tooluse_abc', name: longTool, input: { q: 'ünï' } },
      { type: 'tool_use', id: 'tooluse_def', name: 'Read', input: {} },
    ]);
    expect(message.stop_reason).toBe('tool_use');
    expect(message.usage).toMatchObject({
      input_tokens: 11,
      output_tokens: 22,
      cache_read_input_tokens: 5,
      cache_creation_input_tokens: 7,
    });
  });

  it('opens a thinking block on a signature-only delta', async () => {
    const bytes = Buffer.concat([
      encodeEventFrame('messageStart', { role: 'assistant' }),
      encodeEventFrame('contentBlockDelta', {
        contentBlockIndex: 0,
        delta: { reasoningContent: { signature: 'only-sig' } },
      }),
      encodeEventFrame('contentBlockStop', { contentBlockIndex: 0 }),
      encodeEventFrame('contentBlockDelta', { contentBlockIndex: 1, delta: { text: 'ok' } }),
      encodeEventFrame('messageStop', { stopReason: 'end_turn' }),
      encodeEventFrame('metadata', { usage: { inputTokens: 1, outputTokens: 1 } }),
    ]);
    const message = await sdkFinalMessage(translate([bytes], new ToolNameMap()));
    expect(message.content).toEqual([
      { type: 'thinking', thinking: '', signature: 'only-sig' },
      { type: 'text', text: 'ok' },
    ]);
  });

  it('ends with an error event on an exception frame, and on a stream cut short', async () => {
    const start = [
      encodeEventFrame('messageStart', { role: 'assistant' }),
      encodeEventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'partial' } }),
    ];
    const throttled = translate(
      [
        Buffer.concat([
          ...start,
          encodeEventFrame('throttlingException', { message: 'Too many tokens, please wait' }, 'exception'),
        ]),
      ],
      new ToolNameMap(),
    );
    expect(
      throttled.endsWith(
        'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"Too many tokens, please wait"},"request_id":"req-1"}\n\n',
      ),
    ).toBe(true);
    const overloaded = translate(
      [
        Buffer.concat([
          ...start,
          encodeEventFrame('modelStreamErrorException', { message: 'x', originalStatusCode: 529 }, 'exception'),
        ]),
      ],
      new ToolNameMap(),
    );
    expect(overloaded).toContain('"type":"overloaded_error"');
    const cut = translate([Buffer.concat(start)], new ToolNameMap());
    expect(cut).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"api_error"/);
    await expect(sdkFinalMessage(throttled)).rejects.toBeInstanceOf(Anthropic.APIError);
    const garbage = new ConverseStreamTranslator({
      model: 'm',
      messageId: 'x',
      requestId: 'r',
      toolNames: new ToolNameMap(),
    });
    expect(garbage.push(Buffer.from('\x00\x00\x00\x20this is not an event stream frame'))).toMatch(/event: error/);
    expect(garbage.ended).toBe(true);
  });
});
