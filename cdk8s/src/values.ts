import { Type, type Static, type TSchema } from 'typebox';
import { adminFields, commonFields, localFields, operatorFields, proxyFields, type EnvFields } from '@ccproxy/core';

/**
 * The deployment settings, as one typebox schema: Helm's `values.schema.json` is generated from
 * it (`node cdk8s/src/generate-values-schema.ts`; a test fails on drift) and the cdk8s app
 * validates its props with it, so the chart and the cdk8s output accept exactly the same
 * settings. Each component's `config` is built from the environment fields its process
 * validates with (core/src/settings.ts), so a typo or an out-of-range value fails at
 * `helm install`, not at pod start.
 */

/**
 * Variables the deployment sets itself and users must not override: the ports the probes,
 * Services and NetworkPolicy use, the listen address, the data dir on its emptyDir, the pod
 * identity and Lease namespace the RBAC is bound to, and the values that have their own setting.
 */
const deploymentOwned = new Set([
  'PORT',
  'CCPROXY_ADMIN_PORT',
  'CCPROXY_OPERATOR_PORT',
  'CCPROXY_HOST',
  'CCPROXY_DATA_DIR',
  'CCPROXY_MANIFESTS_DIR',
  'POD_NAME',
  'CCPROXY_OPERATOR_NAMESPACE',
  'CCPROXY_WATCH_NAMESPACE',
  'CCPROXY_PUBLIC_URL',
  'CCPROXY_KMS_KEY_ID',
  'CCPROXY_WEBHOOK_CONFIGURATION',
  'CCPROXY_WEBHOOK_PORT',
  'CCPROXY_WEBHOOK_SERVICE',
  'CCPROXY_WEBHOOK_TLS_SECRET',
]);

/** The settable environment of one process: its non-secret fields (secrets only ever come from Secrets). */
export function configurableFields(fields: EnvFields): EnvFields {
  return Object.fromEntries(
    Object.entries(fields).filter(([, field]) => !field.secret && !deploymentOwned.has(field.env)),
  );
}

/** What each process reads (the field sets its command loads), minus what the deployment owns. */
export const componentFields = {
  operator: configurableFields({
    logLevel: commonFields.logLevel,
    rotationGraceSeconds: localFields.rotationGraceSeconds,
    breakerOpenMs: proxyFields.breakerOpenMs,
    ...operatorFields,
  }),
  proxy: configurableFields({ logLevel: commonFields.logLevel, ...proxyFields }),
  admin: configurableFields({ logLevel: commonFields.logLevel, ...adminFields }),
} as const;

/** `config:` of a component: env name → typed value, every key optional, unknown names rejected. */
function configSchema(fields: EnvFields) {
  const properties: Record<string, TSchema> = {};
  for (const field of Object.values(fields))
    properties[field.env] = Type.Optional({ ...field.schema, description: field.description });
  return Type.Object(properties, {
    additionalProperties: false,
    description: 'environment of the process, validated as the process validates it',
  });
}

/**
 * aws.secretIds: which Secrets Manager id variable (core/src/runtime-secrets.ts) each key sets, and
 * the variable (and Secret key) it replaces.
 */
export const runtimeSecretVariables = {
  database: { idVariable: 'CCPROXY_DATABASE_SECRET_ID', variable: 'DATABASE_URL' },
  keyHasher: { idVariable: 'CCPROXY_KEY_HASHER_SECRET_ID', variable: 'CCPROXY_KEY_HASHER_SECRET' },
  planApiKey: { idVariable: 'CCPROXY_PLAN_API_KEY_SECRET_ID', variable: 'CCPROXY_PLAN_API_KEY' },
  adminPassword: { idVariable: 'CCPROXY_ADMIN_PASSWORD_SECRET_ID', variable: 'CCPROXY_ADMIN_PASSWORD_HASH' },
  adminSessionSecret: { idVariable: 'CCPROXY_ADMIN_SESSION_SECRET_ID', variable: 'CCPROXY_ADMIN_SESSION_SECRET' },
  adminOidcClientSecret: {
    idVariable: 'CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID',
    variable: 'CCPROXY_ADMIN_OIDC_CLIENT_SECRET',
  },
} as const;
export type SecretIdKey = keyof typeof runtimeSecretVariables;
const secretId = (key: SecretIdKey) =>
  Type.String({
    pattern: '^[^\\s]*$',
    maxLength: 2048,
    description: `Secrets Manager name or ARN read at start as ${runtimeSecretVariables[key].idVariable}; empty means the existing Secret key`,
  });

const quantity = Type.Union([Type.String({ pattern: '^[0-9.]+[a-zA-Z]*$' }), Type.Number({ minimum: 0 })]);
const resourceList = Type.Object(
  { cpu: Type.Optional(quantity), memory: Type.Optional(quantity) },
  { additionalProperties: false },
);
const resources = Type.Object({ requests: resourceList, limits: resourceList }, { additionalProperties: false });
const stringMap = Type.Record(Type.String(), Type.String());
const serviceAccount = Type.Object(
  { annotations: stringMap },
  {
    additionalProperties: false,
    description: 'e.g. eks.amazonaws.com/role-arn for IRSA (EKS Pod Identity needs none)',
  },
);

const component = <Extra extends Record<string, TSchema>>(fields: EnvFields, extra: Extra) =>
  Type.Object(
    { config: configSchema(fields), resources, serviceAccount, podAnnotations: stringMap, ...extra },
    { additionalProperties: false },
  );

const dnsLabel = Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' });
const secretName = Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$' });

export const valuesSchema = Type.Object(
  {
    fullnameOverride: Type.String({
      maxLength: 40,
      description: 'prefix of every object name; empty means the release name',
    }),
    image: Type.Object(
      {
        repository: Type.String({ minLength: 1 }),
        tag: Type.String({ description: 'empty means the chart appVersion' }),
        digest: Type.String({
          pattern: '^(sha256:[a-f0-9]{64})?$',
          description: 'sha256:… pins the image by digest and wins over tag; empty means by tag',
        }),
        pullPolicy: Type.Union([Type.Literal('Always'), Type.Literal('IfNotPresent'), Type.Literal('Never')]),
      },
      { additionalProperties: false },
    ),
    imagePullSecrets: Type.Array(Type.Object({ name: secretName }, { additionalProperties: false })),
    existingSecret: Type.Object(
      // Keys are named after the variables they set, so External Secrets templates stay obvious.
      { name: secretName },
      {
        additionalProperties: false,
        description:
          'existing Secret with DATABASE_URL, CCPROXY_KEY_HASHER_SECRET, CCPROXY_KMS_KEY_ID and optionally CCPROXY_PLAN_API_KEY (keys named as the variables)',
      },
    ),
    existingAdminSecret: Type.Object(
      { name: secretName },
      {
        additionalProperties: false,
        description:
          'existing Secret with CCPROXY_ADMIN_PASSWORD_HASH and CCPROXY_ADMIN_SESSION_SECRET (and optionally CCPROXY_ADMIN_OIDC_CLIENT_SECRET)',
      },
    ),
    publicUrl: Type.String({
      pattern: '^(https?://[^\\s]+)?$',
      description: 'base URL users reach (CCPROXY_PUBLIC_URL), written into generated access-key Secrets',
    }),
    aws: Type.Object(
      {
        region: Type.String({ pattern: '^([a-z]{2}(-[a-z]+)+-[0-9])?$' }),
        kmsKeyId: Type.String({
          pattern: '^[^\\s]*$',
          description: 'CCPROXY_KMS_KEY_ID (ARN, alias or key id; not a secret); empty means the existing Secret key',
        }),
        secretIds: Type.Object(
          {
            database: secretId('database'),
            keyHasher: secretId('keyHasher'),
            planApiKey: secretId('planApiKey'),
            adminPassword: secretId('adminPassword'),
            adminSessionSecret: secretId('adminSessionSecret'),
            adminOidcClientSecret: secretId('adminOidcClientSecret'),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    operator: component(componentFields.operator, {
      replicas: Type.Integer({ minimum: 1, maximum: 5, description: 'one leader, the rest standbys' }),
      watchNamespace: Type.Union([Type.Literal(''), dnsLabel], {
        description: 'watch one namespace (RBAC becomes a Role there); empty means all',
      }),
      webhook: Type.Object(
        {
          enabled: Type.Boolean({
            description:
              'serve the mutating admission webhook (finalizers and owner references written at create; the operator makes its TLS Secret and sets the caBundle); off: no MutatingWebhookConfiguration, the reconcile patches them',
          }),
        },
        { additionalProperties: false },
      ),
    }),
    proxy: component(componentFields.proxy, {
      replicas: Type.Integer({ minimum: 1, description: 'used when autoscaling is off' }),
      terminationGracePeriodSeconds: Type.Integer({
        minimum: 30,
        maximum: 3600,
        description: 'longer than the longest stream, so a rollout never cuts one',
      }),
      autoscaling: Type.Object(
        {
          enabled: Type.Boolean(),
          minReplicas: Type.Integer({ minimum: 1 }),
          maxReplicas: Type.Integer({ minimum: 1 }),
          targetCPUUtilizationPercentage: Type.Integer({ minimum: 1, maximum: 100 }),
        },
        { additionalProperties: false },
      ),
      podDisruptionBudget: Type.Object({ minAvailable: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
    }),
    admin: component(componentFields.admin, {
      enabled: Type.Boolean(),
      replicas: Type.Integer({ minimum: 1 }),
    }),
    ingress: Type.Object(
      {
        enabled: Type.Boolean(),
        className: Type.String(),
        host: Type.String({
          description: 'host of the proxy rule (empty: any host); only /ak/… is routed to the proxy, never /metrics',
        }),
        adminHost: Type.String({
          description:
            'host that serves the admin UI and API (its own host: the UI lives at /); empty keeps the admin off the Ingress',
        }),
        annotations: stringMap,
        tlsSecretName: Type.String({
          description:
            'TLS Secret for non-ALB controllers; with the ALB, set alb.ingress.kubernetes.io/certificate-arn instead',
        }),
        adminSourceRanges: Type.Array(Type.String({ pattern: '^[0-9a-fA-F:.]+/[0-9]{1,3}$' }), {
          description:
            'CIDRs allowed to reach adminHost (a per-rule ALB source-ip condition); required when adminHost is set',
        }),
      },
      { additionalProperties: false },
    ),
    metrics: Type.Object(
      {
        serviceMonitor: Type.Object(
          { enabled: Type.Boolean(), interval: Type.String({ pattern: '^[0-9]+[smh]$' }), labels: stringMap },
          { additionalProperties: false },
        ),
        prometheusRule: Type.Object({ enabled: Type.Boolean(), labels: stringMap }, { additionalProperties: false }),
        grafanaDashboard: Type.Object(
          { enabled: Type.Boolean(), labels: stringMap },
          { additionalProperties: false, description: "labels: what Grafana's dashboard sidecar selects on" },
        ),
      },
      { additionalProperties: false },
    ),
    networkPolicy: Type.Object(
      { enabled: Type.Boolean(), ingressNamespaceLabels: stringMap },
      {
        additionalProperties: false,
        description:
          "ingressNamespaceLabels: namespaces (e.g. the ingress controller's) allowed to reach proxy and admin; empty means any",
      },
    ),
  },
  { additionalProperties: false },
);

export type ChartValues = Static<typeof valuesSchema>;

/** values.schema.json: the schema above as plain JSON Schema (draft-07, which Helm validates with). */
export function renderValuesSchema(): string {
  const schema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'claude-code-proxy chart values',
    ...(JSON.parse(JSON.stringify(valuesSchema)) as object),
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
