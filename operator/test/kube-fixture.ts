import { readdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  ApiException,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { inject } from 'vitest';
import { createKeyHasher, createLogger, KmsKeyWrapper, type Database } from '@ccproxy/core';
import {
  adminRules,
  leaderElectionRules,
  operatorRules,
  webhookRules,
  webhookSecretRules,
  type PolicyRule,
} from '@ccproxy/operator';
import { openMigratedDatabase } from '@ccproxy/test-harness';

export const hasherSecret = 'operator-test-hasher-secret-0123456789';
export const hashKey = createKeyHasher(hasherSecret);
export const silent = createLogger({ level: 'silent' });
export const leaseNamespace = 'ccproxy-system';
const crdsDir = new URL('../../crds/', import.meta.url);

export function kubeConfig(yaml: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromString(yaml);
  return config;
}

export const adminConfig = () => kubeConfig(inject('kubeconfig'));
export const operatorConfig = () => kubeConfig(inject('operatorKubeconfig'));
/** The admin facade's identity: bound to nothing but `adminRules` (bindFacadeRbac). */
export const facadeConfig = () => kubeConfig(inject('facadeKubeconfig'));

/** Parses multi-document YAML into objects, each moved into `namespace` when given. */
export function objectsOf(yaml: string, namespace?: string): KubernetesObject[] {
  return parseAllDocuments(yaml)
    .map((doc) => doc.toJS() as KubernetesObject)
    .filter((o) => o !== null)
    .map((o) => (namespace === undefined ? o : { ...o, metadata: { ...o.metadata, namespace } }));
}

const apiVersionOf = (kind: string) =>
  ({ Secret: 'v1', Lease: 'coordination.k8s.io/v1' })[kind] ?? 'ccproxy.io/v1alpha1';
const plural = (kind: string) =>
  (
    ({
      ProxyUser: 'proxyusers',
      AccessKey: 'accesskeys',
      BedrockKey: 'bedrockkeys',
      ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
      MutatingWebhookConfiguration: 'mutatingwebhookconfigurations',
    }) as Record<string, string>
  )[kind] ?? `${kind.toLowerCase()}s`;

/** The REST path of an object (the kinds tests use). */
function pathOf(object: KubernetesObject): string {
  const [groupName, version] = (object.apiVersion ?? '').includes('/')
    ? (object.apiVersion ?? '').split('/')
    : ['', object.apiVersion];
  const base = groupName === '' ? `/api/${version}` : `/apis/${groupName}/${version}`;
  const { name = '', namespace } = object.metadata ?? {};
  const clusterScoped = [
    'Namespace',
    'CustomResourceDefinition',
    'ClusterRole',
    'ClusterRoleBinding',
    'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding',
    'MutatingWebhookConfiguration',
  ].includes(object.kind ?? '');
  const kindPath = plural(object.kind ?? '');
  return `${base}${clusterScoped ? '' : `/namespaces/${namespace}`}/${kindPath}/${name}`;
}

/** A raw request with the kubeconfig's credentials; the body goes on the wire as given. */
export async function kubeRequest(
  config: KubeConfig,
  method: string,
  path: string,
  body?: string,
  contentType = 'application/json',
): Promise<{ status: number; body: string }> {
  const options: https.RequestOptions = {
    method,
    headers: { 'content-type': contentType, accept: 'application/json' },
  };
  await config.applyToHTTPSOptions(options);
  const url = new URL(path, config.getCurrentCluster()?.server);
  return new Promise((resolve, reject) => {
    const request = https.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * `kubectl apply --server-side` for tests. Raw JSON on the wire: client-node's typed serializer
 * would drop fields it spells differently (`enum`, `default`, `x-kubernetes-validations` in CRDs).
 * Throws with the API server's message when it refuses an object.
 */
export async function apply(config: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  for (const object of objects) {
    const response = await kubeRequest(
      config,
      'PATCH',
      `${pathOf(object)}?fieldManager=ccproxy-test&force=true`,
      JSON.stringify(object),
      'application/apply-patch+yaml',
    );
    if (response.status >= 300)
      throw Object.assign(new Error(`apply ${object.kind}/${object.metadata?.name}: ${response.status}`), {
        status: response.status,
        body: response.body,
      });
  }
}

export async function ensureNamespace(config: KubeConfig, name: string): Promise<void> {
  await apply(config, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }]);
}

/**
 * Installs the committed CRDs and the admission policy beside them (idempotent, several test
 * files share the API server) and waits until the CRDs are Established.
 */
export async function installCrds(config: KubeConfig): Promise<void> {
  const files = (await readdir(crdsDir)).filter((file) => file.endsWith('.yaml'));
  const crds = (await Promise.all(files.map((file) => readFile(new URL(file, crdsDir), 'utf8')))).flatMap((yaml) =>
    objectsOf(yaml),
  );
  // CRDs first: the policy's CEL is type-checked against them.
  const isCrd = (object: KubernetesObject) => object.kind === 'CustomResourceDefinition';
  await apply(config, [...crds.filter(isCrd), ...crds.filter((object) => !isCrd(object))]);
  const api = KubernetesObjectApi.makeApiClient(config);
  for (const crd of crds.filter(isCrd)) {
    for (let i = 0; ; i += 1) {
      const live = (await api.read({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: crd.metadata?.name ?? '' },
      })) as { status?: { conditions?: Array<{ type: string; status: string }> } };
      if (live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 100) throw new Error(`CRD ${crd.metadata?.name} not established`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** A Role (in `namespace`) or ClusterRole named `name` with `rules`, bound to the test identity `user`. */
function roleFor(user: string, name: string, rules: readonly PolicyRule[], namespace?: string): KubernetesObject[] {
  const kind = namespace === undefined ? 'ClusterRole' : 'Role';
  const metadata = namespace === undefined ? { name } : { name, namespace };
  return [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind, metadata, rules } as KubernetesObject,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: `${kind}Binding`,
      metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: user }],
    } as KubernetesObject,
  ];
}

/** Grants the `ccproxy-operator` test identity exactly the operator's RBAC rules, nothing else. */
export async function bindOperatorRbac(config: KubeConfig): Promise<void> {
  await ensureNamespace(config, leaseNamespace);
  await apply(config, [
    ...roleFor('ccproxy-operator', 'ccproxy-operator', operatorRules),
    ...roleFor('ccproxy-operator', 'ccproxy-leader-election', leaderElectionRules, leaseNamespace),
  ]);
}

/**
 * Grants the `ccproxy-operator` test identity the admission webhook's rules for the configuration
 * and TLS Secret of these names (its TLS Secret beside the Lease).
 */
export async function bindWebhookRbac(
  config: KubeConfig,
  configurationName: string,
  secretName: string,
): Promise<void> {
  await ensureNamespace(config, leaseNamespace);
  await apply(config, [
    ...roleFor('ccproxy-operator', `ccproxy-webhook-${configurationName}`, webhookRules(configurationName)),
    ...roleFor('ccproxy-operator', `ccproxy-webhook-${secretName}`, webhookSecretRules(secretName), leaseNamespace),
  ]);
}

/** Grants the `ccproxy-admin` test identity exactly the admin facade's RBAC rules, nothing else. */
export async function bindFacadeRbac(config: KubeConfig): Promise<void> {
  await apply(config, roleFor('ccproxy-admin', 'ccproxy-admin', adminRules));
}

export function openTestDatabase(url?: string): Promise<Database> {
  return openMigratedDatabase(url === undefined ? { adminUrl: inject('postgresUrl'), prefix: 'operator' } : { url }, {
    reconnectDelayMs: 100,
  });
}

export const awsEnv = () => ({
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL_KMS: inject('motoUrl'),
});

export function kmsClient(): KMSClient {
  return new KMSClient({
    region: 'us-east-1',
    endpoint: inject('motoUrl'),
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
}

/** A fresh KMS key on moto, and a wrapper for it. */
export async function kmsKey(): Promise<{ keyId: string; wrapper: KmsKeyWrapper }> {
  const client = kmsClient();
  const out = await client.send(new CreateKeyCommand({ Description: 'ccproxy test key' }));
  const keyId = out.KeyMetadata?.KeyId ?? '';
  return { keyId, wrapper: new KmsKeyWrapper({ keyId, client }) };
}

export const uniqueName = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

interface Status {
  observedGeneration?: number;
  conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  [field: string]: unknown;
}

export async function readObject(
  config: KubeConfig,
  kind: string,
  namespace: string,
  name: string,
): Promise<(KubernetesObject & { status?: Status; spec?: Record<string, unknown> }) | undefined> {
  try {
    return await KubernetesObjectApi.makeApiClient(config).read({
      apiVersion: apiVersionOf(kind),
      kind,
      metadata: { name, namespace },
    });
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

export function condition(
  object: { status?: Status } | undefined,
  type: string,
): { status: string; reason: string; message: string } | undefined {
  return object?.status?.conditions?.find((c) => c.type === type);
}

/** A merge patch on one object (spec edits, Secret data). */
export async function mergePatch(config: KubeConfig, object: KubernetesObject): Promise<void> {
  await KubernetesObjectApi.makeApiClient(config).patch(
    object,
    undefined,
    undefined,
    'test',
    undefined,
    PatchStrategy.MergePatch,
  );
}

/**
 * `kubectl delete`, with `--cascade` as `propagationPolicy` (Background by default): what the
 * garbage collector does with the object's dependents (Orphan strips their owner references).
 */
export async function deleteObject(
  config: KubeConfig,
  kind: string,
  namespace: string,
  name: string,
  propagationPolicy: 'Background' | 'Foreground' | 'Orphan' = 'Background',
): Promise<void> {
  // As a query parameter: the API server did not read it from a chunked DELETE body.
  const path = `${pathOf({ apiVersion: apiVersionOf(kind), kind, metadata: { name, namespace } })}?propagationPolicy=${propagationPolicy}`;
  const response = await kubeRequest(config, 'DELETE', path);
  if (response.status >= 300)
    throw Object.assign(new Error(`delete ${kind}/${name}: ${response.status}`), {
      status: response.status,
      body: response.body,
    });
}
