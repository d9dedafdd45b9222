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
export type ToolResultContent = { text: string } | ImageBlock | DocumentBlock | { json: unknown };

export type ConverseContentBlock =
  | { text: string }
  | ImageBlock
  | DocumentBlock
  | { toolUse: { toolUseId: string; name: string; input: unknown } }
  | { toolResult: { toolUseId: string; content: ToolResultContent[]; status?: 'success' | 'error' } }
  | { reasoningContent: { reasoningText: { text: string; signature?: string } } | { redactedContent: string } }
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

export type ConverseOutputBlock =
  | { text: string }
  | { toolUse: { toolUseId: string; name: string; input: unknown } }
  | { reasoningContent: { reasoningText?: { text: string; signature?: string }; redactedContent?: string } };

export interface ConverseResponse {
  output: { message?: { role: 'assistant'; content: ConverseOutputBlock[] } };
  stopReason: ConverseStopReason;
  usage: ConverseUsage;
  additionalModelResponseFields?: { stop_sequence?: string | null; [field: string]: unknown };
}
