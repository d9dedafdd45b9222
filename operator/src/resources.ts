import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';

/**
 * The custom resources (group ccproxy.io, v1alpha1) as typebox schemas: one source of truth for
 * validation here, the CRD YAML and the admin API. Kubernetes object names are DNS-1123 labels.
 */
export const group = 'ccproxy.io';
export const version = 'v1alpha1';

/**
 * Free text refuses every C0 control (NUL, tab, CR, newline…), DEL and every C1 control: NUL
 * cannot be stored in Postgres text (a permanent reconcile error), and the rest corrupt logs,
 * YAML and terminals. One pattern, valid both as an ECMAScript (`u`) and as an RE2 (Go, the API
 * server) regular expression, so the admin, the local operator and the CRDs refuse the same.
 */
export const singleLineForbidden = '\\x00-\\x1f\\x7f-\\x9f';
export const singleLinePattern = `^[^${singleLineForbidden}]*$`;
/** The same, with line feeds allowed: descriptions are multi-line text areas. */
export const multiLineForbidden = '\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f';
export const multiLinePattern = `^[^${multiLineForbidden}]*$`;
export const singleLine = (options: { minLength?: number; maxLength?: number; default?: string } = {}) =>
  Type.String({ ...options, pattern: singleLinePattern });
export const multiLine = (options: { minLength?: number; maxLength?: number; default?: string } = {}) =>
  Type.String({ ...options, pattern: multiLinePattern });

const dnsName = Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' });

/**
 * `schema` with a description: the CRDs carry it, so `kubectl explain` documents every field
 * (a test fails on a CRD field without one). A copy, so shared schemas keep their own text.
 */
export const described = <T extends TSchema>(description: string, schema: T): T =>
  // Every own property, typebox's non-enumerable markers included (a spread drops them, and with
  // them the defaults Value.Default fills in).
  Object.defineProperties(Object.create(Object.getPrototypeOf(schema) as object | null) as T, {
    ...Object.getOwnPropertyDescriptors(schema),
    description: { value: description, enumerable: true, writable: true, configurable: true },
  });
const localRef = (what: string) =>
  described(
    `The ${what} this refers to, by name, in the same namespace.`,
    Type.Object(
      { name: described(`Name of the ${what} (a DNS-1123 name).`, dnsName) },
      { additionalProperties: false },
    ),
  );

const metadata = Type.Object({
  name: dnsName,
  namespace: Type.Optional(dnsName),
  uid: Type.Optional(Type.String()),
  generation: Type.Optional(Type.Integer()),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
});

export const proxyUserSpec = described(
  'A developer (or a service) that uses the proxy through one or more AccessKeys.',
  Type.Object(
    {
      displayName: described(
        'Human-readable name shown in the admin UI and logs. One line, no control characters.',
        singleLine({ maxLength: 200, default: '' }),
      ),
      description: described(
        'Free text about the user (team, purpose). Line feeds allowed, no other control characters.',
        multiLine({ maxLength: 2000, default: '' }),
      ),
      suspended: described(
        'When true, every AccessKey of this user is refused by the proxy (404) until it is set back to false.',
        Type.Boolean({ default: false }),
      ),
    },
    { additionalProperties: false },
  ),
);

export const routing = Type.Union(
  [Type.Literal('PlanWithFailover'), Type.Literal('PlanOnly'), Type.Literal('BedrockOnly')],
  {
    default: 'PlanWithFailover',
    description:
      "Where requests go. PlanWithFailover: Anthropic with the developer's own credential, Amazon Bedrock when Anthropic rate-limits or fails (before the first byte) or while the key's circuit breaker is open. PlanOnly: Anthropic only. BedrockOnly: Bedrock only (needs a BedrockKey and a model).",
  },
);

export const accessKeySpec = described(
  'One access key of a ProxyUser: the developer sets ANTHROPIC_BASE_URL to <proxy>/ak/<key>.',
  Type.Object(
    {
      userRef: localRef('ProxyUser who owns the key (immutable)'),
      secretName: described(
        'Secret holding the key (data.accessKey, and ANTHROPIC_BASE_URL when the public URL is known). An existing Secret with data.accessKey is adopted (bring your own key); otherwise the operator generates a key into a new Secret owned by this AccessKey. A Secret named by two AccessKeys serves neither (SecretConflict).',
        dnsName,
      ),
      routing,
      bedrock: Type.Optional(
        described(
          'Amazon Bedrock settings used when the request goes to Bedrock (failover or BedrockOnly).',
          Type.Object(
            {
              region: Type.Optional(
                described(
                  "AWS region of the Bedrock Runtime endpoint, e.g. us-east-1 (default: the proxy's AWS_REGION).",
                  Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-\\d$' }),
                ),
              ),
              api: described(
                'Bedrock API used: InvokeModel (the native Anthropic body, the default) or Converse (translated).',
                Type.Union([Type.Literal('Converse'), Type.Literal('InvokeModel')], { default: 'InvokeModel' }),
              ),
              model: Type.Optional(
                described(
                  'Default Bedrock model id or inference profile (e.g. global.anthropic.claude-sonnet-4-5-20250929-v1:0) for models not in modelMap.',
                  singleLine({ minLength: 1, maxLength: 2048 }),
                ),
              ),
              // Keys are constrained by propertyNames (additionalProperties: false on a Record trips
              // typebox's Value.Default on a non-matching key); the CRD turns it into a CEL rule.
              modelMap: described(
                'Anthropic model name (as Claude Code sends it) → Bedrock model id or inference profile.',
                Type.Record(Type.String(), singleLine({ minLength: 1, maxLength: 2048 }), {
                  default: {},
                  maxProperties: 256,
                  propertyNames: singleLine({ minLength: 1, maxLength: 256 }),
                }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
      ),
      revoked: described(
        'When true, the key is refused by every proxy replica within a second; set back to false to restore it.',
        Type.Boolean({ default: false }),
      ),
    },
    { additionalProperties: false },
  ),
);

export const bedrockKeySpec = described(
  'The Amazon Bedrock API key an AccessKey fails over with, read from a Secret and stored only envelope-encrypted.',
  Type.Object(
    {
      accessKeyRef: localRef('AccessKey this Bedrock key serves (immutable)'),
      secretRef: described(
        'The Secret (same namespace) that holds the Bedrock API key.',
        Type.Object(
          {
            name: described('Name of the Secret.', dnsName),
            key: described(
              'Data key in the Secret that holds the Bedrock API key (a Secret data key: letters, digits, -, _ and .).',
              Type.String({ minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$', default: 'apiKey' }),
            ),
          },
          { additionalProperties: false },
        ),
      ),
    },
    { additionalProperties: false },
  ),
);

const kindSchema = <K extends string, S extends TSchema>(apiVersion: string, kind: K, spec: S) =>
  Type.Object({ apiVersion: Type.Literal(apiVersion), kind: Type.Literal(kind), metadata, spec });

export const proxyUserSchema = kindSchema(`${group}/${version}`, 'ProxyUser', proxyUserSpec);
export const accessKeySchema = kindSchema(`${group}/${version}`, 'AccessKey', accessKeySpec);
export const bedrockKeySchema = kindSchema(`${group}/${version}`, 'BedrockKey', bedrockKeySpec);
export const secretSchema = Type.Object({
  apiVersion: Type.Literal('v1'),
  kind: Type.Literal('Secret'),
  metadata,
  data: Type.Optional(Type.Record(Type.String(), Type.String({ pattern: '^[A-Za-z0-9+/=\\s]*$' }))),
  stringData: Type.Optional(Type.Record(Type.String(), Type.String())),
});

export type ProxyUser = Static<typeof proxyUserSchema>;
export type AccessKey = Static<typeof accessKeySchema>;
export type BedrockKey = Static<typeof bedrockKeySchema>;
export type Secret = Static<typeof secretSchema>;
export type Resource = ProxyUser | AccessKey | BedrockKey | Secret;

const schemas = {
  ProxyUser: proxyUserSchema,
  AccessKey: accessKeySchema,
  BedrockKey: bedrockKeySchema,
  Secret: secretSchema,
} as const;

/** Validates one object and fills defaults; returns every problem found, with its JSON path. */
export function parseResource(input: unknown): { resource: Resource } | { problems: string[] } {
  const kind = (input as { kind?: unknown } | null)?.kind;
  if (typeof kind !== 'string' || !(kind in schemas)) {
    return { problems: [`unsupported kind ${JSON.stringify(kind)} (expected ${Object.keys(schemas).join(', ')})`] };
  }
  const schema = schemas[kind as keyof typeof schemas];
  const value = Value.Default(schema, Value.Clone(input));
  if (Value.Check(schema, value)) return { resource: value as Resource };
  return {
    problems: [...Value.Errors(schema, value)].map((error) => `${error.instancePath || '/'}: ${error.message}`),
  };
}

/** Data of a Secret as strings: `data` is base64 (as Kubernetes stores it), `stringData` wins. */
export function secretData(secret: Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(secret.data ?? {}))
    out[key] = Buffer.from(value, 'base64').toString('utf8');
  return { ...out, ...secret.stringData };
}
