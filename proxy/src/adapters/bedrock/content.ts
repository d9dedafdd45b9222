import {
  ProxyError,
  type CacheControl,
  type ContentBlockParam,
  type DocumentBlockParam,
  type ImageBlockParam,
  type OtherBlockParam,
  type SearchResultBlockParam,
  type ToolResultBlockParam,
} from '@ccproxy/core';
import type {
  CachePoint,
  ConverseContentBlock,
  DocumentBlock,
  DocumentFormat,
  ImageBlock,
  ImageFormat,
  SearchResultBlock,
  ToolResultContent,
} from './converse-types.ts';
import { toBedrockToolUseId, type ToolNameMap } from './tool-names.ts';

/** Per-request state of the content conversion: tool names, document names, what was dropped. */
export interface ContentContext {
  readonly toolNames: ToolNameMap;
  readonly documentNames: Set<string>;
  readonly dropped: string[];
}

const imageFormats: Readonly<Record<string, ImageFormat>> = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/gif': 'gif',
  'image/webp': 'webp',
};
/** Bedrock rejects blank text blocks; where a block must exist, this stands in. */
export const placeholderText = '(empty)';

export const isBlank = (text: string) => text.trim() === '';

export function cachePoint(control: CacheControl | null | undefined): CachePoint[] {
  if (control === undefined || control === null) return [];
  return [{ cachePoint: control.ttl === undefined ? { type: 'default' } : { type: 'default', ttl: control.ttl } }];
}

/** One Anthropic block → zero or more Converse blocks (a cache point is a block of its own). */
export function toConverseBlocks(
  block: ContentBlockParam | OtherBlockParam,
  context: ContentContext,
): ConverseContentBlock[] {
  const typed = block as ContentBlockParam;
  switch (typed.type) {
    case 'text':
      return isBlank(typed.text)
        ? cachePoint(typed.cache_control)
        : [{ text: typed.text }, ...cachePoint(typed.cache_control)];
    case 'image':
      return [toImage(typed), ...cachePoint(typed.cache_control)];
    case 'document':
      return [toDocument(typed, context), ...cachePoint(typed.cache_control)];
    case 'search_result':
      return [toSearchResult(typed), ...cachePoint(typed.cache_control)];
    case 'tool_use':
      return [
        {
          toolUse: {
            toolUseId: toBedrockToolUseId(typed.id),
            name: context.toolNames.toBedrock(typed.name),
            input: isObject(typed.input) ? typed.input : {},
          },
        },
        ...cachePoint(typed.cache_control),
      ];
    case 'tool_result':
      return [toToolResult(typed, context), ...cachePoint(typed.cache_control)];
    case 'thinking':
      // Bedrock refuses unsigned thinking ("thinking.signature: Field required").
      if (typed.signature === undefined || typed.signature === '') return drop(context, 'unsigned thinking block');
      return [{ reasoningContent: { reasoningText: { text: typed.thinking, signature: typed.signature } } }];
    case 'redacted_thinking':
      return [{ reasoningContent: { redactedContent: typed.data } }];
    default:
      return dropOther(block as OtherBlockParam, context);
  }
}

function toImage(block: ImageBlockParam): ImageBlock {
  if (block.source.type !== 'base64')
    throw new ProxyError(
      'PRX_INVALID_REQUEST',
      `Images from a ${block.source.type} source cannot be sent to Bedrock; send them as base64.`,
    );
  const format = imageFormats[block.source.media_type];
  if (format === undefined)
    throw new ProxyError(
      'PRX_INVALID_REQUEST',
      `Image media type ${block.source.media_type} is not supported by Bedrock.`,
    );
  return { image: { format, source: { bytes: block.source.data } } };
}

function toDocument(block: DocumentBlockParam, context: ContentContext): DocumentBlock {
  const name = documentName(block.title ?? undefined, context.documentNames);
  const extra = {
    ...(block.context ? { context: block.context } : {}),
    ...(block.citations?.enabled === undefined ? {} : { citations: { enabled: block.citations.enabled } }),
  };
  const source = block.source;
  switch (source.type) {
    case 'base64':
      if (source.media_type !== 'application/pdf')
        throw new ProxyError(
          'PRX_INVALID_REQUEST',
          `Document media type ${source.media_type} is not supported by Bedrock.`,
        );
      return { document: { format: 'pdf', name, source: { bytes: source.data }, ...extra } };
    case 'text':
      return { document: { format: 'txt' as DocumentFormat, name, source: { text: source.data }, ...extra } };
    case 'content': {
      const parts =
        typeof source.content === 'string'
          ? [{ text: source.content }]
          : source.content.map((part) => ({ text: part.text }));
      return {
        document: { format: 'txt', name, source: { content: parts.filter((part) => !isBlank(part.text)) }, ...extra },
      };
    }
    default:
      throw new ProxyError(
        'PRX_INVALID_REQUEST',
        `Documents from a ${source.type} source cannot be sent to Bedrock; send them inline.`,
      );
  }
}

/**
 * Anthropic `search_result` → Converse `searchResult`, the same block (source, title, text
 * parts, citations switch), so the model sees it as it would on Anthropic and its citations come
 * back as `search_result_location`. Bedrock refuses blank text: blank parts are left out, and a
 * result with none left keeps a placeholder (its index must not shift the ones after it).
 */
function toSearchResult(block: SearchResultBlockParam): SearchResultBlock {
  const content = block.content.filter((part) => !isBlank(part.text)).map((part) => ({ text: part.text }));
  return {
    searchResult: {
      source: block.source,
      title: block.title,
      content: content.length > 0 ? content : [{ text: placeholderText }],
      ...(typeof block.citations?.enabled === 'boolean' ? { citations: { enabled: block.citations.enabled } } : {}),
    },
  };
}

/** Bedrock document names: 1–200 of alphanumerics, single spaces, hyphens, parentheses, brackets; unique per request. */
function documentName(title: string | undefined, used: Set<string>): string {
  const cleaned = (title ?? '')
    .replace(/[^a-zA-Z0-9\s\-()[\]]/g, '-')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 180);
  const base = cleaned === '' ? 'document' : cleaned;
  let name = base;
  for (let n = 2; used.has(name); n += 1) name = `${base} ${n}`;
  used.add(name);
  return name;
}

function toToolResult(block: ToolResultBlockParam, context: ContentContext): ConverseContentBlock {
  const items =
    typeof block.content === 'string' ? [{ type: 'text' as const, text: block.content }] : (block.content ?? []);
  const content: ToolResultContent[] = [];
  for (const item of items) {
    if (item.type === 'text' && 'text' in item) {
      if (!isBlank(item.text)) content.push({ text: item.text });
    } else if (item.type === 'image') content.push(toImage(item as ImageBlockParam));
    else if (item.type === 'document') content.push(toDocument(item as DocumentBlockParam, context));
    else if (item.type === 'search_result') content.push(toSearchResult(item as SearchResultBlockParam));
    else context.dropped.push(`tool_result content of type ${item.type}`);
  }
  if (content.length === 0) content.push({ text: placeholderText });
  return {
    toolResult: {
      toolUseId: toBedrockToolUseId(block.tool_use_id),
      content,
      status: block.is_error === true ? 'error' : 'success',
    },
  };
}

/** Blocks without a Converse equivalent: summaries are kept as text, the rest dropped and logged. */
function dropOther(block: OtherBlockParam, context: ContentContext): ConverseContentBlock[] {
  if (block.type === 'compaction' && typeof block.content === 'string' && !isBlank(block.content))
    return [{ text: block.content }];
  return drop(context, `${block.type} block`);
}

function drop(context: ContentContext, what: string): [] {
  context.dropped.push(what);
  return [];
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
