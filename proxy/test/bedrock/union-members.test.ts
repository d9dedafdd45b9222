import { describe, expect, it } from 'vitest';
import { encodeEventFrame } from '../../src/adapters/bedrock/event-stream-frames.ts';
import { fromConverseResponse } from '../../src/adapters/bedrock/response.ts';
import { ConverseStreamTranslator } from '../../src/adapters/bedrock/stream.ts';
import { ToolNameMap } from '../../src/adapters/bedrock/tool-names.ts';
import type { ConverseResponse } from '../../src/adapters/bedrock/converse-types.ts';
import { sdkFinalMessage } from './sdk-final-message.ts';

/**
 * One rule for members of Bedrock's unions the proxy cannot translate: skipped, logged once with
 * the union and member name only, and everything else in the answer still arrives — never a
 * crash, never a 5xx. The tables hold every member the Smithy model lists that an answer cannot
 * carry to Anthropic, plus ones a newer Bedrock may add.
 */
const secret = 'CONTENT-THAT-MUST-NOT-BE-LOGGED';

function recordingLog() {
  const lines: Array<{ fields: Record<string, unknown>; message: string }> = [];
  return { lines, warn: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }) };
}

/** `ContentBlock` members in a Converse answer: model members Anthropic cannot express, and newer ones. */
const unknownBlocks: Array<[member: string, value: unknown]> = [
  ['image', { format: 'png', source: { bytes: Buffer.from(secret).toString('base64') } }],
  ['document', { format: 'txt', name: 'doc', source: { text: secret } }],
  ['video', { format: 'mp4', source: { bytes: 'AAAA' } }],
  ['audio', { format: 'mp3', source: { bytes: 'AAAA' } }],
  ['toolResult', { toolUseId: 't', content: [{ text: secret }] }],
  ['guardContent', { text: { text: secret } }],
  ['cachePoint', { type: 'default' }],
  ['searchResult', { source: 's', title: 't', content: [{ text: secret }] }],
  ['hologram', { payload: secret }],
];

describe('unknown members of ContentBlock in a Converse answer', () => {
  for (const [member, value] of unknownBlocks)
    it(`skips ${member} and keeps the rest`, () => {
      const log = recordingLog();
      const response = {
        output: {
          message: { role: 'assistant', content: [{ text: 'before' }, { [member]: value }, { text: 'after' }] },
        },
        stopReason: 'end_turn',
        usage: { inputTokens: 3, outputTokens: 4 },
      } as unknown as ConverseResponse;
      const { message, usage } = fromConverseResponse(response, {
        model: 'm',
        messageId: 'id',
        toolNames: new ToolNameMap(),
        log,
      });
      expect(message.content).toEqual([
        { type: 'text', text: 'before' },
        { type: 'text', text: 'after' },
      ]);
      expect(usage.output_tokens).toBe(4);
      expect(log.lines).toEqual([{ fields: { skipped: `ContentBlock.${member}` }, message: expect.any(String) }]);
      expect(JSON.stringify(log.lines)).not.toContain(secret);
    });

  it('skips an unknown reasoning member, an empty block and an unknown citation location', () => {
    const log = recordingLog();
    const { message } = fromConverseResponse(
      {
        output: {
          message: {
            role: 'assistant',
            content: [
              { reasoningContent: { futureReasoning: { text: secret } } },
              {},
              {
                citationsContent: {
                  content: [{ text: 'cited' }],
                  citations: [
                    { title: 'd', sourceContent: [{ text: secret }], location: { hologramLocation: { at: 1 } } },
                  ],
                },
              },
            ],
          },
        },
        stopReason: 'end_turn',
        usage: { inputTokens: 1, outputTokens: 1 },
      } as unknown as ConverseResponse,
      { model: 'm', messageId: 'id', toolNames: new ToolNameMap(), log },
    );
    expect(message.content).toEqual([{ type: 'text', text: 'cited', citations: [] }]);
    expect(log.lines.map((line) => line.fields.skipped)).toEqual([
      'ReasoningContentBlock.futureReasoning',
      'ContentBlock.(none)',
      'CitationLocation.hologramLocation',
    ]);
    expect(JSON.stringify(log.lines)).not.toContain(secret);
  });
});

type Frame = [event: string, payload: Record<string, unknown>];
/** Unknown members at every level of a ConverseStream, each between known text. */
const unknownStreamParts: Array<[kind: string, frames: Frame[]]> = [
  [
    'ContentBlockStart.toolResult',
    [
      ['contentBlockStart', { contentBlockIndex: 1, start: { toolResult: { toolUseId: 't', status: 'success' } } }],
      ['contentBlockDelta', { contentBlockIndex: 1, delta: { toolResult: [{ text: secret }] } }],
      ['contentBlockStop', { contentBlockIndex: 1 }],
    ],
  ],
  [
    'ContentBlockStart.image',
    [
      ['contentBlockStart', { contentBlockIndex: 1, start: { image: { format: 'png' } } }],
      ['contentBlockDelta', { contentBlockIndex: 1, delta: { image: { source: { bytes: 'AAAA' } } } }],
      ['contentBlockDelta', { contentBlockIndex: 1, delta: { image: { source: { bytes: 'BBBB' } } } }],
      ['contentBlockStop', { contentBlockIndex: 1 }],
    ],
  ],
  [
    'ContentBlockStart.hologram',
    [
      ['contentBlockStart', { contentBlockIndex: 1, start: { hologram: { secret } } }],
      ['contentBlockStop', { contentBlockIndex: 1 }],
    ],
  ],
  [
    'ContentBlockDelta.hologram',
    [
      ['contentBlockDelta', { contentBlockIndex: 1, delta: { hologram: { secret } } }],
      ['contentBlockStop', { contentBlockIndex: 1 }],
    ],
  ],
  [
    'ReasoningContentBlockDelta.futureReasoning',
    [
      ['contentBlockDelta', { contentBlockIndex: 1, delta: { reasoningContent: { futureReasoning: secret } } }],
      ['contentBlockStop', { contentBlockIndex: 1 }],
    ],
  ],
  [
    'CitationLocation.hologramLocation',
    [
      [
        'contentBlockDelta',
        {
          contentBlockIndex: 1,
          delta: { citation: { sourceContent: [{ text: secret }], location: { hologramLocation: {} } } },
        },
      ],
      ['contentBlockStop', { contentBlockIndex: 1 }],
    ],
  ],
  ['ConverseStreamOutput.futureEvent', [['futureEvent', { secret }]]],
];

function streamWith(middle: Frame[]): Buffer {
  const frames: Frame[] = [
    ['messageStart', { role: 'assistant' }],
    ['contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'before' } }],
    ['contentBlockStop', { contentBlockIndex: 0 }],
    ...middle,
    ['contentBlockDelta', { contentBlockIndex: 2, delta: { text: 'after' } }],
    ['contentBlockStop', { contentBlockIndex: 2 }],
    ['messageStop', { stopReason: 'end_turn' }],
    ['metadata', { usage: { inputTokens: 3, outputTokens: 4 } }],
  ];
  return Buffer.concat(frames.map(([event, payload]) => encodeEventFrame(event, payload)));
}

describe('unknown members in a ConverseStream', () => {
  for (const [kind, middle] of unknownStreamParts)
    it(`skips ${kind} and the stream still completes`, async () => {
      const log = recordingLog();
      const translator = new ConverseStreamTranslator({
        model: 'm',
        messageId: 'id',
        requestId: 'r',
        toolNames: new ToolNameMap(),
        log,
      });
      const sse = translator.push(streamWith(middle)) + translator.finish();
      expect(translator.failed).toBe(false);
      expect(sse).not.toContain(secret);
      const message = await sdkFinalMessage(sse);
      expect(message.content).toEqual([
        { type: 'text', text: 'before' },
        { type: 'text', text: 'after' },
      ]);
      expect(message.usage.output_tokens).toBe(4);
      // Logged once per kind, however many deltas it had, and never with its content.
      expect(log.lines.map((line) => line.fields.skipped)).toEqual(
        kind === 'ContentBlockStart.toolResult'
          ? [kind, 'ContentBlockDelta.toolResult']
          : kind === 'ContentBlockStart.image'
            ? [kind, 'ContentBlockDelta.image']
            : [kind],
      );
      expect([...translator.skipped]).toEqual(log.lines.map((line) => line.fields.skipped));
      expect(JSON.stringify(log.lines)).not.toContain(secret);
    });
});
