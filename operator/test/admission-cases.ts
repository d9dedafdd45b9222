/**
 * The admission table: specs every path must refuse (the API server, the admin facade, the local
 * operator's manifests folder), each with the field its refusal must name, and specs every path
 * must accept. Shared by operator/test/admission.test.ts and admin/test/admission.test.ts.
 */
export type Kind = 'ProxyUser' | 'AccessKey' | 'BedrockKey';

export interface SpecCase {
  name: string;
  kind: Kind;
  spec: Record<string, unknown>;
  /** The field the refusal names, dotted (`spec.bedrock.model`); the JSON-pointer spelling counts too. */
  field: string;
}

const key = (extra: Record<string, unknown> = {}) => ({
  userRef: { name: 'alice' },
  secretName: 'alice-key',
  ...extra,
});
const bedrock = (extra: Record<string, unknown>) => key({ bedrock: extra });
const bedrockOnly = (extra?: Record<string, unknown>) =>
  key({ routing: 'BedrockOnly', ...(extra === undefined ? {} : { bedrock: extra }) });
const bkey = (extra: Record<string, unknown> = {}) => ({
  accessKeyRef: { name: 'alice-laptop' },
  secretRef: { name: 'team-bedrock', key: 'apiKey' },
  ...extra,
});
const model = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
const profileArn = (region: string) =>
  `arn:aws:bedrock:${region}:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0`;

const bad = (kind: Kind, name: string, field: string, spec: Record<string, unknown>): SpecCase => ({
  name,
  kind,
  spec,
  field,
});

export const badSpecs: SpecCase[] = [
  // The three seen in issue 26.
  bad(
    'AccessKey',
    'bedrock.model free text with ; and a newline',
    'spec.bedrock.model',
    bedrock({ model: 'x; rm -rf /\nmore' }),
  ),
  bad('AccessKey', 'modelMap with an empty key', 'spec.bedrock.modelMap', bedrock({ modelMap: { '': model } })),
  bad(
    'BedrockKey',
    'secretRef.key bad/key',
    'spec.secretRef.key',
    bkey({ secretRef: { name: 'team-bedrock', key: 'bad/key' } }),
  ),
  // Model ids: the Bedrock grammar, in model and modelMap values; Anthropic names as keys.
  bad(
    'AccessKey',
    'bedrock.model with ; (one line)',
    'spec.bedrock.model',
    bedrock({ model: 'anthropic.claude-v1;0' }),
  ),
  bad('AccessKey', 'bedrock.model with a space', 'spec.bedrock.model', bedrock({ model: 'claude sonnet' })),
  bad('AccessKey', 'bedrock.model without a provider', 'spec.bedrock.model', bedrock({ model: 'sonnet' })),
  bad(
    'AccessKey',
    'bedrock.model an ARN of another service',
    'spec.bedrock.model',
    bedrock({ model: 'arn:aws:s3:::bucket/key' }),
  ),
  bad('AccessKey', 'bedrock.model U+202E', 'spec.bedrock.model', bedrock({ model: `anthropic.claude\u202e-v1:0` })),
  bad(
    'AccessKey',
    'bedrock.model over 2048',
    'spec.bedrock.model',
    bedrock({ model: `${profileArn('us-east-1')}${'a'.repeat(2048)}` }),
  ),
  bad('AccessKey', 'modelMap key with ;', 'spec.bedrock.modelMap', bedrock({ modelMap: { 'claude;x': model } })),
  bad(
    'AccessKey',
    'modelMap key with a newline',
    'spec.bedrock.modelMap',
    bedrock({ modelMap: { 'claude\nx': model } }),
  ),
  bad('AccessKey', 'modelMap key with NUL', 'spec.bedrock.modelMap', bedrock({ modelMap: { 'claude\u0000': model } })),
  bad(
    'AccessKey',
    'modelMap key over 256',
    'spec.bedrock.modelMap',
    bedrock({ modelMap: { ['c'.repeat(257)]: model } }),
  ),
  bad(
    'AccessKey',
    'modelMap value free text',
    'spec.bedrock.modelMap',
    bedrock({ modelMap: { 'claude-x': 'use sonnet' } }),
  ),
  bad('AccessKey', 'modelMap value empty', 'spec.bedrock.modelMap', bedrock({ modelMap: { 'claude-x': '' } })),
  bad(
    'AccessKey',
    'modelMap over 256 entries',
    'spec.bedrock.modelMap',
    bedrock({ modelMap: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`claude-${i}`, model])) }),
  ),
  // Regions, enums.
  bad('AccessKey', 'region free text', 'spec.bedrock.region', bedrock({ region: 'us-east-1; x' })),
  bad('AccessKey', 'region unknown shape', 'spec.bedrock.region', bedrock({ region: 'mars' })),
  bad('AccessKey', 'bedrock.api not an enum value', 'spec.bedrock.api', bedrock({ api: 'Invoke' })),
  bad('AccessKey', 'routing not an enum value', 'spec.routing', key({ routing: 'Sometimes' })),
  // Names: Secret names are DNS subdomains; references name resources in the same namespace.
  bad('AccessKey', 'secretName with capitals and _', 'spec.secretName', key({ secretName: 'Alice_Key' })),
  bad('AccessKey', 'secretName with an empty label', 'spec.secretName', key({ secretName: 'alice..key' })),
  bad('AccessKey', 'secretName over 253', 'spec.secretName', key({ secretName: 'a'.repeat(254) })),
  bad('AccessKey', 'userRef.name with a newline', 'spec.userRef.name', key({ userRef: { name: 'alice\nbob' } })),
  bad(
    'AccessKey',
    'userRef in another namespace',
    'spec.userRef',
    key({ userRef: { name: 'alice', namespace: 'other' } }),
  ),
  bad('BedrockKey', 'api not an enum value', 'spec.api', bkey({ api: 'Invoke' })),
  bad(
    'BedrockKey',
    'secretRef.key with a space',
    'spec.secretRef.key',
    bkey({ secretRef: { name: 'team-bedrock', key: 'api key' } }),
  ),
  bad(
    'BedrockKey',
    'secretRef.key over 253',
    'spec.secretRef.key',
    bkey({ secretRef: { name: 'team-bedrock', key: 'k'.repeat(254) } }),
  ),
  bad(
    'BedrockKey',
    'secretRef.name not a DNS subdomain',
    'spec.secretRef.name',
    bkey({ secretRef: { name: '-bedrock' } }),
  ),
  bad('BedrockKey', 'accessKeyRef.name empty', 'spec.accessKeyRef.name', bkey({ accessKeyRef: { name: '' } })),
  // Display text: no control characters, bounded.
  bad('ProxyUser', 'displayName with a newline', 'spec.displayName', { displayName: 'Alice\nAdmin' }),
  bad('ProxyUser', 'displayName with NUL', 'spec.displayName', { displayName: 'Ali\u0000ce' }),
  bad('ProxyUser', 'displayName with U+202E', 'spec.displayName', { displayName: 'Alice \u202eKim' }),
  bad('ProxyUser', 'displayName with U+2028', 'spec.displayName', { displayName: 'Alice\u2028Kim' }),
  bad('ProxyUser', 'displayName over 200', 'spec.displayName', { displayName: 'A'.repeat(201) }),
  bad('ProxyUser', 'description with NUL', 'spec.description', { description: 'line one\n\u0000' }),
  bad('ProxyUser', 'description with U+202E', 'spec.description', { description: 'team \u202eA' }),
  bad('ProxyUser', 'description over 2000', 'spec.description', { description: 'd'.repeat(2001) }),
  // Cross-field rules (the admission policy on the API server; their JS twins elsewhere).
  bad('AccessKey', 'BedrockOnly without bedrock', 'spec.bedrock.model', bedrockOnly()),
  bad('AccessKey', 'BedrockOnly without a model', 'spec.bedrock.model', bedrockOnly({ region: 'us-east-1' })),
  bad(
    'AccessKey',
    'model ARN outside bedrock.region',
    'spec.bedrock.model',
    bedrock({ region: 'eu-west-1', model: profileArn('us-east-1') }),
  ),
  bad(
    'AccessKey',
    'modelMap ARN outside bedrock.region',
    'spec.bedrock.modelMap',
    bedrock({ region: 'eu-west-1', modelMap: { 'claude-opus-4-5': profileArn('us-west-2') } }),
  ),
  // Budgets and rate limits (ProxyUser and AccessKey alike).
  bad('ProxyUser', 'budget: negative USD', 'spec.budget.daily.usd', { budget: { daily: { usd: -1 } } }),
  bad('ProxyUser', 'budget: USD as text', 'spec.budget.monthly.usd', { budget: { monthly: { usd: '10$' } } }),
  bad(
    'AccessKey',
    'budget: a fraction of a token',
    'spec.budget.daily.tokens',
    key({ budget: { daily: { tokens: 1.5 } } }),
  ),
  bad('ProxyUser', 'budget: softLimitPercent 0', 'spec.budget.softLimitPercent', { budget: { softLimitPercent: 0 } }),
  bad('ProxyUser', 'budget: softLimitPercent over 100', 'spec.budget.softLimitPercent', {
    budget: { softLimitPercent: 150 },
  }),
  bad('ProxyUser', 'budget: an unknown period', 'spec.budget', { budget: { weekly: { usd: 5 } } }),
  bad('AccessKey', 'budget: an unknown cap', 'spec.budget.daily', key({ budget: { daily: { eur: 5 } } })),
  bad('ProxyUser', 'rateLimits: 0 requests per minute', 'spec.rateLimits.requestsPerMinute', {
    rateLimits: { requestsPerMinute: 0 },
  }),
  bad(
    'AccessKey',
    'rateLimits: negative output tokens',
    'spec.rateLimits.outputTokensPerMinute',
    key({
      rateLimits: { outputTokensPerMinute: -5 },
    }),
  ),
  bad(
    'AccessKey',
    'rateLimits: fractional streams',
    'spec.rateLimits.concurrentStreams',
    key({
      rateLimits: { concurrentStreams: 2.5 },
    }),
  ),
  bad('ProxyUser', 'rateLimits.bedrock: 0 streams', 'spec.rateLimits.bedrock.concurrentStreams', {
    rateLimits: { bedrock: { concurrentStreams: 0 } },
  }),
  bad('ProxyUser', 'rateLimits: an unknown limit', 'spec.rateLimits', {
    rateLimits: { requestsPerHour: 5 },
  }),
];

const good = (kind: Kind, name: string, spec: Record<string, unknown>): SpecCase => ({ name, kind, spec, field: '' });

export const goodSpecs: SpecCase[] = [
  good('ProxyUser', 'minimal user', {}),
  good('ProxyUser', 'accents, emoji (with ZWJ) and a multi-line description', {
    displayName: 'Zoë Ångström 👩‍💻',
    description: 'Team A\nplatform on-call',
    suspended: true,
  }),
  good('AccessKey', 'minimal key', key()),
  good('AccessKey', 'PlanOnly', key({ routing: 'PlanOnly' })),
  good('AccessKey', 'BedrockOnly with a model', bedrockOnly({ model })),
  good('AccessKey', 'BedrockOnly with a modelMap only', bedrockOnly({ modelMap: { 'claude-sonnet-4-5': model } })),
  good(
    'AccessKey',
    'every Bedrock model shape',
    bedrock({
      region: 'us-east-1',
      api: 'InvokeModel',
      model: 'anthropic.claude-3-5-haiku-20241022-v1:0',
      modelMap: {
        'claude-sonnet-4-5-20250929': 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
        'claude-sonnet-4-5@20250929': 'anthropic.claude-3-sonnet-20240229-v1:0:28k',
        'claude-opus-4-5': profileArn('us-east-1'),
        'claude-opus-4-1': 'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-1-20250805-v1:0',
        'claude-haiku-4-5': 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6',
        'claude-3-7-sonnet': 'arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdef123456',
        'global.anthropic.claude-sonnet-4-5-20250929-v1:0': model,
      },
    }),
  ),
  good('AccessKey', 'an ARN without a region set', bedrock({ model: profileArn('ap-northeast-2') })),
  good('AccessKey', 'GovCloud region, dotted Secret name', {
    ...bedrock({ region: 'us-gov-west-1', model: 'us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0' }),
    secretName: 'alice.laptop-key',
  }),
  good('BedrockKey', 'minimal Bedrock key (default data key)', {
    accessKeyRef: { name: 'k' },
    secretRef: { name: 's' },
  }),
  good('BedrockKey', 'default API Converse', bkey({ api: 'Converse' })),
  good('BedrockKey', 'data key with . _ -', bkey({ secretRef: { name: 'team-bedrock', key: 'bedrock_api-key.v2' } })),
  good('ProxyUser', 'budgets and rate limits', {
    budget: { daily: { usd: 25 }, monthly: { usd: 300.5, tokens: 200_000_000 }, softLimitPercent: 90 },
    rateLimits: {
      requestsPerMinute: 60,
      inputTokensPerMinute: 2_000_000,
      outputTokensPerMinute: 200_000,
      concurrentStreams: 8,
      bedrock: { requestsPerMinute: 10, concurrentStreams: 2 },
    },
  }),
  good('AccessKey', 'a key with a daily token cap only', key({ budget: { daily: { tokens: 1_000_000 } } })),
  good('ProxyUser', 'a zero budget (refuses everything)', { budget: { daily: { usd: 0 } } }),
];

/** Does `message` name `field` (dotted, or as the JSON pointer typebox reports)? */
export function namesField(message: string, field: string): boolean {
  return message.includes(field) || message.includes(`/${field.replaceAll('.', '/')}`);
}
