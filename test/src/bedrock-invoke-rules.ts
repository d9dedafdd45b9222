/**
 * What Bedrock's Anthropic models enforce on an InvokeModel body beyond the Smithy model (whose
 * body is an opaque blob): the Messages API of `anthropic_version: bedrock-2023-05-31`, with
 * `model` and `stream` in the path instead, and only the betas Bedrock knows. Messages in the
 * service's own wording ("Malformed input request: #: extraneous key [model] is not permitted").
 */
const version = 'bedrock-2023-05-31';
const keys = new Set([
  'anthropic_version',
  'anthropic_beta',
  'max_tokens',
  'messages',
  'system',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'tools',
  'tool_choice',
  'thinking',
  'output_config',
]);
/**
 * Beta flags Bedrock accepts; any other fails the request. Kept apart from the proxy's own list
 * (proxy/src/adapters/bedrock/betas.ts) on purpose: this is the service's side, from the same
 * provenance (Envoy AI Gateway's live probes of Bedrock InvokeModel).
 */
const betas = new Set([
  'computer-use-2024-10-22',
  'computer-use-2025-01-24',
  'context-1m-2025-08-07',
  'fine-grained-tool-streaming-2025-05-14',
  'interleaved-thinking-2025-05-14',
  'output-128k-2025-02-19',
  'token-efficient-tools-2025-02-19',
  'tool-search-tool-2025-10-19',
]);
/** Server tools run on Anthropic's side only; Bedrock refuses them. */
const serverTool = /^(web_search|web_fetch|code_execution|mcp|memory)/;

const malformed = (detail: string) =>
  `Malformed input request: #: ${detail}, please reformat your input and try again.`;

export function invokeModelBodyRules(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [malformed('expected an object')];
  const request = body as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(request))
    if (!keys.has(key)) problems.push(malformed(`extraneous key [${key}] is not permitted`));
  if (request.anthropic_version === undefined) problems.push(malformed('required key [anthropic_version] not found'));
  else if (request.anthropic_version !== version)
    problems.push(`Invalid API version: ${JSON.stringify(request.anthropic_version)}`);
  if (request.max_tokens === undefined) problems.push(malformed('required key [max_tokens] not found'));
  else if (!Number.isInteger(request.max_tokens) || (request.max_tokens as number) < 1)
    problems.push(malformed('max_tokens: must be an integer ≥ 1'));
  const messages = request.messages;
  if (!Array.isArray(messages) || messages.length === 0)
    problems.push(malformed('messages: expected a non-empty array'));
  else
    messages.forEach((message: { role?: unknown; content?: unknown }, index) => {
      if (message.role !== 'user' && message.role !== 'assistant')
        problems.push(malformed(`messages.${index}.role: must be user or assistant`));
      if (typeof message.content !== 'string' && !Array.isArray(message.content))
        problems.push(malformed(`messages.${index}.content: expected a string or an array`));
    });
  if (request.anthropic_beta !== undefined) {
    if (!Array.isArray(request.anthropic_beta)) problems.push(malformed('anthropic_beta: expected an array'));
    else for (const flag of request.anthropic_beta) if (!betas.has(flag as string)) problems.push('invalid beta flag');
  }
  for (const tool of (request.tools ?? []) as Array<{ type?: string; name?: string }>)
    if (tool.type !== undefined && serverTool.test(tool.type))
      problems.push(malformed(`tools: tool type ${tool.type} is not supported`));
  return problems;
}
