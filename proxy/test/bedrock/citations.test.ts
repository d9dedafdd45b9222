import { describe, expect, it } from 'vitest';
import { SmithyValidator, streamEventsFor, type ScriptedReply } from '@ccproxy/test-harness';
import { encodeEventFrame } from '../../src/adapters/bedrock/event-stream-frames.ts';
import { fromConverseResponse } from '../../src/adapters/bedrock/response.ts';
import { ConverseStreamTranslator } from '../../src/adapters/bedrock/stream.ts';
import { ToolNameMap } from '../../src/adapters/bedrock/tool-names.ts';
import type { ConverseResponse } from '../../src/adapters/bedrock/converse-types.ts';
import { sdkFinalMessage } from './sdk-final-message.ts';

/**
 * Converse `citationsContent` blocks and `citation` deltas → Anthropic text blocks with
 * `citations` and `citations_delta`, for every location kind Converse defines; the JSON answer
 * and the stream (assembled by the official SDK) give the same message.
 */
const sourceContent = [{ text: 'The sky is blue.' }];
const cases: Array<[kind: string, converse: Record<string, unknown>, anthropic: Record<string, unknown>]> = [
  [
    'char_location',
    { title: 'Facts', sourceContent, location: { documentChar: { documentIndex: 0, start: 0, end: 16 } } },
    {
      type: 'char_location',
      cited_text: 'The sky is blue.',
      document_index: 0,
      document_title: 'Facts',
      start_char_index: 0,
      end_char_index: 16,
      file_id: null,
    },
  ],
  [
    'page_location',
    { title: 'Report', sourceContent, location: { documentPage: { documentIndex: 1, start: 2, end: 3 } } },
    {
      type: 'page_location',
      cited_text: 'The sky is blue.',
      document_index: 1,
      document_title: 'Report',
      start_page_number: 2,
      end_page_number: 3,
      file_id: null,
    },
  ],
  [
    'content_block_location',
    { sourceContent, location: { documentChunk: { documentIndex: 2, start: 0, end: 1 } } },
    {
      type: 'content_block_location',
      cited_text: 'The sky is blue.',
      document_index: 2,
      document_title: null,
      start_block_index: 0,
      end_block_index: 1,
      file_id: null,
    },
  ],
  [
    'search_result_location',
    {
      title: 'Sky',
      source: 'https://example.com/sky',
      sourceContent,
      location: { searchResultLocation: { searchResultIndex: 0, start: 0, end: 1 } },
    },
    {
      type: 'search_result_location',
      cited_text: 'The sky is blue.',
      search_result_index: 0,
      source: 'https://example.com/sky',
      title: 'Sky',
      start_block_index: 0,
      end_block_index: 1,
    },
  ],
  [
    'web_search_result_location',
    { title: 'Sky', sourceContent, location: { web: { url: 'https://example.com/sky', domain: 'example.com' } } },
    {
      type: 'web_search_result_location',
      cited_text: 'The sky is blue.',
      url: 'https://example.com/sky',
      title: 'Sky',
      encrypted_index: '',
    },
  ],
];

const validator = new SmithyValidator();
const context = () => ({ model: 'm', messageId: 'id', toolNames: new ToolNameMap() });

function script(citation: Record<string, unknown>): ScriptedReply {
  return {
    kind: 'scripted',
    content: [
      { text: 'Look: ' },
      { citationsContent: { content: [{ text: 'the sky is blue' }], citations: [citation, citation] } },
      { text: '.' },
    ],
  };
}

function translateStream(frames: Array<[string, Record<string, unknown>]>): string {
  const translator = new ConverseStreamTranslator({ ...context(), requestId: 'r' });
  const sse = translator.push(Buffer.concat(frames.map(([event, payload]) => encodeEventFrame(event, payload))));
  return sse + translator.finish();
}

describe('citations from Bedrock Converse', () => {
  for (const [kind, converse, anthropic] of cases) {
    const expected = [
      { type: 'text', text: 'Look: ' },
      { type: 'text', text: 'the sky is blue', citations: [anthropic, anthropic] },
      { type: 'text', text: '.' },
    ];

    it(`${kind}: a citationsContent block becomes a text block with citations (JSON)`, () => {
      const reply = script(converse);
      const response = {
        output: { message: { role: 'assistant', content: reply.content } },
        stopReason: 'end_turn',
        usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 },
        metrics: { latencyMs: 1 },
      };
      // The answer is one real Bedrock can send.
      expect(validator.validate('ConverseResponse', response)).toEqual([]);
      const { message } = fromConverseResponse(response as unknown as ConverseResponse, context());
      expect(message.content).toEqual(expected);
    });

    it(`${kind}: citation deltas become citations_delta, in either order with the text (stream)`, async () => {
      const events = streamEventsFor(script(converse));
      for (const [event, payload] of events)
        expect(validator.validate('ConverseStreamOutput', { [event]: payload })).toEqual([]);
      const sse = translateStream(events);
      expect(sse).toContain(`"delta":{"type":"citations_delta","citation":${JSON.stringify(anthropic)}}`);
      expect((await sdkFinalMessage(sse)).content).toEqual(expected);
      // Text first, citations after (the order is Bedrock's to choose): the same message.
      const textFirst = [...events];
      const citationDeltas = textFirst.filter(([, payload]) => 'citation' in ((payload.delta ?? {}) as object));
      const withoutCitations = textFirst.filter((event) => !citationDeltas.includes(event));
      const stopOfCited = withoutCitations.findIndex(
        ([event, payload]) => event === 'contentBlockStop' && payload.contentBlockIndex === 1,
      );
      withoutCitations.splice(stopOfCited, 0, ...citationDeltas);
      expect((await sdkFinalMessage(translateStream(withoutCitations))).content).toEqual(expected);
    });
  }
});
