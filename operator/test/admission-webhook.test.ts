import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry, findKeyByHash, LocalKeyWrapper, type Database } from '@ccproxy/core';
import { AdmissionWebhook, finalizer, KubeClient, KubeOperator, type KubeObject } from '@ccproxy/operator/kube';
import { createTestDatabase, freePort, startCcproxy } from '@ccproxy/test-harness';
import {
  adminConfig,
  apply,
  awsEnv,
  bindOperatorRbac,
  bindWebhookRbac,
  condition,
  ensureNamespace,
  hashKey,
  hasherSecret,
  installCrds,
  kmsKey,
  kubeRequest,
  leaseNamespace,
  openTestDatabase,
  operatorConfig,
  readObject,
  silent,
  uniqueName,
} from './kube-fixture.ts';

const group = 'ccproxy.io';
const version = 'v1alpha1';
const plurals = ['proxyusers', 'accesskeys', 'bedrockkeys', 'teambudgets'];

/**
 * The operator's mutating admission webhook on the real kube-apiserver: registered with a url
 * clientConfig (127.0.0.1) and the caBundle the webhook sets itself, served by two replicas
 * that share one TLS Secret, in front of a real operator whose API calls are counted.
 */
describe('admission webhook', () => {
  const admin = adminConfig();
  const namespace = uniqueName('webhook');
  const configurationName = uniqueName('ccproxy-webhook');
  const secretName = uniqueName('ccproxy-webhook-tls');
  /** The operator's metadata patches: kind/name of each. */
  const metadataPatches: string[] = [];
  let db: Database;
  let operator: KubeOperator;
  const replicas: AdmissionWebhook[] = [];
  const ports: number[] = [];

  const newWebhook = (port: number, secret = secretName) =>
    new AdmissionWebhook({
      client: new KubeClient(operatorConfig(), namespace),
      logger: silent,
      port,
      host: '127.0.0.1',
      namespace: leaseNamespace,
      serviceName: 'ccproxy-operator',
      secretName: secret,
      extraNames: ['127.0.0.1'],
      configurationName,
      recheckMs: 1_000,
      backoff: { baseMs: 100, maxMs: 1_000 },
    });

  beforeAll(async () => {
    await installCrds(admin);
    await bindOperatorRbac(admin);
    await bindWebhookRbac(admin, configurationName, secretName);
    await ensureNamespace(admin, namespace);
    ports.push(await freePort(), await freePort());
    await apply(admin, [
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: configurationName },
        webhooks: [
          {
            name: 'metadata.ccproxy.io',
            // This test's namespace only: other test files share the API server.
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
            clientConfig: { url: `https://127.0.0.1:${ports[0]}/mutate` },
            rules: [{ apiGroups: [group], apiVersions: [version], operations: ['CREATE'], resources: plurals }],
            failurePolicy: 'Ignore',
            matchPolicy: 'Equivalent',
            sideEffects: 'None',
            timeoutSeconds: 2,
            admissionReviewVersions: ['v1'],
          },
        ],
      } as never,
    ]);
    // Two replicas starting at once, racing to create the one TLS Secret.
    for (const port of ports) replicas.push(newWebhook(port));
    for (const replica of replicas) replica.start();
    const real = new KubeClient(operatorConfig(), namespace);
    const counted = new Proxy(real, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (property === 'patchMetadata')
            metadataPatches.push(`${String(args[0])}/${(args[1] as KubeObject).metadata.name}`);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    db = await openTestDatabase();
    operator = new KubeOperator({
      client: counted,
      db,
      hashKey,
      wrapper: new LocalKeyWrapper(Buffer.alloc(32, 7)),
      logger: silent,
      registry: createMetricsRegistry({ processMetrics: false }),
      rotationGraceSeconds: 2,
      publicUrl: 'https://ccproxy.example.com',
      breakerOpenMs: 60_000,
      namespace,
      reflector: { backoff: { baseMs: 100, maxMs: 1000 } },
      queue: { baseDelayMs: 50, maxDelayMs: 2000 },
    });
    await operator.start();
    await until(async () => replicas.every((r) => r.serving) && (await caBundleSet()), 'both replicas serving');
  });
  afterAll(async () => {
    await operator?.stop();
    for (const replica of replicas) await replica.stop();
    await db?.close();
    await kubeRequest(
      admin,
      'DELETE',
      `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${configurationName}`,
    );
  });

  const caBundleSet = async () => {
    const { body } = await kubeRequest(
      admin,
      'GET',
      `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${configurationName}`,
    );
    const bundle = (JSON.parse(body) as { webhooks: Array<{ clientConfig: { caBundle?: string } }> }).webhooks[0]
      ?.clientConfig.caBundle;
    return bundle !== undefined && bundle !== '';
  };
  const create = async (plural: string, object: object) => {
    const response = await kubeRequest(
      admin,
      'POST',
      `/apis/${group}/${version}/namespaces/${namespace}/${plural}`,
      JSON.stringify({ apiVersion: `${group}/${version}`, ...object }),
    );
    expect(response.status, response.body).toBe(201);
    return JSON.parse(response.body) as KubeObject;
  };
  const createUser = (name: string) => create('proxyusers', { kind: 'ProxyUser', metadata: { name }, spec: {} });
  const createKey = (name: string, user: string) =>
    create('accesskeys', {
      kind: 'AccessKey',
      metadata: { name },
      spec: { userRef: { name: user }, secretName: `${name}-key` },
    });
  const read = (kind: string, name: string) => readObject(admin, kind, namespace, name);
  const readyKey = async (name: string) => condition(await read('AccessKey', name), 'Ready')?.status === 'True';
  /** A review as the API server sends it, straight to a replica. */
  const review = (port: number, body: string) => post(port, body, Buffer.from(replicaCa ?? '', 'base64').toString());
  let replicaCa: string | undefined;
  const keyReview = (user: string) =>
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'r1',
        kind: { group, version, kind: 'AccessKey' },
        operation: 'CREATE',
        namespace,
        object: { metadata: { name: 'probe' }, spec: { userRef: { name: user } } },
      },
    });
  /** Until a replica's ProxyUser cache knows `user` (what a create moments after the user's may miss). */
  const knownTo = async (port: number, user: string) =>
    until(async () => {
      const { body } = await review(port, keyReview(user));
      const patch = (JSON.parse(body) as { response: { patch?: string } }).response.patch;
      return patch !== undefined && Buffer.from(patch, 'base64').toString().includes('ownerReferences');
    }, `${user} known to the webhook`);

  it('two replicas started at once share one TLS Secret, and the caBundle is its CA', async () => {
    const { body } = await kubeRequest(admin, 'GET', `/api/v1/namespaces/${leaseNamespace}/secrets/${secretName}`);
    const secret = JSON.parse(body) as { type: string; data: Record<string, string> };
    expect(secret.type).toBe('kubernetes.io/tls');
    const configuration = await kubeRequest(
      admin,
      'GET',
      `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${configurationName}`,
    );
    replicaCa = (JSON.parse(configuration.body) as { webhooks: Array<{ clientConfig: { caBundle: string } }> })
      .webhooks[0]?.clientConfig.caBundle;
    expect(replicaCa).toBe(secret.data['ca.crt']);
    // Both serve a certificate that CA signed (the TLS handshake checks it, with 127.0.0.1 in the SANs).
    for (const port of ports) expect((await review(port, keyReview('nobody'))).status).toBe(200);
  });

  it('an AccessKey is created with its finalizer, owner reference and user uid: no metadata patch follows', async () => {
    const user = await createUser('ann');
    expect(user.metadata.finalizers).toEqual([finalizer]);
    await knownTo(ports[0] ?? 0, 'ann');
    const key = await createKey('ann-laptop', 'ann');
    expect(key.metadata.finalizers).toEqual([finalizer]);
    expect(key.metadata.ownerReferences).toEqual([
      {
        apiVersion: `${group}/${version}`,
        kind: 'ProxyUser',
        name: 'ann',
        uid: user.metadata.uid,
        blockOwnerDeletion: true,
      },
    ]);
    expect(key.metadata.annotations).toEqual({ 'ccproxy.io/user-uid': user.metadata.uid });
    await until(() => readyKey('ann-laptop'), 'ann-laptop Ready');
    const secret = (await read('Secret', 'ann-laptop-key')) as { data?: Record<string, string> } | undefined;
    const accessKey = Buffer.from(secret?.data?.accessKey ?? '', 'base64').toString();
    expect(await findKeyByHash(db, hashKey(accessKey))).toMatchObject({
      namespace,
      name: 'ann-laptop',
      userName: 'ann',
    });
    expect(metadataPatches.filter((p) => p === 'AccessKey/ann-laptop' || p === 'ProxyUser/ann')).toEqual([]);
  });

  it('a key created before its user is bound by the reconcile once the user exists (the fallback)', async () => {
    const key = await createKey('bob-laptop', 'bob');
    expect(key.metadata.finalizers).toEqual([finalizer]);
    expect(key.metadata.ownerReferences).toBeUndefined();
    const user = await createUser('bob');
    await until(() => readyKey('bob-laptop'), 'bob-laptop Ready');
    const bound = await read('AccessKey', 'bob-laptop');
    expect(bound?.metadata?.ownerReferences?.[0]).toMatchObject({ name: 'bob', uid: user.metadata.uid });
    expect(metadataPatches).toContain('AccessKey/bob-laptop');
  });

  it('a malformed AdmissionReview gets a 400 and the replica goes on serving', async () => {
    const port = ports[1] ?? 0;
    for (const body of ['not json', '{}', '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', '[]']) {
      const answer = await review(port, body);
      expect(answer.status, body).toBe(400);
      expect(JSON.parse(answer.body), body).toBeTypeOf('object');
    }
    const review400 = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'x', kind: { group, version, kind: 'AccessKey' }, operation: 'CREATE', object: 'nope' },
    });
    expect((await review(port, review400)).status).toBe(400);
    expect((await review(port, keyReview('ann'))).status).toBe(200);
  });

  it('with the webhook down, creates go through and the reconcile adds the metadata', async () => {
    await replicas[0]?.stop();
    const started = Date.now();
    const key = await createKey('ann-phone', 'ann');
    // failurePolicy Ignore: not refused, not held for long (the port is closed: refused at once).
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(key.metadata.finalizers).toBeUndefined();
    await until(() => readyKey('ann-phone'), 'ann-phone Ready');
    const bound = await read('AccessKey', 'ann-phone');
    expect(bound?.metadata?.finalizers).toEqual([finalizer]);
    expect(bound?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ProxyUser', name: 'ann' });
    expect(metadataPatches).toContain('AccessKey/ann-phone');
  });

  it("a foreign Secret in the TLS Secret's place is not overwritten, and that replica serves no webhook", async () => {
    const foreign = uniqueName('foreign-tls');
    await bindWebhookRbac(admin, configurationName, foreign);
    await apply(admin, [
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: foreign, namespace: leaseNamespace },
        stringData: { 'tls.crt': 'theirs' },
      } as never,
    ]);
    const before = await readObject(admin, 'Secret', leaseNamespace, foreign);
    const replica = newWebhook(await freePort(), foreign);
    replica.start();
    try {
      await until(async () => replica.disabled !== undefined, 'the replica gives up');
      expect(replica.disabled).toContain('not the operator');
      expect(replica.serving).toBe(false);
      const after = await readObject(admin, 'Secret', leaseNamespace, foreign);
      expect(after?.metadata?.resourceVersion).toBe(before?.metadata?.resourceVersion);
    } finally {
      await replica.stop();
    }
  });

  it('`ccproxy operator` with CCPROXY_WEBHOOK_CONFIGURATION serves it and sets the caBundle', async () => {
    const name = `${configurationName}-cli`;
    const secret = `${secretName}-cli`;
    const port = await freePort();
    await bindWebhookRbac(admin, name, secret);
    // Registered for no namespace: this checks the process's wiring, the API server's calls are above.
    await apply(admin, [
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name },
        webhooks: [
          {
            name: 'metadata.ccproxy.io',
            namespaceSelector: { matchLabels: { 'ccproxy.io/test': 'none' } },
            clientConfig: { url: `https://127.0.0.1:${port}/mutate` },
            rules: [{ apiGroups: [group], apiVersions: [version], operations: ['CREATE'], resources: plurals }],
            failurePolicy: 'Ignore',
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
          },
        ],
      } as never,
    ]);
    const dir = await mkdtemp(join(tmpdir(), 'ccproxy-webhook-'));
    await writeFile(join(dir, 'kubeconfig'), inject('operatorKubeconfig'), { mode: 0o600 });
    const watched = uniqueName('webhook-cli');
    await ensureNamespace(admin, watched);
    const operatorPort = await freePort();
    const child = await startCcproxy(['operator'], {
      ...awsEnv(),
      KUBECONFIG: join(dir, 'kubeconfig'),
      DATABASE_URL: await createTestDatabase(inject('postgresUrl'), 'operator'),
      CCPROXY_KEY_HASHER_SECRET: hasherSecret,
      CCPROXY_KMS_KEY_ID: (await kmsKey()).keyId,
      CCPROXY_WATCH_NAMESPACE: watched,
      CCPROXY_OPERATOR_NAMESPACE: leaseNamespace,
      PORT: String(operatorPort),
      CCPROXY_OPERATOR_PORT: String(operatorPort),
      CCPROXY_WEBHOOK_CONFIGURATION: name,
      CCPROXY_WEBHOOK_PORT: String(port),
      CCPROXY_WEBHOOK_TLS_SECRET: secret,
    });
    try {
      let caBundle = '';
      await until(async () => {
        const { body } = await kubeRequest(
          admin,
          'GET',
          `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`,
        );
        caBundle =
          (JSON.parse(body) as { webhooks: Array<{ clientConfig: { caBundle?: string } }> }).webhooks[0]?.clientConfig
            .caBundle ?? '';
        return caBundle !== '';
      }, 'the caBundle set by the process');
      // The certificate names the Service (CCPROXY_WEBHOOK_SERVICE, default ccproxy-operator).
      const answer = await post(
        port,
        keyReview('ann'),
        Buffer.from(caBundle, 'base64').toString(),
        `ccproxy-operator.${leaseNamespace}.svc`,
      );
      expect(answer.status).toBe(200);
      expect(child.output.join('\n')).toContain('admission webhook serving');
    } finally {
      await child.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

/** POST to a replica's /mutate over TLS, trusting only the webhook's CA. */
function post(port: number, body: string, ca: string, servername?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate',
        method: 'POST',
        ca,
        ...(servername === undefined ? {} : { servername }),
        headers: { 'content-type': 'application/json' },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
