import { createHash } from 'node:crypto';

/** Anthropic's rule for a `tool_use.id` (a request with another id is a 400 there). */
const anthropicToolUseId = /^[a-zA-Z0-9_-]{1,256}$/;

/**
 * What a Bedrock answer hands to a session that may go back to Anthropic: Bedrock tool-use ids
 * may hold `.` and `:` (`^[a-zA-Z0-9_.:-]+$`), which Anthropic refuses in a `tool_use.id`. Such
 * an id is rewritten deterministically into one valid on both sides (the client echoes it in its
 * `tool_result`, so the pair still matches on either provider); a valid id is kept as it is.
 */
export function toAnthropicToolUseId(id: string): string {
  if (anthropicToolUseId.test(id)) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 16);
  return `${id.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64 - hash.length - 1)}_${hash}`;
}
