import type { Usage } from '@ccproxy/core';

/**
 * An InvokeModel answer: the Anthropic message as Bedrock sent it (relayed byte for byte) and
 * its usage. A body that is not a whole message throws (the caller's 502).
 */
export function fromInvokeModelResponse(text: string): { body: string; usage: Usage } {
  const message = JSON.parse(text) as { type?: unknown; content?: unknown; usage?: Partial<Usage> } | null;
  if (message?.type !== 'message' || !Array.isArray(message.content))
    throw new Error('an InvokeModel answer that is not an Anthropic message');
  const usage = message.usage ?? {};
  return {
    body: text,
    usage: {
      input_tokens: usage.input_tokens ?? 0,
      output_tokens: usage.output_tokens ?? 0,
      cache_creation_input_tokens: usage.cache_creation_input_tokens ?? 0,
      cache_read_input_tokens: usage.cache_read_input_tokens ?? 0,
    },
  };
}
