import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import type { ContentBlock, Usage } from './anthropic-wire.ts';
import type { BedrockReply, ConverseBlock } from './bedrock-test-server.ts';
import { invokeModelBodyRules } from './bedrock-invoke-rules.ts';
import type { SmithyValidator } from './smithy-validator.ts';

const codec = new EventStreamCodec(toUtf8, fromUtf8);

export interface InvokeRequest {
  stream: boolean;
  modelId: string;
  headers: IncomingHttpHeaders;
  payload: Buffer;
}

/**
 * InvokeModel / InvokeModelWithResponseStream as the service does them: the HTTP-bound members
 * (model id label, Content-Type / Accept headers, the payload's 25 MB bound) checked against the
 * Smithy model, the body against the Anthropic-on-Bedrock rules, violations answered as
 * `400 ValidationException`. Returns the problems (empty: valid).
 */
export function validateInvoke(validator: SmithyValidator, request: InvokeRequest, body: unknown): string[] {
  return [
    ...validator.validateHttp(request.stream ? 'InvokeModelWithResponseStreamRequest' : 'InvokeModelRequest', {
      labels: { modelId: request.modelId },
      headers: request.headers,
      payload: request.payload,
    }),
    ...invokeModelBodyRules(body),
  ];
}

type AnthropicBlock = Record<string, unknown> & { type: string };

/** A native InvokeModel answer: Anthropic content blocks (with citations) and usage (with cache counts). */
export interface InvokeAnthropicReply {
  kind: 'anthropic';
  content: ContentBlock[];
  stopReason?: string;
  usage?: Partial<Usage>;
}

/** The script's Converse blocks as the Anthropic content Bedrock's Claude writes. */
function toAnthropic(block: ConverseBlock): AnthropicBlock {
  if ('text' in block) return { type: 'text', text: block.text };
  if ('toolUse' in block)
    return { type: 'tool_use', id: block.toolUse.toolUseId, name: block.toolUse.name, input: block.toolUse.input };
  const { text, signature } = block.reasoningContent.reasoningText;
  return { type: 'thinking', thinking: text, signature };
}

/** `global.anthropic.claude-sonnet-4-5-20250929-v1:0` → `claude-sonnet-4-5-20250929`, as Bedrock's answers name it. */
const modelName = (modelId: string) => modelId.replace(/^.*anthropic\./, '').replace(/-v\d+(:\d+)?$/, '');

function usageOf(reply: Scripted): Usage {
  if (reply.kind === 'anthropic')
    return {
      input_tokens: 30,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: 15,
      ...reply.usage,
    };
  const usage = reply.kind === 'message' ? reply.usage : undefined;
  return {
    input_tokens: usage?.inputTokens ?? 30,
    cache_creation_input_tokens: usage?.cacheWriteInputTokens ?? 0,
    cache_read_input_tokens: usage?.cacheReadInputTokens ?? 0,
    output_tokens: usage?.outputTokens ?? 15,
  };
}

type Scripted = Extract<BedrockReply, { kind: 'message' } | { kind: 'broken' } | { kind: 'anthropic' }>;

/** The whole InvokeModel answer: the Anthropic message as JSON. */
export function invokeMessage(reply: Scripted, modelId: string) {
  const content: AnthropicBlock[] = reply.kind === 'anthropic' ? reply.content : reply.content.map(toAnthropic);
  const scripted = reply.kind === 'broken' ? undefined : reply;
  return {
    id: `msg_bdrk_${Math.random().toString(36).slice(2, 14)}`,
    type: 'message',
    role: 'assistant',
    model: modelName(modelId),
    content,
    stop_reason: scripted?.stopReason ?? (content.some((block) => block.type === 'tool_use') ? 'tool_use' : 'end_turn'),
    stop_sequence: null,
    usage: usageOf(reply),
  };
}

/** One `chunk` event: an Anthropic stream event, base64 in `bytes` (the ResponseStream union's PayloadPart). */
export function chunkFrame(event: object): Uint8Array {
  return frame('event', 'chunk', { bytes: Buffer.from(JSON.stringify(event)).toString('base64') });
}

export function frame(type: 'event' | 'exception', name: string, payload: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ':message-type': { type: 'string', value: type },
      [type === 'event' ? ':event-type' : ':exception-type']: { type: 'string', value: name },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: fromUtf8(JSON.stringify(payload)),
  });
}

/** The event sequence InvokeModelWithResponseStream sends for a message, as `chunk` frames. */
export function invokeStreamFrames(message: ReturnType<typeof invokeMessage>): Uint8Array[] {
  const { content, usage, stop_reason: stopReason, ...head } = message;
  const events: object[] = [
    {
      type: 'message_start',
      message: { ...head, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } },
    },
  ];
  content.forEach((block, index) => {
    const halves = (value: string) => [value.slice(0, 5), value.slice(5)].filter((part) => part !== '');
    const delta = (body: object) => events.push({ type: 'content_block_delta', index, delta: body });
    if (block.type === 'text') {
      events.push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      // A cited span's citations come first, one `citations_delta` each, then its text (as Anthropic streams them).
      for (const citation of (block.citations ?? []) as object[]) delta({ type: 'citations_delta', citation });
      for (const text of halves(block.text as string)) delta({ type: 'text_delta', text });
    } else if (block.type === 'tool_use') {
      events.push({ type: 'content_block_start', index, content_block: { ...block, input: {} } });
      for (const part of halves(JSON.stringify(block.input))) delta({ type: 'input_json_delta', partial_json: part });
    } else {
      events.push({
        type: 'content_block_start',
        index,
        content_block: { type: 'thinking', thinking: '', signature: '' },
      });
      delta({ type: 'thinking_delta', thinking: block.thinking });
      delta({ type: 'signature_delta', signature: block.signature });
    }
    events.push({ type: 'content_block_stop', index });
  });
  events.push(
    {
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    },
    // Bedrock adds its invocation metrics to the last event (cache counts only when there are any).
    {
      type: 'message_stop',
      'amazon-bedrock-invocationMetrics': {
        inputTokenCount: usage.input_tokens,
        outputTokenCount: usage.output_tokens,
        invocationLatency: 12,
        firstByteLatency: 5,
        ...(usage.cache_read_input_tokens > 0 ? { cacheReadInputTokenCount: usage.cache_read_input_tokens } : {}),
        ...(usage.cache_creation_input_tokens > 0
          ? { cacheWriteInputTokenCount: usage.cache_creation_input_tokens }
          : {}),
      },
    },
  );
  return events.map(chunkFrame);
}

/** Sends a scripted InvokeModel answer: whole JSON, or a stream that may break as the reply says. */
export async function sendInvoke(res: ServerResponse, reply: Scripted, request: InvokeRequest): Promise<void> {
  const message = invokeMessage(reply, request.modelId);
  const requestId = crypto.randomUUID();
  if (!request.stream) {
    const body = JSON.stringify(message);
    return void res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': requestId }).end(body);
  }
  let frames = invokeStreamFrames(message);
  if (reply.kind === 'broken') frames = frames.slice(0, reply.afterFrames);
  res.writeHead(200, {
    'content-type': 'application/vnd.amazon.eventstream',
    'x-amzn-bedrock-content-type': 'application/json',
    'x-amzn-requestid': requestId,
  });
  for (const bytes of frames) {
    res.write(bytes);
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (reply.kind !== 'broken') return void res.end();
  if (reply.then === 'reset') return void res.socket?.destroy();
  if (reply.then === 'stall') return;
  if (reply.then === 'end') return void res.end();
  res.end(frame('exception', reply.then.exception, { message: reply.then.message }));
}

/** The default model for InvokeModel, as for Converse: RUN_BASH: → a Bash call; a tool result → `Tool said: …`. */
export function defaultInvokeReply(body: Record<string, unknown>): BedrockReply {
  const messages = (body.messages ?? []) as Array<{ role: string; content: unknown }>;
  const last = messages.findLast((message) => message.role === 'user');
  const blocks = (
    typeof last?.content === 'string' ? [{ type: 'text', text: last.content }] : (last?.content ?? [])
  ) as Array<{ type: string; text?: string; content?: unknown }>;
  const result = blocks.find((block) => block.type === 'tool_result');
  if (result !== undefined) {
    const parts =
      typeof result.content === 'string' ? [{ text: result.content }] : (result.content as Array<{ text?: string }>);
    return {
      kind: 'message',
      content: [
        {
          text: `Tool said: ${parts
            .map((part) => part.text ?? '')
            .join('')
            .trim()}`,
        },
      ],
    };
  }
  for (const block of blocks) {
    const command = /RUN_BASH:(.+)$/m.exec(block.text ?? '')?.[1];
    if (command !== undefined)
      return {
        kind: 'message',
        content: [
          {
            toolUse: {
              toolUseId: `toolu_bdrk_${Date.now()}`,
              name: 'Bash',
              input: { command: command.trim(), description: 'Run the requested command' },
            },
          },
        ],
      };
  }
  return { kind: 'message', content: [{ text: 'Hello from the Bedrock test server' }] };
}
