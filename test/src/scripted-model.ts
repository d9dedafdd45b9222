import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import type { Reply, Responder } from './anthropic-test-server.ts';
import { renderSse, type Message } from './anthropic-wire.ts';
import type { BedrockReply, BedrockResponder, ConverseBlock } from './bedrock-test-server.ts';
import { converseStreamFrames } from './bedrock-test-server.ts';

/**
 * One scripted "model" that both test servers play, so a matrix cell is written once and runs on
 * every upstream: a script sees a neutral view of the request (which step of the conversation,
 * the tool results and thinking signatures it carries) and answers neutral blocks, which become
 * Anthropic SSE/JSON or Converse event-stream frames. Conversations are told apart by a marker in
 * the user's text (`[cell:<id>]`), so cells can run at the same time against the same servers.
 */
export interface Citation {
  cited_text: string;
  document_title: string;
}
export type ModelBlock =
  | { type: 'text'; text: string; citations?: Citation[] }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };
export type ModelFailure = 'rate_limit' | 'overloaded' | 'prompt_too_long';
export type ModelReply =
  { content: ModelBlock[]; usage?: { cacheRead?: number; cacheWrite?: number } } | { fail: ModelFailure };

export interface ModelTurn {
  upstream: 'anthropic' | 'bedrock';
  /** The body's schema: Anthropic Messages (Plan, and Bedrock InvokeModel) or Converse. */
  wire: 'messages' | 'converse';
  /** Assistant turns already in the conversation. */
  step: number;
  /** All user-side text (prompts, tool results), to look for markers. */
  userText: string;
  /** The tool results of the last user turn, with the kinds of content each holds. */
  toolResults: Array<{ id: string; text: string; kinds: string[]; isError: boolean }>;
  /** Kinds of the other blocks of the last user turn (`image`, `document`: Claude Code sends a PDF beside its tool result). */
  attachments: string[];
  /** Tool calls of earlier assistant turns (ids as this upstream sees them). */
  toolUses: string[];
  /** Thinking signatures replayed in the request's assistant turns. */
  signatures: string[];
  /** Whether the request marks anything for prompt caching (`cache_control` / `cachePoint`). */
  cacheMarked: boolean;
  body: Record<string, unknown>;
}
export type ModelScript = (turn: ModelTurn) => ModelReply | undefined;

const marker = /\[cell:([\w.-]+)\]/;

/** The cell a request belongs to: the first `[cell:<id>]` in its user-side text. */
export function cellOf(turn: Pick<ModelTurn, 'userText'>): string | undefined {
  return marker.exec(turn.userText)?.[1];
}

type Json = Record<string, unknown>;
const asArray = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);
const textOf = (value: unknown): string =>
  typeof value === 'string'
    ? value
    : asArray(value)
        .map((part) => (typeof part.text === 'string' ? part.text : ''))
        .join('');

/** The neutral view of an Anthropic Messages request (Plan's, or the native body of Bedrock InvokeModel). */
export function anthropicTurn(body: Json, upstream: ModelTurn['upstream'] = 'anthropic'): ModelTurn {
  const messages = asArray(body.messages);
  const blocks = (message: Json | undefined) =>
    typeof message?.content === 'string' ? [{ type: 'text', text: message.content }] : asArray(message?.content);
  const users = messages.filter((m) => m.role === 'user');
  const assistants = messages.filter((m) => m.role === 'assistant').flatMap(blocks);
  const last = users.at(-1);
  return {
    upstream,
    wire: 'messages',
    step: messages.filter((m) => m.role === 'assistant').length,
    userText: users
      .flatMap(blocks)
      .map((b) => (b.type === 'tool_result' ? textOf(b.content) : textOf([b])))
      .join('\n'),
    toolResults: blocks(last)
      .filter((b) => b.type === 'tool_result')
      .map((b) => ({
        id: String(b.tool_use_id),
        text: textOf(b.content),
        kinds: typeof b.content === 'string' ? ['text'] : asArray(b.content).map((part) => String(part.type)),
        isError: b.is_error === true,
      })),
    attachments: blocks(last)
      .map((b) => String(b.type))
      .filter((type) => type !== 'text' && type !== 'tool_result'),
    toolUses: assistants.filter((b) => b.type === 'tool_use').map((b) => String(b.id)),
    signatures: assistants.filter((b) => b.type === 'thinking').map((b) => String(b.signature)),
    cacheMarked: JSON.stringify(body).includes('"cache_control"'),
    body,
  };
}

/** The neutral view of a Converse / ConverseStream request. */
export function converseTurn(body: Json): ModelTurn {
  const messages = asArray(body.messages);
  const users = messages.filter((m) => m.role === 'user');
  const assistants = messages.filter((m) => m.role === 'assistant').flatMap((m) => asArray(m.content));
  const results = (message: Json | undefined) =>
    asArray(message?.content).flatMap((b) => (b.toolResult === undefined ? [] : [b.toolResult as Json]));
  return {
    upstream: 'bedrock',
    wire: 'converse',
    step: messages.filter((m) => m.role === 'assistant').length,
    userText: users
      .flatMap((m) => asArray(m.content))
      .map((b) => (typeof b.text === 'string' ? b.text : textOf((b.toolResult as Json | undefined)?.content)))
      .join('\n'),
    toolResults: results(users.at(-1)).map((r) => ({
      id: String(r.toolUseId),
      text: textOf(r.content),
      kinds: asArray(r.content).map((part) => Object.keys(part)[0] ?? ''),
      isError: r.status === 'error',
    })),
    attachments: asArray(users.at(-1)?.content)
      .map((b) => Object.keys(b)[0] ?? '')
      .filter((kind) => kind !== 'text' && kind !== 'toolResult' && kind !== 'cachePoint'),
    toolUses: assistants.flatMap((b) => (b.toolUse === undefined ? [] : [String((b.toolUse as Json).toolUseId)])),
    signatures: assistants.flatMap((b) => {
      const reasoning = (b.reasoningContent as { reasoningText?: { signature?: string } } | undefined)?.reasoningText;
      return reasoning?.signature === undefined ? [] : [reasoning.signature];
    }),
    cacheMarked: JSON.stringify(body).includes('"cachePoint"'),
    body,
  };
}

/** Responders for both test servers that play `script(cell)` for every marked conversation. */
export function scriptedResponders(script: (cell: string) => ModelScript | undefined): {
  anthropic: Responder;
  bedrock: BedrockResponder;
} {
  const play = (turn: ModelTurn) => {
    const cell = cellOf(turn);
    return cell === undefined ? undefined : script(cell)?.(turn);
  };
  return {
    anthropic: (body) => {
      const reply = play(anthropicTurn(body));
      return reply === undefined ? undefined : toAnthropicReply(reply, body.stream === true, String(body.model));
    },
    bedrock: (body, request) => {
      // CountTokens carries the conversation under input.converse; scripts play only conversation turns.
      if (request.path.endsWith('/count-tokens')) return undefined;
      if (request.operation.startsWith('InvokeModel')) {
        const reply = play(anthropicTurn(body, 'bedrock'));
        return reply === undefined ? undefined : toInvokeReply(reply);
      }
      const reply = play(converseTurn(body));
      return reply === undefined ? undefined : toBedrockReply(reply);
    },
  };
}

const anthropicFailures: Record<ModelFailure, Reply> = {
  rate_limit: {
    kind: 'error',
    status: 429,
    type: 'rate_limit_error',
    message: 'Number of request tokens has exceeded your per-minute rate limit',
    headers: { 'retry-after': '1' },
  },
  overloaded: { kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' },
  prompt_too_long: {
    kind: 'error',
    status: 400,
    type: 'invalid_request_error',
    message: 'prompt is too long: 210000 tokens > 200000 maximum',
  },
};
const bedrockFailures: Record<ModelFailure, BedrockReply> = {
  rate_limit: {
    kind: 'error',
    status: 429,
    name: 'ThrottlingException',
    message: 'Too many requests, please wait before trying again.',
  },
  overloaded: { kind: 'error', status: 503, name: 'ServiceUnavailableException', message: 'Service unavailable' },
  prompt_too_long: {
    kind: 'error',
    status: 400,
    name: 'ValidationException',
    message: 'Input is too long for requested model.',
  },
};

/**
 * InvokeModel refuses as Converse does (same exception names and statuses), except that the
 * model's own validation error comes through in Anthropic's words, behind Bedrock's prefix.
 */
const invokeFailures: Record<ModelFailure, BedrockReply> = {
  ...bedrockFailures,
  prompt_too_long: {
    kind: 'error',
    status: 400,
    name: 'ValidationException',
    message: 'The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum',
  },
};

/** A scripted citation in Anthropic's shape (a `char_location` in the first document). */
const charLocation = (citation: Citation) => ({
  type: 'char_location',
  cited_text: citation.cited_text,
  document_index: 0,
  document_title: citation.document_title,
  start_char_index: 0,
  end_char_index: citation.cited_text.length,
});

/** The script's answer as the native Anthropic message Bedrock's Claude writes over InvokeModel. */
function toInvokeReply(reply: ModelReply): BedrockReply {
  if ('fail' in reply) return invokeFailures[reply.fail];
  return {
    kind: 'anthropic',
    content: reply.content.map((block) =>
      block.type === 'text' && block.citations !== undefined
        ? { type: 'text', text: block.text, citations: block.citations.map(charLocation) }
        : block.type === 'text'
          ? { type: 'text', text: block.text }
          : block,
    ),
    usage: {
      cache_read_input_tokens: reply.usage?.cacheRead ?? 0,
      cache_creation_input_tokens: reply.usage?.cacheWrite ?? 0,
    },
  };
}

function toAnthropicReply(reply: ModelReply, stream: boolean, model: string): Reply {
  if ('fail' in reply) return anthropicFailures[reply.fail];
  const usage = {
    cache_read_input_tokens: reply.usage?.cacheRead ?? 0,
    cache_creation_input_tokens: reply.usage?.cacheWrite ?? 0,
  };
  const content = reply.content.map((block) =>
    block.type === 'text' ? { type: 'text' as const, text: block.text } : block,
  );
  if (!stream || !reply.content.some((block) => block.type === 'text' && block.citations !== undefined))
    return { kind: 'message', content, usage };
  // Citations arrive as `citations_delta` events before their text block's stop.
  const message: Message = {
    id: `msg_scripted_${Date.now()}`,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 25, output_tokens: 12, ...usage },
  };
  const chunks = renderSse(message).flatMap((chunk) => {
    const stop = /"type":"content_block_stop","index":(\d+)/.exec(chunk.toString());
    const block = stop === null ? undefined : reply.content[Number(stop[1])];
    if (block?.type !== 'text' || block.citations === undefined) return [chunk];
    return [
      ...block.citations.map((citation) =>
        sse('content_block_delta', {
          type: 'content_block_delta',
          index: Number(stop?.[1]),
          delta: { type: 'citations_delta', citation: charLocation(citation) },
        }),
      ),
      chunk,
    ];
  });
  return { kind: 'raw', headers: { 'content-type': 'text/event-stream; charset=utf-8' }, chunks };
}

const sse = (name: string, data: unknown) => Buffer.from(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);

function toBedrockReply(reply: ModelReply): BedrockReply {
  if ('fail' in reply) return bedrockFailures[reply.fail];
  const content: ConverseBlock[] = reply.content.map((block) => {
    if (block.type === 'text') return { text: block.text };
    if (block.type === 'thinking')
      return { reasoningContent: { reasoningText: { text: block.thinking, signature: block.signature } } };
    return { toolUse: { toolUseId: block.id, name: block.name, input: block.input } };
  });
  const usage = {
    inputTokens: 30,
    outputTokens: 15,
    totalTokens: 45,
    ...(reply.usage?.cacheRead === undefined ? {} : { cacheReadInputTokens: reply.usage.cacheRead }),
    ...(reply.usage?.cacheWrite === undefined ? {} : { cacheWriteInputTokens: reply.usage.cacheWrite }),
  };
  const citations = reply.content.flatMap((block, index) =>
    block.type === 'text' && block.citations !== undefined ? [{ index, citations: block.citations }] : [],
  );
  if (citations.length === 0) return { kind: 'message', content, usage };
  // ConverseStream sends a citation as a `citation` delta of its text block.
  const frames = converseStreamFrames(content, 'end_turn', usage);
  return { kind: 'frames', frames: withCitationFrames(frames, citations) };
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

const eventFrame = (type: string, payload: unknown) =>
  codec.encode({
    headers: {
      ':message-type': { type: 'string', value: 'event' },
      ':event-type': { type: 'string', value: type },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: fromUtf8(JSON.stringify(payload)),
  });

function withCitationFrames(frames: Uint8Array[], citations: Array<{ index: number; citations: Citation[] }>) {
  return frames.flatMap((bytes) => {
    const decoded = codec.decode(bytes);
    const payload = JSON.parse(toUtf8(decoded.body)) as { contentBlockIndex?: number };
    const found = citations.find((entry) => entry.index === payload.contentBlockIndex);
    if (decoded.headers[':event-type']?.value !== 'contentBlockStop' || found === undefined) return [bytes];
    const citationFrames = found.citations.map((citation) =>
      eventFrame('contentBlockDelta', {
        contentBlockIndex: found.index,
        delta: {
          citation: {
            title: citation.document_title,
            sourceContent: [{ text: citation.cited_text }],
            location: { documentChar: { documentIndex: 0, start: 0, end: citation.cited_text.length } },
          },
        },
      }),
    );
    return [...citationFrames, bytes];
  });
}
