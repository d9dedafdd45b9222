import { createHash } from 'node:crypto';

const toolNamePattern = /^[a-zA-Z0-9_-]{1,64}$/;
const toolUseIdPattern = /^[a-zA-Z0-9_.:-]{1,64}$/;

/**
 * Bedrock tool names are `^[a-zA-Z0-9_-]+$`, at most 64 characters; Anthropic allows 128 and
 * more characters (MCP tools: `mcp__server__tool`). Names that do not fit get a deterministic
 * short name (prefix + hash), remembered per request so answers carry the original name.
 */
export class ToolNameMap {
  readonly #toBedrock = new Map<string, string>();
  readonly #fromBedrock = new Map<string, string>();

  toBedrock(name: string): string {
    const known = this.#toBedrock.get(name);
    if (known !== undefined) return known;
    const mapped = toolNamePattern.test(name) ? name : shorten(name);
    this.#toBedrock.set(name, mapped);
    this.#fromBedrock.set(mapped, name);
    return mapped;
  }

  fromBedrock(name: string): string {
    return this.#fromBedrock.get(name) ?? name;
  }
}

function shorten(name: string): string {
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 12);
  const readable = name.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64 - hash.length - 1);
  return `${readable}_${hash}`;
}

/**
 * Bedrock tool-use ids are `^[a-zA-Z0-9_.:-]+$`, at most 64 characters. Anthropic's `toolu_…`
 * ids fit; anything else is rewritten deterministically, so a `tool_use` and its `tool_result`
 * still match after translation.
 */
export function toBedrockToolUseId(id: string): string {
  if (toolUseIdPattern.test(id)) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 16);
  return `${id.replace(/[^a-zA-Z0-9_.:-]/g, '_').slice(0, 64 - hash.length - 1)}_${hash}`;
}
