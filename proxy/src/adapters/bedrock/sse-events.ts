/** One Anthropic SSE event, the general way: any data, `JSON.stringify`'d whole. */
export function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The delta kinds a `content_block_delta` carries one string of, and that string's field. */
export type StringDelta =
  | ['text_delta', 'text']
  | ['input_json_delta', 'partial_json']
  | ['thinking_delta', 'thinking']
  | ['signature_delta', 'signature'];

/**
 * `content_block_delta` with one string field: nearly every event of a stream. A template
 * around `JSON.stringify` of the string alone gives the same bytes as `sse` of the whole object
 * (same key order; `index` is our own integer) without building or walking the two objects.
 * A value that is not a string (a malformed upstream) takes the general path, as before.
 */
export function deltaEvent(index: number, [type, field]: StringDelta, value: unknown): string {
  if (typeof value !== 'string')
    return sse('content_block_delta', { type: 'content_block_delta', index, delta: { type, [field]: value } });
  return `event: content_block_delta\ndata: {"type":"content_block_delta","index":${index},"delta":{"type":"${type}","${field}":${JSON.stringify(value)}}}\n\n`;
}
