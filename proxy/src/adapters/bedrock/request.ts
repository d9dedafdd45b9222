import { ProxyError, type MessageParam, type MessagesRequest, type ToolChoice, type ToolParam } from '@ccproxy/core';
import { bedrockBetas } from './betas.ts';
import { cachePoint, isBlank, placeholderText, toConverseBlocks, type ContentContext } from './content.ts';
import type {
  ConverseContentBlock,
  ConverseMessage,
  ConverseRequest,
  ConverseTool,
  ConverseToolChoice,
  OutputConfig,
  SystemBlock,
} from './converse-types.ts';
import { ToolNameMap } from './tool-names.ts';

export interface ConverseTranslation {
  request: ConverseRequest;
  /** Tool names as sent to Bedrock, to map answers back. */
  toolNames: ToolNameMap;
  /** What could not be expressed and was left out, for the log (never silently stringified). */
  dropped: string[];
}

/** Top-level fields Converse has no place for; dropped deliberately (see the mapping notes). */
const droppedFields = [
  'context_management',
  'metadata',
  'service_tier',
  'speed',
  'inference_geo',
  'container',
  'mcp_servers',
  'diagnostics',
  'fallbacks',
];
/** Converse's limit on cache points in one request (system, tools and messages together). */
const maxCachePoints = 4;
const placeholderTool: ConverseTool = {
  toolSpec: {
    name: 'ccproxy_placeholder_do_not_call',
    description: 'Placeholder: the conversation used tools earlier.',
    inputSchema: { json: { type: 'object', properties: {} } },
  },
};

/** Anthropic Messages request → Bedrock Converse request. Pure; throws `ProxyError` (400) on what Bedrock cannot take. */
export function toConverseRequest(
  body: MessagesRequest,
  betaHeader: string | string[] | undefined,
): ConverseTranslation {
  const context: ContentContext = { toolNames: new ToolNameMap(), documentNames: new Set(), dropped: [] };
  if (!Array.isArray(body.messages)) throw new ProxyError('PRX_INVALID_REQUEST', 'messages: Field required');
  const messages = toConverseMessages(body.messages, context);
  const request: ConverseRequest = { messages };
  const system = toSystem(body.system);
  if (system.length > 0) request.system = system;
  const inference = inferenceConfig(body);
  if (Object.keys(inference).length > 0) request.inferenceConfig = inference;
  const toolConfig = toToolConfig(body.tools, body.tool_choice, hasToolBlocks(messages), context);
  if (toolConfig !== undefined) request.toolConfig = toolConfig;
  const additional = additionalFields(body, betaHeader, context);
  if (Object.keys(additional).length > 0) request.additionalModelRequestFields = additional;
  // Converse reports which stop sequence matched only when asked for it.
  if ((body.stop_sequences?.length ?? 0) > 0) request.additionalModelResponseFieldPaths = ['/stop_sequence'];
  const outputConfig = toOutputConfig(body);
  if (outputConfig !== undefined) request.outputConfig = outputConfig;
  automaticCachePoint(request, body.cache_control);
  for (const field of droppedFields) if (body[field] !== undefined) context.dropped.push(field);
  return { request, toolNames: context.toolNames, dropped: context.dropped };
}

/**
 * Structured output (`output_config.format`, or the beta's top-level `output_format`) →
 * `outputConfig.textFormat`. Converse takes the JSON schema as a string. The request schema has
 * already refused any other format type with a 400, so nothing is dropped here.
 */
function toOutputConfig(body: MessagesRequest): OutputConfig | undefined {
  const format = body.output_config?.format ?? body.output_format;
  if (format === undefined || format === null) return undefined;
  return { textFormat: { type: 'json_schema', structure: { jsonSchema: { schema: JSON.stringify(format.schema) } } } };
}

/**
 * Top-level `cache_control` (automatic prompt caching): Anthropic puts a breakpoint on the last
 * cacheable block, i.e. caches the whole conversation so far; here a cache point after the last
 * message's content. It takes one of Converse's 4 cache points: with all 4 already marked
 * explicitly, it cannot be honoured, and is refused rather than dropped. Not added twice where
 * the last block already carries one.
 */
function automaticCachePoint(request: ConverseRequest, control: MessagesRequest['cache_control']): void {
  if (control === undefined || control === null) return;
  const last = request.messages.at(-1) as ConverseMessage;
  if (last.content.at(-1) !== undefined && 'cachePoint' in (last.content.at(-1) as ConverseContentBlock)) return;
  const explicit = countCachePoints(request);
  if (explicit >= maxCachePoints)
    throw new ProxyError(
      'PRX_INVALID_REQUEST',
      // Anthropic's own words for the same request, where the automatic breakpoint also counts.
      `cache_control: A maximum of ${maxCachePoints} blocks with cache_control may be provided. Found ${explicit + 1} (top-level cache_control for automatic prompt caching takes one).`,
    );
  last.content.push(...cachePoint(control));
}

function countCachePoints(request: ConverseRequest): number {
  const count = (blocks: ReadonlyArray<object> | undefined) =>
    (blocks ?? []).filter((block) => 'cachePoint' in block).length;
  return (
    count(request.system) +
    count(request.toolConfig?.tools) +
    request.messages.reduce((sum, message) => sum + count(message.content), 0)
  );
}

function toSystem(system: MessagesRequest['system']): SystemBlock[] {
  if (system === undefined) return [];
  if (typeof system === 'string') return isBlank(system) ? [] : [{ text: system }];
  return system.flatMap((block): SystemBlock[] => [
    ...(isBlank(block.text) ? [] : [{ text: block.text }]),
    ...cachePoint(block.cache_control),
  ]);
}

/**
 * Messages in Converse's stricter form: `role: "system"` entries become a `<system-reminder>`
 * text in the user turn where they stand (as Claude Code itself does when that beta is refused),
 * consecutive same-role turns are merged, the first turn is the user's, and no turn is empty.
 */
function toConverseMessages(input: MessageParam[], context: ContentContext): ConverseMessage[] {
  const out: ConverseMessage[] = [];
  for (const message of input) {
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const blocks =
      message.role === 'system'
        ? systemReminder(message)
        : contentOf(message).flatMap((block) => toConverseBlocks(block, context));
    const last = out.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  }
  if (out[0]?.role !== 'user') out.unshift({ role: 'user', content: [] });
  for (const message of out) {
    if (!message.content.some((block) => !('cachePoint' in block))) message.content.unshift({ text: placeholderText });
    // Tool results must lead their user turn, before any text that was merged in after them.
    if (message.role === 'user') message.content = toolResultsFirst(message.content);
  }
  return out;
}

function contentOf(message: MessageParam) {
  return typeof message.content === 'string' ? [{ type: 'text' as const, text: message.content }] : message.content;
}

function systemReminder(message: MessageParam): ConverseContentBlock[] {
  const text = contentOf(message)
    .map((block) => ('text' in block && typeof block.text === 'string' ? block.text : ''))
    .join('\n');
  return isBlank(text) ? [] : [{ text: `<system-reminder>\n${text}\n</system-reminder>` }];
}

function toolResultsFirst(blocks: ConverseContentBlock[]): ConverseContentBlock[] {
  const results = blocks.filter((block) => 'toolResult' in block);
  if (results.length === 0 || blocks.indexOf(results[0] as ConverseContentBlock) === 0) return blocks;
  return [...results, ...blocks.filter((block) => !('toolResult' in block))];
}

function inferenceConfig(body: MessagesRequest): NonNullable<ConverseRequest['inferenceConfig']> {
  const config: NonNullable<ConverseRequest['inferenceConfig']> = {};
  if (body.max_tokens !== undefined) config.maxTokens = body.max_tokens;
  // `0` is a real value: test for presence, not truthiness.
  if (body.temperature !== undefined) config.temperature = body.temperature;
  if (body.top_p !== undefined) config.topP = body.top_p;
  const stops = (body.stop_sequences ?? []).filter((stop) => stop !== '');
  if (stops.length > 0) config.stopSequences = stops;
  return config;
}

function toToolConfig(
  tools: ToolParam[] | undefined,
  choice: ToolChoice | undefined,
  historyHasTools: boolean,
  context: ContentContext,
): ConverseRequest['toolConfig'] {
  const converted: ConverseTool[] = [];
  for (const tool of tools ?? []) {
    if (tool.type !== undefined && tool.type !== 'custom') {
      context.dropped.push(`server tool ${tool.name} (${tool.type})`);
      continue;
    }
    const spec = {
      name: context.toolNames.toBedrock(tool.name),
      inputSchema: { json: tool.input_schema ?? { type: 'object' } },
    };
    converted.push(
      {
        toolSpec: {
          ...spec,
          ...(tool.description !== undefined && !isBlank(tool.description) ? { description: tool.description } : {}),
          ...(tool.strict === undefined ? {} : { strict: tool.strict }),
        },
      },
      ...cachePoint(tool.cache_control),
    );
  }
  if (choice?.type === 'none') {
    // Converse cannot forbid tool use; without tool history the tools can simply be left out.
    context.dropped.push('tool_choice none');
    if (!historyHasTools) return undefined;
  }
  if (!converted.some((tool) => 'toolSpec' in tool)) return historyHasTools ? { tools: [placeholderTool] } : undefined;
  const toolChoice = toToolChoice(choice, context);
  return toolChoice === undefined ? { tools: converted } : { tools: converted, toolChoice };
}

function toToolChoice(choice: ToolChoice | undefined, context: ContentContext): ConverseToolChoice | undefined {
  if (choice === undefined || choice.type === 'none') return undefined;
  if ('disable_parallel_tool_use' in choice && choice.disable_parallel_tool_use === true)
    context.dropped.push('disable_parallel_tool_use');
  if (choice.type === 'auto') return { auto: {} };
  if (choice.type === 'any') return { any: {} };
  return { tool: { name: context.toolNames.toBedrock(choice.name) } };
}

function hasToolBlocks(messages: ConverseMessage[]): boolean {
  return messages.some((message) => message.content.some((block) => 'toolUse' in block || 'toolResult' in block));
}

function additionalFields(
  body: MessagesRequest,
  betaHeader: string | string[] | undefined,
  context: ContentContext,
): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (body.top_k !== undefined) fields.top_k = body.top_k;
  if (body.thinking !== undefined) fields.thinking = body.thinking;
  if (body.output_config?.effort !== undefined) fields.output_config = { effort: body.output_config.effort };
  const betas = bedrockBetas(betaHeader);
  if (betas.send.length > 0) fields.anthropic_beta = betas.send;
  context.dropped.push(...betas.dropped.map((beta) => `anthropic-beta ${beta}`));
  return fields;
}
