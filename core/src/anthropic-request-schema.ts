import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { Settings } from 'typebox/system';
import { ProxyError } from './errors.ts';
import type { MessagesRequest } from './anthropic-types.ts';

/**
 * The Anthropic Messages request as the proxy reads it where it must (the Bedrock path), as one
 * schema compiled once. Strict about the type of every field the translation reads; open to
 * every field it does not (objects take extra properties: new API fields and betas Claude Code
 * sends pass through), and to content blocks of types it does not know.
 */
const cacheControl = Type.Union([
  Type.Object({ type: Type.String(), ttl: Type.Optional(Type.Union([Type.Literal('5m'), Type.Literal('1h')])) }),
  Type.Null(),
]);
const optionalCacheControl = Type.Optional(cacheControl);

const text = Type.Object({
  type: Type.Literal('text'),
  text: Type.String(),
  cache_control: optionalCacheControl,
});

const literals = (values: readonly string[]) => Type.Union(values.map((value) => Type.Literal(value)));
/** Base64 as Anthropic takes it; a linear pattern, only ever run on the Bedrock path. */
const base64 = Type.String({ minLength: 1, pattern: '^[A-Za-z0-9+/]*={0,2}$' });
const base64Source = (mediaTypes: readonly string[]) =>
  Type.Object({ type: Type.Literal('base64'), media_type: literals(mediaTypes), data: base64 });
const urlSource = Type.Object({ type: Type.Literal('url'), url: Type.String() });
const fileSource = Type.Object({ type: Type.Literal('file'), file_id: Type.String() });

const image = Type.Object({
  type: Type.Literal('image'),
  source: Type.Union([base64Source(['image/jpeg', 'image/png', 'image/gif', 'image/webp']), urlSource, fileSource]),
  cache_control: optionalCacheControl,
});

const citationsConfig = Type.Optional(
  Type.Union([Type.Object({ enabled: Type.Optional(Type.Boolean()) }), Type.Null()]),
);

const document = Type.Object({
  type: Type.Literal('document'),
  source: Type.Union([
    base64Source(['application/pdf']),
    Type.Object({ type: Type.Literal('text'), media_type: Type.Literal('text/plain'), data: Type.String() }),
    Type.Object({ type: Type.Literal('content'), content: Type.Union([Type.String(), Type.Array(text)]) }),
    urlSource,
    fileSource,
  ]),
  title: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  context: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  citations: citationsConfig,
  cache_control: optionalCacheControl,
});

const searchResult = Type.Object({
  type: Type.Literal('search_result'),
  source: Type.String(),
  title: Type.String(),
  content: Type.Array(text),
  citations: citationsConfig,
  cache_control: optionalCacheControl,
});

const knownBlockTypes = [
  'text',
  'image',
  'document',
  'search_result',
  'tool_use',
  'tool_result',
  'thinking',
  'redacted_thinking',
];
/** A block of a type the translation does not read (server tools' results, compaction, …). */
const otherBlock = (known: readonly string[]) =>
  Type.Object({ type: Type.String({ pattern: `^(?!(?:${known.join('|')})$)` }) });

const toolResultItem = Type.Union([
  text,
  image,
  document,
  searchResult,
  otherBlock(['text', 'image', 'document', 'search_result']),
]);

const contentBlock = Type.Union([
  text,
  image,
  document,
  searchResult,
  Type.Object({
    type: Type.Literal('tool_use'),
    id: Type.String(),
    name: Type.String(),
    input: Type.Unknown(),
    cache_control: optionalCacheControl,
  }),
  Type.Object({
    type: Type.Literal('tool_result'),
    tool_use_id: Type.String(),
    content: Type.Optional(Type.Union([Type.String(), Type.Array(toolResultItem)])),
    is_error: Type.Optional(Type.Boolean()),
    cache_control: optionalCacheControl,
  }),
  Type.Object({ type: Type.Literal('thinking'), thinking: Type.String(), signature: Type.Optional(Type.String()) }),
  Type.Object({ type: Type.Literal('redacted_thinking'), data: Type.String() }),
  otherBlock(knownBlockTypes),
]);

const tool = Type.Object({
  name: Type.String(),
  type: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  input_schema: Type.Optional(Type.Object({})),
  cache_control: optionalCacheControl,
  strict: Type.Optional(Type.Boolean()),
});

/** Structured output: the one format Anthropic defines (Converse `outputConfig.textFormat`). */
const outputFormat = Type.Object({ type: Type.Literal('json_schema'), schema: Type.Object({}) });

const parallel = { disable_parallel_tool_use: Type.Optional(Type.Boolean()) };
// One branch per `type`, so an error is reported from the branch the value chose.
const toolChoice = Type.Union([
  ...['auto', 'any', 'none'].map((type) => Type.Object({ type: Type.Literal(type), ...parallel })),
  Type.Object({ type: Type.Literal('tool'), name: Type.String(), ...parallel }),
]);

const fields = {
  model: Type.String({ minLength: 1 }),
  messages: Type.Array(
    Type.Object({
      role: Type.Union([Type.Literal('user'), Type.Literal('assistant'), Type.Literal('system')]),
      content: Type.Union([Type.String(), Type.Array(contentBlock)]),
    }),
  ),
  system: Type.Optional(Type.Union([Type.String(), Type.Array(text)])),
  tools: Type.Optional(Type.Array(tool)),
  tool_choice: Type.Optional(toolChoice),
  temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  top_k: Type.Optional(Type.Integer({ minimum: 0 })),
  stop_sequences: Type.Optional(Type.Array(Type.String())),
  stream: Type.Optional(Type.Boolean()),
  thinking: Type.Optional(
    Type.Object({
      type: Type.String(),
      budget_tokens: Type.Optional(Type.Integer()),
      display: Type.Optional(Type.String()),
    }),
  ),
  output_config: Type.Optional(
    Type.Object({
      effort: Type.Optional(Type.String()),
      format: Type.Optional(Type.Union([outputFormat, Type.Null()])),
    }),
  ),
  // The structured-outputs beta's spelling of `output_config.format`.
  output_format: Type.Optional(Type.Union([outputFormat, Type.Null()])),
  cache_control: optionalCacheControl,
  metadata: Type.Optional(Type.Object({ user_id: Type.Optional(Type.Union([Type.String(), Type.Null()])) })),
};

const messagesSchema = Type.Object({ ...fields, max_tokens: Type.Integer({ minimum: 1 }) });
/** count_tokens takes the same request without `max_tokens`. */
const countTokensSchema = Type.Object({ ...fields, max_tokens: Type.Optional(Type.Integer()) });
type Validator =
  ReturnType<typeof Compile<typeof messagesSchema>> | ReturnType<typeof Compile<typeof countTokensSchema>>;
/**
 * Compiled on first use, once per process (~60 ms): processes that never serve from Bedrock
 * (admin, operator, Plan-only replicas) do not pay for it at start.
 */
const compiled: Partial<Record<'messages' | 'count_tokens', Validator>> = {};

/**
 * Checks a parsed request body; throws `PRX_INVALID_REQUEST` naming the first wrong field's JSON
 * path (`messages.0.content: Expected array or string`).
 */
export function validateMessagesRequest(value: unknown, route: 'messages' | 'count_tokens'): MessagesRequest {
  const validator = (compiled[route] ??= Compile(route === 'messages' ? messagesSchema : countTokensSchema));
  if (validator.Check(value)) return value as MessagesRequest;
  throw new ProxyError('PRX_INVALID_REQUEST', describe(allErrors(validator, value)));
}

/**
 * typebox stops at 8 errors by default, fewer than one content block's union produces. Raised
 * only for this synchronous call, on the failure path (typebox's own parse does the same).
 */
function allErrors(validator: { Errors(value: unknown): unknown[] }, value: unknown): ValidationError[] {
  const previous = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: 512 });
  try {
    return validator.Errors(value) as ValidationError[];
  } finally {
    Settings.Set({ maxErrors: previous });
  }
}

interface ValidationError {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

/**
 * One precise message out of a union's many errors: branches whose `type` discriminator did not
 * match are set aside, then the deepest remaining path is the field at fault; type errors there
 * are merged into one `Expected a or b`.
 */
function describe(errors: ValidationError[]): string {
  const discriminator = (error: ValidationError) =>
    error.schemaPath.endsWith('/properties/type') && error.keyword !== 'anyOf';
  const mismatched = errors.filter(discriminator).map((error) => error.schemaPath.slice(0, -'/properties/type'.length));
  // A `type` that is not even a string is wrong in every branch: it stays.
  const relevant = errors.filter(
    (error) =>
      (discriminator(error) && error.keyword === 'type') ||
      (error.keyword !== 'anyOf' &&
        !mismatched.some((branch) => error.schemaPath === branch || error.schemaPath.startsWith(`${branch}/`))),
  );
  // No branch's `type` matched: the discriminator itself is the field at fault.
  const candidates = relevant.length > 0 ? relevant : errors.filter(discriminator);
  if (candidates.length === 0) return 'Invalid request.';
  const depth = (error: ValidationError) => error.instancePath.split('/').length;
  const deepest = Math.max(...candidates.map(depth));
  const atPath = candidates.filter((error) => depth(error) === deepest);
  const required = atPath.filter((error) => error.keyword === 'required');
  const first =
    required.find((error) => (error.params.requiredProperties as string[] | undefined)?.includes('type')) ??
    required[0] ??
    atPath[0];
  if (first === undefined) return 'Invalid request.';
  const path = first.instancePath.split('/').slice(1).map(unescapePointer);
  if (first.keyword === 'required') {
    const properties = (first.params.requiredProperties as string[] | undefined) ?? [];
    const missing = properties.includes('type') ? 'type' : (properties[0] ?? '');
    return `${[...path, missing].join('.')}: Field required`;
  }
  const types = [...new Set(atPath.filter((error) => error.keyword === 'type').map((error) => error.params.type))];
  const what =
    types.length > 0
      ? `Expected ${types.map(String).sort().join(' or ')}`
      : first.keyword === 'const' || first.keyword === 'anyOf'
        ? `Expected one of ${allowedValues(atPath)}`
        : first.message;
  return `${path.length === 0 ? '(body)' : path.join('.')}: ${what}`;
}

function allowedValues(errors: ValidationError[]): string {
  const values = errors.map((error) => error.params.allowedValue).filter((value) => value !== undefined);
  return values.length === 0 ? 'the allowed values' : values.map((value) => JSON.stringify(value)).join(', ');
}

function unescapePointer(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~');
}
