import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { crossFieldProblems } from './admission.ts';

/**
 * The custom resources (group ccproxy.io, v1alpha1) as typebox schemas: one source of truth for
 * validation here, the CRD YAML, the admission policy (admission.ts) and the admin API.
 */
export const group = 'ccproxy.io';
export const version = 'v1alpha1';

/**
 * Free text refuses every C0 control (NUL, tab, CR, newline…), DEL and every C1 control: NUL
 * cannot be stored in Postgres text (a permanent reconcile error), and the rest corrupt logs,
 * YAML and terminals. It also refuses the invisible bidirectional controls (U+061C, U+200E/F,
 * U+202A–U+202E, U+2066–U+2069: "Trojan Source" spoofing of names in the UI and logs) and the
 * Unicode line and paragraph separators (U+2028/9, line breaks to many readers). The ranges are
 * the characters themselves (the TS escapes become them), so one pattern is valid both as an
 * ECMAScript and as an RE2 (Go, the API server) regular expression, and the admin, the local
 * operator and the CRDs refuse the same.
 */
const invisibleForbidden = '\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029';
export const singleLineForbidden = `\\x00-\\x1f\\x7f-\\x9f${invisibleForbidden}`;
export const singleLinePattern = `^[^${singleLineForbidden}]*$`;
/** The same, with line feeds allowed: descriptions are multi-line text areas. */
export const multiLineForbidden = `\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f${invisibleForbidden}`;
export const multiLinePattern = `^[^${multiLineForbidden}]*$`;
export const singleLine = (options: { minLength?: number; maxLength?: number; default?: string } = {}) =>
  Type.String({ ...options, pattern: singleLinePattern });
export const multiLine = (options: { minLength?: number; maxLength?: number; default?: string } = {}) =>
  Type.String({ ...options, pattern: multiLinePattern });

/**
 * Kubernetes names (RE2 and ECMAScript alike). A DNS-1123 subdomain — dot-separated labels of
 * lowercase letters, digits and inner hyphens, 253 at most — is what the API server demands of
 * Secret and custom-resource names; a namespace is one DNS-1123 label (63 at most).
 */
const dnsLabelPart = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
export const dnsSubdomainPattern = `^${dnsLabelPart}(\\.${dnsLabelPart})*$`;
export const dnsLabelPattern = `^${dnsLabelPart}$`;
const dnsName = Type.String({ minLength: 1, maxLength: 253, pattern: dnsSubdomainPattern });
const dnsLabel = Type.String({ minLength: 1, maxLength: 63, pattern: dnsLabelPattern });

/** A Secret data key, as the API server spells it (IsConfigMapKey): letters, digits, `-`, `_`, `.`. */
export const secretKeyPattern = '^[-._a-zA-Z0-9]+$';

/**
 * A model name as Claude Code sends it (`claude-sonnet-4-5-20250929`, `claude-opus-4-1`, the
 * Vertex spelling `claude-sonnet-4-5@20250929`, or a Bedrock id when Claude Code is set to one):
 * letters, digits and `-._:@`, starting and ending with a letter or digit.
 */
export const anthropicModelPattern = '^[A-Za-z0-9]([-A-Za-z0-9._:@]*[A-Za-z0-9])?$';

/**
 * A Bedrock model the proxy can call (ConversationalModelId of the Bedrock Runtime Smithy model,
 * anchored and narrowed to what an Anthropic model on Bedrock can be): a foundation-model id or
 * a cross-region inference profile id (`anthropic.claude-…-v1:0`, `global.anthropic.…`), or a
 * Bedrock ARN of a foundation model, (application) inference profile, provisioned, custom or
 * imported model, or prompt router. Nothing else: no spaces, `;`, quotes or control characters.
 */
const bedrockIdPart = '[a-z0-9-]{1,63}';
const bedrockArnTypes = [
  'foundation-model',
  'inference-profile',
  'application-inference-profile',
  'provisioned-model',
  'custom-model',
  'custom-model-deployment',
  'imported-model',
  'prompt-router',
  'default-prompt-router',
];
export const bedrockModelPattern =
  `^((${bedrockIdPart}\\.){1,3}${bedrockIdPart}(:${bedrockIdPart}){0,2}` +
  `|arn:aws(-[a-z]+)*:bedrock:[a-z0-9-]{1,20}:([0-9]{12})?:(${bedrockArnTypes.join('|')})/[a-zA-Z0-9][-a-zA-Z0-9.:/]*)$`;

/** An AWS region (`us-east-1`, `us-gov-west-1`, `ap-southeast-2`). */
export const regionPattern = '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$';

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
  namespace: Type.Optional(dnsLabel),
  uid: Type.Optional(Type.String()),
  generation: Type.Optional(Type.Integer()),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
});

/**
 * Budgets and rate limits (ProxyUser, AccessKey; a TeamBudget's budget). Every field optional: an
 * absent one is no limit. Read by the proxy as stored (core/src/governance/limits.ts).
 */
const periodBudget = (period: string) =>
  described(
    `Cap for one ${period} (UTC): usd and/or tokens; omit both for none.`,
    Type.Object(
      {
        usd: Type.Optional(
          described(
            `Spend cap in USD per ${period}, priced by the proxy's price table (e.g. 25 or 7.5). 0 refuses every request.`,
            Type.Number({ minimum: 0, maximum: 1_000_000_000 }),
          ),
        ),
        tokens: Type.Optional(
          described(
            `Token cap per ${period}: input + output + cache read + cache write tokens.`,
            Type.Integer({ minimum: 0, maximum: 1_000_000_000_000 }),
          ),
        ),
      },
      { additionalProperties: false },
    ),
  );
export const budgetSpec = described(
  'Spend and/or token budget. When a cap is reached, requests get 402 billing_error naming the budget and when it resets, until the period ends (days reset at 00:00 UTC, months on the 1st at 00:00 UTC).',
  Type.Object(
    {
      daily: Type.Optional(periodBudget('day')),
      monthly: Type.Optional(periodBudget('month')),
      softLimitPercent: described(
        'Percent of a cap at which answers carry the x-ccproxy-budget-warning header, ccproxy_budget_soft_limit_total counts and the resource shows BudgetWarning (1-100).',
        Type.Integer({ minimum: 1, maximum: 100, default: 80 }),
      ),
    },
    { additionalProperties: false },
  ),
);
const perMinute = (what: string) =>
  Type.Optional(
    described(
      `${what} per minute (a fixed UTC minute window, shared by every proxy replica).`,
      Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
    ),
  );
const rateLimitFields = () => ({
  requestsPerMinute: perMinute('Requests'),
  inputTokensPerMinute: perMinute('Input tokens (input + cache read + cache write)'),
  outputTokensPerMinute: perMinute('Output tokens'),
  concurrentStreams: Type.Optional(
    described(
      'Requests in flight at once, across every proxy replica.',
      Type.Integer({ minimum: 1, maximum: 100_000 }),
    ),
  ),
});
export const rateLimitsSpec = described(
  'Rate limits; an exceeded one answers 429 rate_limit_error with retry-after. Apply to every request but count_tokens.',
  Type.Object(
    {
      ...rateLimitFields(),
      bedrock: Type.Optional(
        described(
          'Limits on the requests Amazon Bedrock serves (failover, or routing BedrockOnly), on top of the ones above: protect the shared Bedrock quota. Usually lower.',
          Type.Object(rateLimitFields(), { additionalProperties: false }),
        ),
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

/**
 * The link from a person signed in to the admin with single sign-on to this one ProxyUser (the
 * developer role's self-service). The admin and team admins set it (GitOps or the admin); the
 * person cannot: it is matched against the claims of the issuer's signed ID token.
 */
export const identitySpec = described(
  "Who may manage this user's own access keys in the admin (self-service): the OIDC subject (the ID token's sub claim: stable and never reassigned by the issuer, so preferred) or else an email, which matches only when the issuer says email_verified: true. One of the two.",
  Type.Object(
    {
      subject: Type.Optional(
        described(
          "The ID token's sub claim of the admin's issuer (CCPROXY_ADMIN_OIDC_ISSUER_URL), exactly as the issuer sends it.",
          singleLine({ minLength: 1, maxLength: 255 }),
        ),
      ),
      email: Type.Optional(
        described(
          'An email the issuer vouches for (email_verified: true); compared case-insensitively. Used only when subject is absent.',
          Type.String({ minLength: 3, maxLength: 254, pattern: "^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+$" }),
        ),
      ),
    },
    { additionalProperties: false },
  ),
);

/** What a developer may do to their own keys, set by the team admin (self-service). */
export const selfServiceSpec = described(
  "Limits of this user's self-service in the admin (set by the team admin; without this field, self-service is off for the user). Key expiry is not offered: access keys do not expire.",
  Type.Object(
    {
      enabled: described(
        'Whether the user may list, issue, rotate and revoke their own access keys in the admin.',
        Type.Boolean({ default: true }),
      ),
      maxKeys: described(
        'Most unrevoked access keys the user may hold at once (1-100); issuing one more is refused.',
        Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
      ),
      routingModes: described(
        'Routing modes the user may choose for a key they issue (the first is the default).',
        Type.Array(routing, { minItems: 1, maxItems: 3, default: ['PlanWithFailover', 'PlanOnly'] }),
      ),
    },
    { additionalProperties: false },
  ),
);

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
      budget: Type.Optional(described("The user's budget, over all their AccessKeys.", budgetSpec)),
      rateLimits: Type.Optional(described("The user's rate limits, over all their AccessKeys.", rateLimitsSpec)),
      identity: Type.Optional(identitySpec),
      selfService: Type.Optional(selfServiceSpec),
    },
    { additionalProperties: false },
  ),
);

const bedrockModel = Type.String({ minLength: 1, maxLength: 2048, pattern: bedrockModelPattern });

/** The Bedrock operation family; no schema default, so "not set" stays visible for the precedence rule. */
export const bedrockApi = Type.Union([Type.Literal('Converse'), Type.Literal('InvokeModel')]);

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
                  Type.String({ minLength: 1, maxLength: 32, pattern: regionPattern }),
                ),
              ),
              api: Type.Optional(
                described(
                  "Bedrock API used: InvokeModel (the native Anthropic body) or Converse (translated). Precedence: this value when set, else the BedrockKey's spec.api, else InvokeModel.",
                  bedrockApi,
                ),
              ),
              model: Type.Optional(
                described(
                  'Default Bedrock model for models not in modelMap: a model id or inference profile id (e.g. global.anthropic.claude-sonnet-4-5-20250929-v1:0) or a Bedrock ARN (arn:aws:bedrock:<region>:<account>:inference-profile/…); an ARN must be in bedrock.region when that is set. Required with routing BedrockOnly unless modelMap has an entry.',
                  bedrockModel,
                ),
              ),
              // Keys are constrained by propertyNames (additionalProperties: false on a Record trips
              // typebox's Value.Default on a non-matching key); the CRD turns it into a CEL rule.
              modelMap: described(
                'Anthropic model name (as Claude Code sends it) → Bedrock model. Keys: letters, digits and -._:@ (e.g. claude-opus-4-5, claude-sonnet-4-5@20250929); values: the grammar of bedrock.model. At most 256 entries.',
                Type.Record(Type.String(), bedrockModel, {
                  default: {},
                  maxProperties: 256,
                  propertyNames: Type.String({ minLength: 1, maxLength: 256, pattern: anthropicModelPattern }),
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
      budget: Type.Optional(described("This key's own budget (the user's and the team's apply too).", budgetSpec)),
      rateLimits: Type.Optional(described("This key's own rate limits (the user's apply too).", rateLimitsSpec)),
    },
    { additionalProperties: false },
  ),
);

export const bedrockAuth = Type.Union([Type.Literal('ApiKey'), Type.Literal('AwsIdentity')], {
  default: 'ApiKey',
  description:
    "How the proxy authenticates to Bedrock for this key. ApiKey: the Bedrock API key in secretRef (Authorization: Bearer), stored envelope-encrypted. AwsIdentity: the proxy's own AWS identity, SigV4 with the AWS default credential chain (IRSA or EKS Pod Identity in the cluster, a profile or environment variables locally); no Secret, so secretRef must be absent, and the AccessKey needs bedrock.region.",
});

export const bedrockKeySpec = described(
  "How an AccessKey reaches Amazon Bedrock: a Bedrock API key read from a Secret (stored only envelope-encrypted), or the proxy's own AWS identity.",
  Type.Object(
    {
      accessKeyRef: localRef('AccessKey this Bedrock key serves (immutable)'),
      auth: bedrockAuth,
      api: Type.Optional(
        described(
          "Default Bedrock API for its AccessKey: InvokeModel (the native Anthropic body) or Converse (translated). The AccessKey's spec.bedrock.api wins when set; with neither set, InvokeModel.",
          bedrockApi,
        ),
      ),
      secretRef: Type.Optional(
        described(
          'The Secret (same namespace) that holds the Bedrock API key: required for auth ApiKey, not allowed for AwsIdentity.',
          Type.Object(
            {
              name: described('Name of the Secret.', dnsName),
              key: described(
                'Data key in the Secret that holds the Bedrock API key (a Secret data key: letters, digits, -, _ and .).',
                Type.String({ minLength: 1, maxLength: 253, pattern: secretKeyPattern, default: 'apiKey' }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
      ),
    },
    { additionalProperties: false },
  ),
);

/**
 * A team's budget. A team is a namespace: one TeamBudget per namespace, named `team` (the CRD
 * refuses any other name with a CEL rule on metadata.name, `teamBudgetNameRule`), so there is no
 * "which of two budgets wins" and a namespace's RBAC decides who may change it.
 */
export const teamBudgetName = 'team';
export const teamBudgetSpec = described(
  "A team's budget: the spend of every AccessKey of every ProxyUser in this namespace counts against it. One per namespace, named team.",
  Type.Object(
    {
      description: described(
        'Free text about the team or the budget (who owns it, the cost centre). Line feeds allowed, no other control characters.',
        multiLine({ maxLength: 2000, default: '' }),
      ),
      budget: described("The team's budget, over every key of every user of the namespace.", budgetSpec),
    },
    { additionalProperties: false },
  ),
);

/** The rule a schema cannot state: the one TeamBudget of a namespace is named `team`. */
export const teamBudgetNameRule = {
  rule: `self.metadata.name == '${teamBudgetName}'`,
  message: `a TeamBudget must be named ${teamBudgetName} (one per namespace: the namespace is the team)`,
};

const kindSchema = <K extends string, S extends TSchema>(apiVersion: string, kind: K, spec: S) =>
  Type.Object({ apiVersion: Type.Literal(apiVersion), kind: Type.Literal(kind), metadata, spec });

export const proxyUserSchema = kindSchema(`${group}/${version}`, 'ProxyUser', proxyUserSpec);
export const accessKeySchema = kindSchema(`${group}/${version}`, 'AccessKey', accessKeySpec);
export const bedrockKeySchema = kindSchema(`${group}/${version}`, 'BedrockKey', bedrockKeySpec);
export const teamBudgetSchema = kindSchema(`${group}/${version}`, 'TeamBudget', teamBudgetSpec);
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
export type TeamBudget = Static<typeof teamBudgetSchema>;
export type Secret = Static<typeof secretSchema>;
export type Resource = ProxyUser | AccessKey | BedrockKey | TeamBudget | Secret;

const schemas = {
  ProxyUser: proxyUserSchema,
  AccessKey: accessKeySchema,
  BedrockKey: bedrockKeySchema,
  TeamBudget: teamBudgetSchema,
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
  if (!Value.Check(schema, value))
    return {
      problems: [...Value.Errors(schema, value)].map((error) => `${error.instancePath || '/'}: ${error.message}`),
    };
  // The cross-field rules the API server's admission policy (and the BedrockKey CRD's rule) enforce, where there is none.
  const spec = (value as { spec?: unknown }).spec;
  const authProblem = kind === 'BedrockKey' ? bedrockKeyAuthProblem((value as BedrockKey).spec) : undefined;
  const nameProblem =
    kind === 'TeamBudget' && (value as TeamBudget).metadata.name !== teamBudgetName
      ? `/metadata/name: ${teamBudgetNameRule.message}`
      : undefined;
  const crossField = [
    ...crossFieldProblems(kind, spec),
    ...(authProblem === undefined ? [] : [`/spec: ${authProblem}`]),
    ...(nameProblem === undefined ? [] : [nameProblem]),
  ];
  return crossField.length === 0 ? { resource: value as Resource } : { problems: crossField };
}

/** The rule JSON Schema cannot state (the CRD states it as a CEL rule, `bedrockKeyAuthRule`). */
export const bedrockKeyAuthRule = {
  rule: "self.auth == 'AwsIdentity' ? !has(self.secretRef) : has(self.secretRef)",
  message: 'secretRef is required with auth ApiKey and not allowed with auth AwsIdentity',
};

function bedrockKeyAuthProblem(spec: BedrockKey['spec']): string | undefined {
  return (spec.auth === 'AwsIdentity') === (spec.secretRef !== undefined) ? bedrockKeyAuthRule.message : undefined;
}

/** Data of a Secret as strings: `data` is base64 (as Kubernetes stores it), `stringData` wins. */
export function secretData(secret: Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(secret.data ?? {}))
    out[key] = Buffer.from(value, 'base64').toString('utf8');
  return { ...out, ...secret.stringData };
}
