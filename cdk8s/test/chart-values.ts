import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminFields, commonFields, operatorFields, proxyFields } from '@ccproxy/core';
import { KUBERNETES_VERSION, runHelm } from '@ccproxy/test-harness';
import { parseManifests, type Manifest } from './dry-run.ts';

export const chartDir = fileURLToPath(new URL('../../charts/claude-code-proxy/', import.meta.url));

/** `helm template` (release `ccp`) as the test API server's version would see it, CRDs included. */
export async function helmTemplate(values: object, namespace = 'ccproxy'): Promise<Manifest[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ccproxy-values-'));
  try {
    const file = join(dir, 'values.json');
    await writeFile(file, JSON.stringify(values)); // JSON is YAML, and exact about types
    const { stdout } = await runHelm([
      'template',
      'ccp',
      chartDir,
      '--namespace',
      namespace,
      '--kube-version',
      KUBERNETES_VERSION,
      '--include-crds',
      '-f',
      file,
    ]);
    return parseManifests(stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Values sets the chart is linted, rendered and dry-run applied with (merged over values.yaml by Helm). */
export const valuesSets = {
  defaults: {},
  /** Every optional feature on: Ingress with the /admin restriction, monitoring, a watched namespace, typed config. */
  everything: {
    fullnameOverride: 'ccp',
    publicUrl: 'https://ccproxy.example.com',
    aws: { region: 'ap-northeast-2' },
    operator: {
      watchNamespace: 'team-a',
      config: { CCPROXY_RESYNC_SECONDS: 120, CCPROXY_LOG_LEVEL: 'debug' },
      serviceAccount: {
        annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/ccproxy-operator' },
      },
    },
    proxy: {
      config: { CCPROXY_BREAKER_OPEN_MS: 1_800_000, CCPROXY_METER_PLAN: false, CCPROXY_CLOUDWATCH_EMF: true },
      serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/ccproxy-proxy' } },
    },
    admin: { config: { CCPROXY_ADMIN_SESSION_SECONDS: 7200 } },
    ingress: {
      enabled: true,
      host: 'ccproxy.example.com',
      adminHost: 'ccproxy-admin.example.com',
      tlsSecretName: 'ccproxy-tls',
      adminSourceRanges: ['10.0.0.0/8', '192.168.0.0/16'],
    },
    metrics: {
      serviceMonitor: { enabled: true },
      prometheusRule: { enabled: true },
      grafanaDashboard: { enabled: true },
    },
    networkPolicy: { ingressNamespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
  },
  /**
   * As the CDK estate installs it: every secret by Secrets Manager id, the KMS key as a value, the
   * image by digest, no default Plan key: no Kubernetes Secret is referenced at all.
   */
  secretsManager: {
    image: { digest: `sha256:${'ab'.repeat(32)}` },
    aws: {
      region: 'ap-northeast-2',
      kmsKeyId: 'arn:aws:kms:ap-northeast-2:123456789012:key/0b7d3a6c-1111-2222-3333-444455556666',
      secretIds: {
        database: 'arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:ccproxy/database-AbCdEf',
        keyHasher: 'ccproxy/key-hasher-secret',
        adminPassword: 'ccproxy/admin-password',
        adminSessionSecret: 'ccproxy/admin-session-secret',
        adminOidcClientSecret: 'ccproxy/admin-oidc-client-secret',
      },
    },
  },
  /** The smallest install: no admin, no admission webhook, fixed proxy replicas, no NetworkPolicy. */
  minimal: {
    proxy: { autoscaling: { enabled: false }, replicas: 1, podDisruptionBudget: { minAvailable: 0 } },
    operator: { replicas: 1, webhook: { enabled: false } },
    admin: { enabled: false },
    networkPolicy: { enabled: false },
  },
} as const;

/** Variables whose values are credentials: they may only ever come from a Secret. */
export const secretVariables = new Set([
  ...Object.values({ ...commonFields, ...proxyFields, ...adminFields, ...operatorFields })
    .filter((field) => field.secret)
    .map((field) => field.env),
  'CCPROXY_KMS_KEY_ID',
]);

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } };
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: EnvVar[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    runAsNonRoot?: boolean;
    capabilities?: { drop?: string[] };
  };
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  lifecycle?: unknown;
}

export interface PodSpec {
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes?: Array<{ name: string; emptyDir?: object }>;
  topologySpreadConstraints?: Array<{ topologyKey: string }>;
}

export const podSpec = (deployment: Manifest) => (deployment.spec as { template: { spec: PodSpec } }).template.spec;

export function find(objects: readonly Manifest[], kind: string, name: string): Manifest {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (found === undefined)
    throw new Error(`no ${kind}/${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}
