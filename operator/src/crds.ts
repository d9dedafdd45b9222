import { Document, visit } from 'yaml';
import type { TSchema } from 'typebox';
import { admissionPolicy } from './admission.ts';
import {
  accessKeySpec,
  bedrockKeyAuthRule,
  bedrockKeySpec,
  group,
  proxyUserSpec,
  teamBudgetNameRule,
  teamBudgetSpec,
  version,
} from './resources.ts';

/**
 * CustomResourceDefinitions rendered from the same typebox schemas the code validates with, so
 * the API server and the operator can never disagree about a resource's shape. `crds/*.yaml` is
 * generated from here (`npm run crds`); a test fails when the committed files drift.
 */
type JsonSchema = Record<string, unknown>;

/** typebox JSON Schema → Kubernetes structural OpenAPI v3 (enums for literal unions, maps as additionalProperties, defaulted fields not required). */
export function toStructural(schema: TSchema | JsonSchema): JsonSchema {
  const source = schema as JsonSchema;
  const anyOf = source.anyOf as JsonSchema[] | undefined;
  if (anyOf !== undefined && anyOf.every((option) => 'const' in option)) {
    return withKept({ type: 'string', enum: anyOf.map((option) => option.const) }, source, ['default', 'description']);
  }
  if ('const' in source) return { type: typeof source.const, enum: [source.const] };
  if (source.type === 'object') return objectSchema(source);
  if (source.type === 'array')
    return withKept({ type: 'array', items: toStructural(source.items as JsonSchema) }, source, [
      'minItems',
      'maxItems',
      'default',
      'description',
    ]);
  return withKept({ type: source.type }, source, [
    'minLength',
    'maxLength',
    'pattern',
    'minimum',
    'maximum',
    'default',
    'description',
    'format',
  ]);
}

function objectSchema(source: JsonSchema): JsonSchema {
  const out: JsonSchema = withKept({ type: 'object' }, source, ['default', 'description']);
  const properties = source.properties as Record<string, JsonSchema> | undefined;
  if (properties !== undefined) {
    out.properties = Object.fromEntries(
      Object.entries(properties).map(([name, property]) => [name, toStructural(property)]),
    );
    const required = ((source.required as string[] | undefined) ?? []).filter(
      (name) => properties[name]?.default === undefined,
    );
    if (required.length > 0) out.required = required;
  }
  const patterns = source.patternProperties as Record<string, JsonSchema> | undefined;
  if (patterns !== undefined) {
    out.additionalProperties = toStructural(Object.values(patterns)[0] as JsonSchema);
    if (source.maxProperties !== undefined) out.maxProperties = source.maxProperties;
    const keys = source.propertyNames as { minLength?: number; maxLength?: number; pattern?: string } | undefined;
    // A structural schema cannot constrain map keys (no propertyNames); a CEL rule does (RE2, the same pattern).
    if (keys?.pattern !== undefined)
      out['x-kubernetes-validations'] = [
        {
          rule: `self.all(k, size(k) >= ${keys.minLength ?? 0} && size(k) <= ${keys.maxLength ?? 253} && k.matches(r'${keys.pattern}'))`,
          message: `every key must be ${keys.minLength ?? 0} to ${keys.maxLength ?? 253} characters matching ${keys.pattern}`,
        },
      ];
  }
  return out;
}

function withKept(target: JsonSchema, source: JsonSchema, keys: string[]): JsonSchema {
  for (const key of keys) if (source[key] !== undefined) target[key] = source[key];
  return target;
}

const condition = {
  type: 'object',
  description: 'One observation of the resource (Kubernetes conventions; kstatus, Argo CD and Flux read these).',
  required: ['type', 'status'],
  properties: {
    type: {
      type: 'string',
      maxLength: 316,
      description: 'Ready (it works), Reconciling (work in progress) or Stalled (a human must act).',
    },
    status: { type: 'string', enum: ['True', 'False', 'Unknown'], description: 'Whether the condition holds.' },
    reason: {
      type: 'string',
      maxLength: 1024,
      description: 'Why, in one CamelCase word (e.g. SecretConflict, UserNotFound, DependencyUnavailable).',
    },
    message: { type: 'string', maxLength: 32768, description: 'Why, in words a person can act on.' },
    observedGeneration: { type: 'integer', description: 'The spec generation this condition was computed from.' },
    lastTransitionTime: {
      type: 'string',
      format: 'date-time',
      description: 'When the status last changed (not when it was last checked).',
    },
  },
};

const status = (extra: Record<string, JsonSchema>): JsonSchema => ({
  type: 'object',
  description: 'What the operator observed; written by the operator only.',
  properties: {
    observedGeneration: { type: 'integer', description: 'The spec generation the operator last acted on.' },
    conditions: {
      type: 'array',
      description: 'Ready, Reconciling and Stalled, with reasons and messages.',
      items: condition,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    },
    ...extra,
  },
});

const periodStatus = (period: string): JsonSchema => ({
  type: 'object',
  description: `Spend in the current ${period} (UTC) against its caps.`,
  properties: {
    spentUsd: {
      type: 'string',
      maxLength: 32,
      description: 'USD spent so far (priced stored usage of every proxy replica).',
    },
    limitUsd: { type: 'string', maxLength: 32, description: 'The USD cap.' },
    spentTokens: { type: 'integer', description: 'Tokens used so far (input + output + cache read + cache write).' },
    limitTokens: { type: 'integer', description: 'The token cap.' },
    percent: { type: 'integer', description: 'The larger of the USD and token shares used, in percent.' },
    resetsAt: {
      type: 'string',
      format: 'date-time',
      description: 'When the period ends and the spend starts again from zero.',
    },
  },
});
/** `status.budget` (operator/src/reconcile/budget-status.ts), rewritten on every reconcile and resync. */
const budgetStatusSchema: JsonSchema = {
  type: 'object',
  description: 'Spend against spec.budget, as of the last reconcile or resync.',
  properties: {
    state: {
      type: 'string',
      maxLength: 16,
      description: 'Ok, Warning (past spec.budget.softLimitPercent) or Exhausted (a cap reached: requests get 402).',
    },
    day: periodStatus('day'),
    month: periodStatus('month'),
  },
};

const immutable = (field: string) => ({ rule: 'self == oldSelf', message: `${field} is immutable` });
const readyColumn = { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' };
/** "Why not": the Ready condition's reason, and its message with `-o wide`. */
const reasonColumn = { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' };
const messageColumn = {
  name: 'Message',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].message',
  priority: 1,
};
const ageColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

interface KindSpec {
  kind: string;
  plural: string;
  shortNames: string[];
  spec: JsonSchema;
  status: JsonSchema;
  columns: Array<{ name: string; type: string; jsonPath: string; priority?: number }>;
  /** CEL rules on the whole object (the only place metadata.name is visible to CEL). */
  rootRules?: Array<{ rule: string; message: string }>;
}

const kinds: KindSpec[] = [
  {
    kind: 'ProxyUser',
    plural: 'proxyusers',
    shortNames: ['pu'],
    spec: toStructural(proxyUserSpec),
    status: status({ budget: budgetStatusSchema }),
    columns: [
      { name: 'Display Name', type: 'string', jsonPath: '.spec.displayName' },
      { name: 'Suspended', type: 'boolean', jsonPath: '.spec.suspended' },
      readyColumn,
      reasonColumn,
      ageColumn,
      messageColumn,
    ],
  },
  {
    kind: 'AccessKey',
    plural: 'accesskeys',
    shortNames: ['ak'],
    spec: withRule(toStructural(accessKeySpec), 'userRef', immutable('userRef')),
    status: status({
      budget: budgetStatusSchema,
      keyPrefix: {
        type: 'string',
        maxLength: 64,
        description: 'The first characters of the key in use, to tell keys apart (never the key).',
      },
      breaker: {
        type: 'object',
        description: "The key's circuit breaker, as the proxies report it.",
        properties: {
          state: {
            type: 'string',
            maxLength: 32,
            description:
              'closed (Plan), failing (Plan failures counted, not yet open), open (requests go to Bedrock) or half-open (one trial request to Plan).',
          },
          lastFailoverAt: {
            type: 'string',
            format: 'date-time',
            description: 'When a request of this key last failed over to Bedrock.',
          },
        },
      },
    }),
    columns: [
      { name: 'User', type: 'string', jsonPath: '.spec.userRef.name' },
      { name: 'Routing', type: 'string', jsonPath: '.spec.routing' },
      { name: 'Bedrock Model', type: 'string', jsonPath: '.spec.bedrock.model', priority: 1 },
      readyColumn,
      reasonColumn,
      { name: 'Key', type: 'string', jsonPath: '.status.keyPrefix' },
      { name: 'Breaker', type: 'string', jsonPath: '.status.breaker.state' },
      ageColumn,
      messageColumn,
    ],
  },
  {
    kind: 'BedrockKey',
    plural: 'bedrockkeys',
    shortNames: ['bk'],
    spec: {
      ...withRule(toStructural(bedrockKeySpec), 'accessKeyRef', immutable('accessKeyRef')),
      'x-kubernetes-validations': [bedrockKeyAuthRule],
    },
    status: status({
      fingerprint: {
        type: 'string',
        maxLength: 128,
        description: 'A fingerprint of the Bedrock API key in use (changes when the key does; never the key).',
      },
    }),
    columns: [
      { name: 'Access Key', type: 'string', jsonPath: '.spec.accessKeyRef.name' },
      { name: 'Auth', type: 'string', jsonPath: '.spec.auth' },
      { name: 'Secret', type: 'string', jsonPath: '.spec.secretRef.name' },
      readyColumn,
      reasonColumn,
      { name: 'Fingerprint', type: 'string', jsonPath: '.status.fingerprint', priority: 1 },
      ageColumn,
      messageColumn,
    ],
  },
  {
    kind: 'TeamBudget',
    plural: 'teambudgets',
    shortNames: ['tb'],
    spec: toStructural(teamBudgetSpec),
    status: status({ budget: budgetStatusSchema }),
    columns: [
      { name: 'State', type: 'string', jsonPath: '.status.budget.state' },
      { name: 'Day %', type: 'integer', jsonPath: '.status.budget.day.percent' },
      { name: 'Month %', type: 'integer', jsonPath: '.status.budget.month.percent' },
      readyColumn,
      reasonColumn,
      ageColumn,
      messageColumn,
    ],
    rootRules: [teamBudgetNameRule],
  },
];

function withRule(spec: JsonSchema, property: string, rule: { rule: string; message: string }): JsonSchema {
  const properties = spec.properties as Record<string, JsonSchema>;
  properties[property] = { ...properties[property], 'x-kubernetes-validations': [rule] };
  return spec;
}

export function customResourceDefinition(kind: KindSpec): JsonSchema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${kind.plural}.${group}` },
    spec: {
      group,
      names: {
        kind: kind.kind,
        listKind: `${kind.kind}List`,
        plural: kind.plural,
        singular: kind.kind.toLowerCase(),
        shortNames: kind.shortNames,
        categories: ['ccproxy'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: kind.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: kind.spec.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'ccproxy.io/v1alpha1' },
                kind: { type: 'string', description: kind.kind },
                // The API server refuses anything but `type` here (ObjectMeta documents itself).
                metadata: { type: 'object' },
                spec: kind.spec,
                status: kind.status,
              },
              ...(kind.rootRules === undefined ? {} : { 'x-kubernetes-validations': kind.rootRules }),
            },
          },
        },
      ],
    },
  };
}

const header = '# GENERATED by `npm run crds` from operator/src/resources.ts — do not edit.\n';

/** File name → YAML for every CRD. */
export function renderCrds(): Record<string, string> {
  return Object.fromEntries(
    kinds.map((kind) => [`${kind.plural}.${group}.yaml`, header + toYaml(customResourceDefinition(kind))]),
  );
}

/**
 * The admission policy of the cross-field rules (admission.ts), installed with the CRDs (it
 * needs them: its CEL is type-checked against their schemas) from the same folder.
 */
export const admissionPolicyFile = `admission-policy.${group}.yaml`;
export function renderAdmissionPolicy(): string {
  const [policy, binding] = admissionPolicy();
  return `${header.replace('resources.ts', 'admission.ts')}${toYaml(policy)}---\n${toYaml(binding)}`;
}

/**
 * YAML text of `value`. A string holding U+2028/U+2029 (the patterns refuse them) is written
 * double-quoted with the characters escaped: to YAML 1.1 readers (the API server's Go YAML, many
 * editors) they are line breaks, and a plain scalar holding them does not parse (seen: the API
 * server refused the CRDs with "did not find expected key").
 */
function toYaml(value: unknown): string {
  const doc = new Document(value);
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && /[\u2028\u2029]/.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString().replaceAll('\u2028', '\\u2028').replaceAll('\u2029', '\\u2029');
}
