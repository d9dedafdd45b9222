import { ProxyError, type MessageParam, type MessagesRequest, type ToolParam } from '@ccproxy/core';
import { bedrockBetas } from '../bedrock/betas.ts';

/** The Messages API version Bedrock's Anthropic models take in the body. */
export const anthropicVersion = 'bedrock-2023-05-31';

/** Anthropic's (and Bedrock's) limit on blocks marked with `cache_control` in one request. */
const maxBreakpoints = 4;

/**
 * Top-level fields InvokeModel refuses ("extraneous key [x] is not permitted"): `model` and
 * `stream` travel in the path (model id, `invoke` or `invoke-with-response-stream`); the rest
 * are Anthropic API features Bedrock does not have. Dropped, and logged per request.
 */
const inPath = ['model', 'stream'];
const refused = [
  'context_management',
  'metadata',
  'service_tier',
  'speed',
  'inference_geo',
  'container',
  'mcp_servers',
  'diagnostics',
  'fallbacks',
  'anthropic_version',
  'anthropic_beta',
];

/**
 * Tool types Bedrock's Anthropic models take (custom tools, and the client-executed Anthropic
 * tools behind their betas); server tools (web search, web fetch, code execution, …) run on
 * Anthropic's side only and are dropped.
 */
const clientTool = /^(custom|bash_\d+|text_editor_\d+|computer_\d+|tool_search_tool_\w+)$/;

export interface InvokeModelTranslation {
  /** The native Anthropic body for InvokeModel / InvokeModelWithResponseStream. */
  body: Record<string, unknown>;
  /** What Bedrock would refuse and was left out, for the log. */
  dropped: string[];
}

/**
 * Anthropic Messages request → the InvokeModel body: the same request, with
 * `anthropic_version`, the `anthropic-beta` header's values Bedrock accepts as `anthropic_beta`
 * (the rest dropped), and without what Bedrock refuses. Pure.
 */
export function toInvokeModelBody(
  request: MessagesRequest,
  betaHeader: string | string[] | undefined,
): InvokeModelTranslation {
  const dropped: string[] = [];
  const body: Record<string, unknown> = { anthropic_version: anthropicVersion };
  for (const [field, value] of Object.entries(request)) {
    if (value === undefined || inPath.includes(field) || field === 'cache_control') continue;
    if (refused.includes(field)) {
      if (field !== 'anthropic_version') dropped.push(field);
      continue;
    }
    body[field] = value;
  }
  if (request.messages.some((message) => message.role === 'system')) {
    body.messages = withoutSystemTurns(request.messages);
    dropped.push('role: system messages (sent as <system-reminder> text)');
  }
  if (request.tools !== undefined) {
    const tools = request.tools.filter((tool: ToolParam) => clientTool.test(tool.type ?? 'custom'));
    for (const tool of request.tools)
      if (!tools.includes(tool)) dropped.push(`server tool ${tool.name} (${tool.type ?? ''})`);
    if (tools.length > 0) body.tools = tools;
    else delete body.tools;
  }
  if (request.cache_control !== undefined && request.cache_control !== null)
    automaticBreakpoint(body, request.cache_control, dropped);
  const betas = bedrockBetas(betaHeader);
  if (betas.send.length > 0) body.anthropic_beta = betas.send;
  dropped.push(...betas.dropped.map((beta) => `anthropic-beta ${beta}`));
  return { body, dropped };
}

type Block = Record<string, unknown> & { type?: unknown };

/**
 * Inline `role: "system"` messages (which Claude Code sends where the Anthropic API takes them)
 * are refused by Bedrock: each becomes a `<system-reminder>` text in the user turn where it
 * stands — as Claude Code itself does when that beta is refused, and as the Converse backend
 * does — consecutive same-role turns are merged, and tool results lead their user turn.
 */
function withoutSystemTurns(messages: MessageParam[]): Array<{ role: string; content: Block[] }> {
  const out: Array<{ role: string; content: Block[] }> = [];
  for (const message of messages) {
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const blocks = (
      typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : message.content
    ) as Block[];
    const content =
      message.role === 'system'
        ? [
            {
              type: 'text',
              text: `<system-reminder>\n${blocks.map((b) => (typeof b.text === 'string' ? b.text : '')).join('\n')}\n</system-reminder>`,
            },
          ]
        : blocks;
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...content);
    else out.push({ role, content: [...content] });
  }
  for (const message of out)
    if (message.role === 'user' && message.content.some((block) => block.type === 'tool_result'))
      message.content = [
        ...message.content.filter((block) => block.type === 'tool_result'),
        ...message.content.filter((block) => block.type !== 'tool_result'),
      ];
  return out;
}

/**
 * Top-level `cache_control` (automatic prompt caching), which InvokeModel's body refuses:
 * Anthropic puts the breakpoint on the last cacheable block of the conversation, so here the
 * last message's last block (not a thinking block, which cannot be marked) carries it — the
 * same place the Converse backend puts its cache point. It takes one of the 4 breakpoints: with
 * all 4 already marked it is refused in Anthropic's words, not dropped. Not added twice.
 */
function automaticBreakpoint(body: Record<string, unknown>, control: unknown, dropped: string[]): void {
  const messages = [...(body.messages as Array<{ role: string; content: string | Block[] }>)];
  const last = messages.at(-1);
  if (last === undefined) return;
  const blocks: Block[] = typeof last.content === 'string' ? [{ type: 'text', text: last.content }] : [...last.content];
  const at = blocks.findLastIndex((block) => block.type !== 'thinking' && block.type !== 'redacted_thinking');
  const target = blocks[at];
  if (target === undefined) return void dropped.push('cache_control (no block to mark in the last message)');
  if (target.cache_control !== undefined) return;
  const marked = countBreakpoints(body);
  if (marked >= maxBreakpoints)
    throw new ProxyError(
      'PRX_INVALID_REQUEST',
      `cache_control: A maximum of ${maxBreakpoints} blocks with cache_control may be provided. Found ${marked + 1} (top-level cache_control for automatic prompt caching takes one).`,
    );
  blocks[at] = { ...target, cache_control: control };
  messages[messages.length - 1] = { ...last, content: blocks };
  body.messages = messages;
}

/** Blocks marked with `cache_control` in system, tools and messages (tool results' content included). */
function countBreakpoints(body: Record<string, unknown>): number {
  const count = (blocks: unknown): number =>
    Array.isArray(blocks)
      ? (blocks as Block[]).reduce(
          (sum, block) =>
            sum +
            (block.cache_control === undefined ? 0 : 1) +
            (block.type === 'tool_result' ? count(block.content) : 0),
          0,
        )
      : 0;
  const messages = body.messages as Array<{ content: unknown }>;
  return count(body.system) + count(body.tools) + messages.reduce((sum, message) => sum + count(message.content), 0);
}
