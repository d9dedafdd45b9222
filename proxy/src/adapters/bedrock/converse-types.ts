/** Bedrock Converse shapes (Smithy model `com.amazonaws.bedrockruntime`), the members we use. */

export interface CachePoint {
  cachePoint: { type: 'default'; ttl?: '5m' | '1h' };
}

export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp';
export type DocumentFormat = 'pdf' | 'csv' | 'doc' | 'docx' | 'xls' | 'xlsx' | 'html' | 'txt' | 'md';

export interface ImageBlock {
  image: { format: ImageFormat; source: { bytes: string } };
}
export interface DocumentBlock {
  document: {
    format: DocumentFormat;
    name: string;
    source: { bytes: string } | { text: string } | { content: Array<{ text: string }> };
    context?: string;
    citations?: { enabled: boolean };
  };
}
/** Converse's search result (Anthropic `search_result`); citations point into it by `searchResultIndex`. */
export interface SearchResultBlock {
  searchResult: {
    source: string;
    title: string;
    content: Array<{ text: string }>;
    citations?: { enabled: boolean };
  };
}
export type ToolResultContent = { text: string } | ImageBlock | DocumentBlock | SearchResultBlock | { json: unknown };

export type ConverseContentBlock =
  | { text: string }
  | ImageBlock
  | DocumentBlock
  | { toolUse: { toolUseId: string; name: string; input: unknown } }
  | { toolResult: { toolUseId: string; content: ToolResultContent[]; status?: 'success' | 'error' } }
  | { reasoningContent: { reasoningText: { text: string; signature?: string } } | { redactedContent: string } }
  | SearchResultBlock
  | CachePoint;

export interface ConverseMessage {
  role: 'user' | 'assistant';
  content: ConverseContentBlock[];
}

export type SystemBlock = { text: string } | CachePoint;

export type ConverseTool =
  { toolSpec: { name: string; description?: string; inputSchema: { json: unknown }; strict?: boolean } } | CachePoint;

export type ConverseToolChoice =
  { auto: Record<string, never> } | { any: Record<string, never> } | { tool: { name: string } };

export interface ConverseRequest {
  messages: ConverseMessage[];
  system?: SystemBlock[];
  inferenceConfig?: { maxTokens?: number; temperature?: number; topP?: number; stopSequences?: string[] };
  toolConfig?: { tools: ConverseTool[]; toolChoice?: ConverseToolChoice };
  additionalModelRequestFields?: Record<string, unknown>;
  additionalModelResponseFieldPaths?: string[];
  outputConfig?: OutputConfig;
}

/** Structured output: the JSON schema travels as a string (`JsonSchemaDefinition.schema`). */
export interface OutputConfig {
  textFormat: {
    type: 'json_schema';
    structure: { jsonSchema: { schema: string; name?: string; description?: string } };
  };
}

export type ConverseStopReason =
  | 'end_turn'
  | 'tool_use'
  | 'max_tokens'
  | 'stop_sequence'
  | 'guardrail_intervened'
  | 'content_filtered'
  | 'malformed_model_output'
  | 'malformed_tool_use'
  | 'model_context_window_exceeded';

export interface ConverseUsage {
  inputTokens: number;
  outputTokens: number;
  totalTokens?: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
}

/** `CitationLocation`: a union; members the proxy does not know are skipped like unknown blocks. */
export interface CitationLocation {
  web?: { url?: string; domain?: string };
  documentChar?: IndexRange;
  documentPage?: IndexRange;
  documentChunk?: IndexRange;
  searchResultLocation?: { searchResultIndex?: number; start?: number; end?: number };
  [member: string]: unknown;
}
interface IndexRange {
  documentIndex?: number;
  start?: number;
  end?: number;
}
/** `Citation` (in a `citationsContent` block) and `CitationsDelta` (a stream delta) share these members. */
export interface ConverseCitation {
  title?: string;
  source?: string;
  sourceContent?: Array<{ text?: string }>;
  location?: CitationLocation;
}
export interface CitationsContentBlock {
  content?: Array<{ text?: string }>;
  citations?: ConverseCitation[];
}

/**
 * A member of the `ContentBlock` union in an answer. Typed as open: Bedrock adds members (the
 * model already lists image, document, video, audio, searchResult, …) and the translator must
 * skip what it does not know rather than fail (`response.ts`, `outputBlockHandlers`).
 */
export type ConverseOutputBlock = Record<string, unknown>;

export interface ConverseResponse {
  output: { message?: { role: 'assistant'; content: ConverseOutputBlock[] } };
  stopReason: ConverseStopReason;
  usage: ConverseUsage;
  additionalModelResponseFields?: { stop_sequence?: string | null; [field: string]: unknown };
}
