/**
 * The Anthropic Messages API request and response shapes the proxy reads and writes when it
 * has to (the Plan path never parses bodies; the Bedrock path translates them). Only fields
 * the translation looks at are typed; everything else is kept as unknown.
 */

export interface CacheControl {
  type: 'ephemeral';
  ttl?: '5m' | '1h';
}

export type ImageSource =
  | { type: 'base64'; media_type: string; data: string }
  | { type: 'url'; url: string }
  | { type: 'file'; file_id: string };

export type DocumentSource =
  | { type: 'base64'; media_type: string; data: string }
  | { type: 'text'; media_type: string; data: string }
  | { type: 'content'; content: string | Array<{ type: 'text'; text: string }> }
  | { type: 'url'; url: string }
  | { type: 'file'; file_id: string };

export interface TextBlockParam {
  type: 'text';
  text: string;
  cache_control?: CacheControl | null;
  citations?: unknown;
}
export interface ImageBlockParam {
  type: 'image';
  source: ImageSource;
  cache_control?: CacheControl | null;
}
export interface DocumentBlockParam {
  type: 'document';
  source: DocumentSource;
  title?: string | null;
  context?: string | null;
  citations?: { enabled?: boolean } | null;
  cache_control?: CacheControl | null;
}
export interface SearchResultBlockParam {
  type: 'search_result';
  source: string;
  title: string;
  content: TextBlockParam[];
  citations?: { enabled?: boolean } | null;
  cache_control?: CacheControl | null;
}
export interface ToolUseBlockParam {
  type: 'tool_use';
  id: string;
  name: string;
  input: unknown;
  cache_control?: CacheControl | null;
}
export interface ToolResultBlockParam {
  type: 'tool_result';
  tool_use_id: string;
  content?:
    string | Array<TextBlockParam | ImageBlockParam | DocumentBlockParam | SearchResultBlockParam | { type: string }>;
  is_error?: boolean;
  cache_control?: CacheControl | null;
}
export interface ThinkingBlockParam {
  type: 'thinking';
  thinking: string;
  signature?: string;
}
export interface RedactedThinkingBlockParam {
  type: 'redacted_thinking';
  data: string;
}
/** Blocks Bedrock Converse has no place for (server tools and their results, compaction, …). */
export interface OtherBlockParam {
  type: string;
  [field: string]: unknown;
}

export type ContentBlockParam =
  | TextBlockParam
  | ImageBlockParam
  | DocumentBlockParam
  | SearchResultBlockParam
  | ToolUseBlockParam
  | ToolResultBlockParam
  | ThinkingBlockParam
  | RedactedThinkingBlockParam;

export interface MessageParam {
  role: 'user' | 'assistant' | 'system';
  content: string | Array<ContentBlockParam | OtherBlockParam>;
}

export interface ToolParam {
  name: string;
  description?: string;
  input_schema?: Record<string, unknown>;
  type?: string;
  cache_control?: CacheControl | null;
  strict?: boolean;
  [field: string]: unknown;
}

export type ToolChoice =
  | { type: 'auto'; disable_parallel_tool_use?: boolean }
  | { type: 'any'; disable_parallel_tool_use?: boolean }
  | { type: 'tool'; name: string; disable_parallel_tool_use?: boolean }
  | { type: 'none' };

export interface OutputFormat {
  type: 'json_schema';
  schema: Record<string, unknown>;
}

export interface MessagesRequest {
  model: string;
  max_tokens?: number;
  messages: MessageParam[];
  system?: string | TextBlockParam[];
  tools?: ToolParam[];
  tool_choice?: ToolChoice;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  stop_sequences?: string[];
  stream?: boolean;
  thinking?: { type: 'enabled' | 'disabled' | 'adaptive'; budget_tokens?: number; display?: string };
  output_config?: { effort?: string; format?: OutputFormat | null; [field: string]: unknown };
  output_format?: OutputFormat | null;
  /** Automatic prompt caching: a breakpoint on the last cacheable block. */
  cache_control?: CacheControl | null;
  metadata?: { user_id?: string | null };
  [field: string]: unknown;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/** A citation on a text block of an answer (the location kinds Anthropic defines). */
export type TextCitation =
  | {
      type: 'char_location';
      cited_text: string;
      document_index: number;
      document_title: string | null;
      start_char_index: number;
      end_char_index: number;
      file_id: null;
    }
  | {
      type: 'page_location';
      cited_text: string;
      document_index: number;
      document_title: string | null;
      start_page_number: number;
      end_page_number: number;
      file_id: null;
    }
  | {
      type: 'content_block_location';
      cited_text: string;
      document_index: number;
      document_title: string | null;
      start_block_index: number;
      end_block_index: number;
      file_id: null;
    }
  | {
      type: 'search_result_location';
      cited_text: string;
      search_result_index: number;
      source: string;
      title: string | null;
      start_block_index: number;
      end_block_index: number;
    }
  | {
      type: 'web_search_result_location';
      cited_text: string;
      url: string;
      title: string | null;
      encrypted_index: string;
    };

export type ResponseContentBlock =
  | { type: 'text'; text: string; citations?: TextCitation[] }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'redacted_thinking'; data: string };

export type StopReason =
  'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'pause_turn' | 'refusal' | 'model_context_window_exceeded';

export interface MessageResponse {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ResponseContentBlock[];
  stop_reason: StopReason | null;
  stop_sequence: string | null;
  usage: Usage;
}
