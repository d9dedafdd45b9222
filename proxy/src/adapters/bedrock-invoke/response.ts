import type { Usage } from '@ccproxy/core';

/**
 * An InvokeModel answer: the Anthropic message as Bedrock sent it (relayed byte for byte, but
 * for `model`) and its usage. A body that is not a whole message throws (the caller's 502).
 *
 * `model` is the name the client asked for, echoed as the Converse backend does: Bedrock names
 * the model it ran (`claude-sonnet-4-5-20250929`), and Claude Code strips the thinking blocks
 * of any assistant turn whose `model` is not the one it is using, so a mapped model would lose
 * every signature on the next turn (which Bedrock then refuses in a tool loop with thinking).
 */
export function fromInvokeModelResponse(text: string, model?: string): { body: string; usage: Usage } {
  const message = JSON.parse(text) as {
    type?: unknown;
    model?: unknown;
    content?: unknown;
    usage?: Partial<Usage>;
  } | null;
  if (message?.type !== 'message' || !Array.isArray(message.content))
    throw new Error('an InvokeModel answer that is not an Anthropic message');
  const usage = message.usage ?? {};
  const renamed = model !== undefined && message.model !== model;
  if (renamed) message.model = model;
  return {
    body: renamed ? JSON.stringify(message) : text,
    usage: {
      input_tokens: usage.input_tokens ?? 0,
      output_tokens: usage.output_tokens ?? 0,
      cache_creation_input_tokens: usage.cache_creation_input_tokens ?? 0,
      cache_read_input_tokens: usage.cache_read_input_tokens ?? 0,
    },
  };
}
