import {
  ProxyError,
  type MessageResponse,
  type ResponseContentBlock,
  type StopReason,
  type Usage,
} from '@ccproxy/core';
import { fromConverseCitation } from './citations.ts';
import type {
  CitationsContentBlock,
  ConverseOutputBlock,
  ConverseResponse,
  ConverseStopReason,
  ConverseUsage,
} from './converse-types.ts';
import { SkippedMembers, unionMember, type WarnLog } from './skipped-members.ts';
import type { ToolNameMap } from './tool-names.ts';
import { toAnthropicToolUseId } from './provenance.ts';

export interface ResponseContext {
  /** The model name the client asked for; echoed back (never the Bedrock id). */
  model: string;
  messageId: string;
  toolNames: ToolNameMap;
  /** Where skipped (unknown) members of Bedrock's unions are reported; the request's logger. */
  log?: WarnLog;
}

/** Converse response → Anthropic message, with the usage it reports. Pure. */
export function fromConverseResponse(
  response: ConverseResponse,
  context: ResponseContext,
): { message: MessageResponse; usage: Usage } {
  const usage = fromConverseUsage(response.usage);
  const skipped = new SkippedMembers(context.log);
  const stopSequence = response.additionalModelResponseFields?.stop_sequence ?? null;
  const message: MessageResponse = {
    id: context.messageId,
    type: 'message',
    role: 'assistant',
    model: context.model,
    content: (response.output.message?.content ?? []).flatMap((block) =>
      fromOutputBlock(block, context.toolNames, skipped),
    ),
    stop_reason: fromStopReason(response.stopReason),
    stop_sequence: typeof stopSequence === 'string' ? stopSequence : null,
    usage,
  };
  return { message, usage };
}

type OutputBlockHandler = (value: never, toolNames: ToolNameMap, skipped: SkippedMembers) => ResponseContentBlock[];

/**
 * The members of Converse's `ContentBlock` union an answer can carry that Anthropic can express,
 * one handler each. Every other member (image, video, a member newer than this table) is skipped
 * and logged by the one rule in `fromOutputBlock`, never a crash.
 */
const outputBlockHandlers: Readonly<Record<string, OutputBlockHandler>> = {
  text: (text: string) => [{ type: 'text', text }],
  toolUse: (toolUse: { toolUseId: string; name: string; input?: unknown }, toolNames) => [
    {
      type: 'tool_use',
      id: toAnthropicToolUseId(toolUse.toolUseId),
      name: toolNames.fromBedrock(toolUse.name),
      input: toolUse.input ?? {},
    },
  ],
  reasoningContent: (
    reasoning: { reasoningText?: { text: string; signature?: string }; redactedContent?: string },
    _toolNames,
    skipped,
  ) => {
    if (reasoning.redactedContent !== undefined)
      return [{ type: 'redacted_thinking', data: reasoning.redactedContent }];
    if (reasoning.reasoningText !== undefined)
      return [
        {
          type: 'thinking',
          thinking: reasoning.reasoningText.text,
          signature: reasoning.reasoningText.signature ?? '',
        },
      ];
    skipped.note('ReasoningContentBlock', unionMember(reasoning) ?? '(none)');
    return [];
  },
  // Anthropic puts the cited span in a text block of its own, with its citations beside it.
  citationsContent: (block: CitationsContentBlock, _toolNames, skipped) => {
    const citations = (block.citations ?? []).flatMap((citation) => fromConverseCitation(citation, skipped) ?? []);
    const text = (block.content ?? []).map((part) => part.text ?? '').join('');
    return [{ type: 'text', text, citations }];
  },
};

function fromOutputBlock(
  block: ConverseOutputBlock,
  toolNames: ToolNameMap,
  skipped: SkippedMembers,
): ResponseContentBlock[] {
  const member = unionMember(block);
  const handler = member === undefined ? undefined : outputBlockHandlers[member];
  if (member === undefined || handler === undefined) {
    skipped.note('ContentBlock', member ?? '(none)');
    return [];
  }
  return handler(block[member] as never, toolNames, skipped);
}

/**
 * Bedrock stop reasons → Anthropic's. Malformed model output has no Anthropic equivalent and a
 * half tool call must not pass as a finished turn: it is reported as a retryable API error.
 */
export function fromStopReason(reason: ConverseStopReason | undefined): StopReason {
  switch (reason) {
    case 'tool_use':
    case 'max_tokens':
    case 'stop_sequence':
    case 'model_context_window_exceeded':
      return reason;
    case 'guardrail_intervened':
    case 'content_filtered':
      return 'refusal';
    case 'malformed_model_output':
    case 'malformed_tool_use':
      throw new ProxyError('PRX_BEDROCK_ERROR', `Bedrock reported ${reason}.`);
    default:
      return 'end_turn';
  }
}

/** Bedrock's inputTokens already excludes cache reads and writes, exactly Anthropic's meaning. */
export function fromConverseUsage(usage: Partial<ConverseUsage> | undefined): Usage {
  return {
    input_tokens: usage?.inputTokens ?? 0,
    output_tokens: usage?.outputTokens ?? 0,
    cache_creation_input_tokens: usage?.cacheWriteInputTokens ?? 0,
    cache_read_input_tokens: usage?.cacheReadInputTokens ?? 0,
  };
}
