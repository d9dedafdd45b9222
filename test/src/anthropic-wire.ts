/**
 * The Anthropic Messages API wire format, as the test server speaks it: message JSON, the SSE
 * event sequence of a streamed message, and error bodies. Shapes follow the API reference and
 * are checked against the official SDK in test/test/anthropic-test-server.test.ts.
 */

export type ContentBlock =
  | { type: 'text'; text: string; citations?: Array<Record<string, unknown>> }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface Message {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ContentBlock[];
  stop_reason: 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence';
  stop_sequence: string | null;
  usage: Usage;
}

export function anthropicError(type: string, message: string, requestId: string): string {
  return JSON.stringify({ type: 'error', error: { type, message }, request_id: requestId });
}

function event(name: string, data: unknown): Buffer {
  return Buffer.from(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** Splits a string into `parts` pieces (by code point, so no character is cut). */
function pieces(text: string, parts: number): string[] {
  const chars = [...text];
  const size = Math.max(1, Math.ceil(chars.length / parts));
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out.length > 0 ? out : [''];
}

/** The SSE events of `message`, one Buffer per event, in the order the API sends them. */
export function renderSse(message: Message): Buffer[] {
  const { content, usage, stop_reason, stop_sequence, ...head } = message;
  const events: Buffer[] = [
    event('message_start', {
      type: 'message_start',
      message: { ...head, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } },
    }),
  ];
  content.forEach((block, index) => {
    if (block.type === 'text') {
      events.push(
        event('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }),
      );
      if (index === 0) events.push(event('ping', { type: 'ping' }));
      // A cited span's citations come first, one `citations_delta` each, then its text.
      for (const citation of block.citations ?? [])
        events.push(
          event('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'citations_delta', citation },
          }),
        );
      for (const text of pieces(block.text, 3)) {
        events.push(
          event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text } }),
        );
      }
    } else if (block.type === 'thinking') {
      events.push(
        event('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { type: 'thinking', thinking: '', signature: '' },
        }),
      );
      for (const thinking of pieces(block.thinking, 2)) {
        events.push(
          event('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'thinking_delta', thinking },
          }),
        );
      }
      events.push(
        event('content_block_delta', {
          type: 'content_block_delta',
          index,
          delta: { type: 'signature_delta', signature: block.signature },
        }),
      );
    } else {
      events.push(
        event('content_block_start', { type: 'content_block_start', index, content_block: { ...block, input: {} } }),
      );
      for (const partial_json of pieces(JSON.stringify(block.input), 3)) {
        events.push(
          event('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json },
          }),
        );
      }
    }
    events.push(event('content_block_stop', { type: 'content_block_stop', index }));
  });
  events.push(
    event('message_delta', {
      type: 'message_delta',
      delta: { stop_reason, stop_sequence },
      usage: { output_tokens: usage.output_tokens },
    }),
    event('message_stop', { type: 'message_stop' }),
  );
  return events;
}
