import {
  ProxyError,
  type MessageResponse,
  type ResponseContentBlock,
  type StopReason,
  type Usage,
} from '@ccproxy/core';
import type { ConverseOutputBlock, ConverseResponse, ConverseStopReason, ConverseUsage } from './converse-types.ts';
import type { ToolNameMap } from './tool-names.ts';
import { toAnthropicToolUseId } from './provenance.ts';

export interface ResponseContext {
  /** The model name the client asked for; echoed back (never the Bedrock id). */
  model: string;
  messageId: string;
  toolNames: ToolNameMap;
}

/** Converse response → Anthropic message, with the usage it reports. Pure. */
export function fromConverseResponse(
  response: ConverseResponse,
  context: ResponseContext,
): { message: MessageResponse; usage: Usage } {
  const usage = fromConverseUsage(response.usage);
  const stopSequence = response.additionalModelResponseFields?.stop_sequence ?? null;
  const message: MessageResponse = {
    id: context.messageId,
    type: 'message',
    role: 'assistant',
    model: context.model,
    content: (response.output.message?.content ?? []).flatMap((block) => fromOutputBlock(block, context.toolNames)),
    stop_reason: fromStopReason(response.stopReason),
    stop_sequence: typeof stopSequence === 'string' ? stopSequence : null,
    usage,
  };
  return { message, usage };
}

function fromOutputBlock(block: ConverseOutputBlock, toolNames: ToolNameMap): ResponseContentBlock[] {
  if ('text' in block) return [{ type: 'text', text: block.text }];
  if ('toolUse' in block)
    return [
      {
        type: 'tool_use',
        id: toAnthropicToolUseId(block.toolUse.toolUseId),
        name: toolNames.fromBedrock(block.toolUse.name),
        input: block.toolUse.input ?? {},
      },
    ];
  const reasoning = block.reasoningContent;
  if (reasoning.redactedContent !== undefined) return [{ type: 'redacted_thinking', data: reasoning.redactedContent }];
  if (reasoning.reasoningText !== undefined)
    return [
      { type: 'thinking', thinking: reasoning.reasoningText.text, signature: reasoning.reasoningText.signature ?? '' },
    ];
  return [];
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
