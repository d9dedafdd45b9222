import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createMetricsRegistry,
  decryptSecret,
  findBedrockCiphertext,
  findKeyByHash,
  LocalKeyWrapper,
  type Database,
} from '@ccproxy/core';
import { LocalOperator } from '@ccproxy/operator';
import { finalizer, KubeClient, KubeOperator, type KubeObject } from '@ccproxy/operator/kube';
import {
  createTestDatabase,
  startAnthropicServer,
  startBedrockServer,
  startCcproxy,
  type AnthropicTestServer,
  type BedrockTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';
import {
  adminConfig,
  apply,
  awsEnv,
  kubeRequest,
  bindOperatorRbac,
  condition,
  deleteObject,
  ensureNamespace,
  hasherSecret,
  hashKey,
  installCrds,
  kmsKey,
  mergePatch,
  objectsOf,
  openTestDatabase,
  operatorConfig,
  readObject,
  silent,
  uniqueName,
} from './kube-fixture.ts';

const bedrockApiKey = 'bedrock-api-key-for-the-operator-test';
const examples = (await readFile(new URL('../../examples/kubernetes/team-a.yaml', import.meta.url), 'utf8')).replace(
  'REPLACE_WITH_YOUR_BEDROCK_API_KEY',
  bedrockApiKey,
);
const ask = '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}';

/**
 * The operator on a real kube-apiserver (+ etcd), running as an identity that has only the
 * operator's RBAC rules, against real PostgreSQL and KMS (moto); the real `ccproxy proxy`
 * serves what it reconciles.
 */
describe('Kubernetes operator', () => {
  const admin = adminConfig();
  const namespace = uniqueName('team');
  let db: Database;
  let operator: KubeOperator;
  let kms: Awaited<ReturnType<typeof kmsKey>>;
  let anthropic: AnthropicTestServer;
  let bedrock: BedrockTestServer;
  let proxy: CcproxyProcess;
  let databaseUrl: string;

  beforeAll(async () => {
    await installCrds(admin);
    await bindOperatorRbac(admin);
    await ensureNamespace(admin, namespace);
    databaseUrl = await createTestDatabase(inject('postgresUrl'), 'operator');
    db = await openTestDatabase(databaseUrl);
    kms = await kmsKey();
    operator = new KubeOperator({
      client: new KubeClient(operatorConfig(), namespace),
      db,
      hashKey,
      wrapper: kms.wrapper,
      // Missing references stall at once here; the wait for them is order-independence.test.ts's.
      referenceWaitMs: 0,
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
    anthropic = await startAnthropicServer();
    bedrock = await startBedrockServer({ apiKey: bedrockApiKey });
  });
  afterAll(async () => {
    await proxy?.stop();
    await operator?.stop();
    await Promise.all([anthropic?.close(), bedrock?.close()]);
    await db?.close();
  });

  const read = (kind: string, name: string) => readObject(admin, kind, namespace, name);
  const ready = async (kind: string, name: string) => condition(await read(kind, name), 'Ready');
  const keyIn = async (secretName: string) =>
    Buffer.from(
      ((await read('Secret', secretName)) as { data?: Record<string, string> } | undefined)?.data?.accessKey ?? '',
      'base64',
    ).toString();
  const call = async (key: string) => {
    const response = await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: ask,
      headers: { 'x-api-key': 'sk-ant-dev' },
    });
    return {
      status: response.status,
      text: ((await response.json()) as { content?: Array<{ text?: string }> }).content?.[0]?.text,
    };
  };

  it('applies the examples and reports Ready=True, observedGeneration and the finalizer on all three kinds', async () => {
    const objects = objectsOf(examples, namespace);
    // GitOps tracking labels on the AccessKey must not be copied onto the Secret it generates.
    const key = objects.find((o) => o.kind === 'AccessKey');
    if (key?.metadata !== undefined)
      key.metadata.labels = { 'app.kubernetes.io/instance': 'team-a', 'argocd.argoproj.io/instance': 'team-a' };
    await apply(admin, objects);
    for (const [kind, name] of [
      ['ProxyUser', 'alice'],
      ['AccessKey', 'alice-laptop'],
      ['BedrockKey', 'alice-laptop-bedrock'],
    ] as const) {
      await expect.poll(() => ready(kind, name), { timeout: 10_000, interval: 100 }).toMatchObject({ status: 'True' });
      const object = await read(kind, name);
      expect(object?.status?.observedGeneration).toBe(object?.metadata?.generation);
      expect(object?.metadata?.finalizers).toContain(finalizer);
      expect(object?.status?.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual([
        'Ready=True',
        'Reconciling=False',
        'Stalled=False',
      ]);
    }
    const accessKey = await read('AccessKey', 'alice-laptop');
    expect(accessKey?.status).toMatchObject({ keyPrefix: expect.stringMatching(/^ak_/), breaker: { state: 'closed' } });
    expect((await read('BedrockKey', 'alice-laptop-bedrock'))?.status?.fingerprint).toMatch(/^sha256:[0-9a-f]{16}$/);
    // Transitions are recorded as Events on the objects (what `kubectl describe` shows).
    const events = JSON.parse((await kubeRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/events`)).body) as {
      items: Array<{ involvedObject: { kind: string; name: string }; reason: string; type: string }>;
    };
    expect(events.items.map((e) => `${e.involvedObject.kind}/${e.involvedObject.name} ${e.type} ${e.reason}`)).toEqual(
      expect.arrayContaining([
        'ProxyUser/alice Normal Reconciled',
        'AccessKey/alice-laptop Normal KeyActive',
        'BedrockKey/alice-laptop-bedrock Normal Encrypted',
      ]),
    );
  });

  it('rejects invalid resources at the API server with the schema or CEL message', async () => {
    const invalid = async (yaml: string) =>
      apply(admin, objectsOf(yaml, namespace)).then(
        () => 'accepted',
        (error: { body?: string }) => (JSON.parse(error.body ?? '{}') as { message?: string }).message,
      );
    const key = (spec: string) =>
      `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: bad-key }\nspec: ${spec}\n`;
    expect(await invalid(key('{ userRef: { name: alice }, secretName: s, routing: Sometimes }'))).toMatch(
      /spec\.routing: Unsupported value: "Sometimes"/,
    );
    expect(await invalid(key('{ userRef: { name: alice } }'))).toMatch(/spec\.secretName: Required value/);
    expect(await invalid(key('{ userRef: { name: alice }, secretName: s, surprise: 1 }'))).toMatch(
      /unknown field "spec\.surprise"|surprise/,
    );
    expect(
      await invalid(
        'apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: alice-laptop }\nspec: { userRef: { name: mallory }, secretName: alice-laptop-key }\n',
      ),
    ).toMatch(/userRef is immutable/);
    expect(
      await invalid(
        'apiVersion: ccproxy.io/v1alpha1\nkind: BedrockKey\nmetadata: { name: alice-laptop-bedrock }\nspec: { accessKeyRef: { name: other }, secretRef: { name: team-a-bedrock } }\n',
      ),
    ).toMatch(/accessKeyRef is immutable/);
  });

  it('writes rows and a generated Secret, encrypts the Bedrock key through KMS only, and the proxy serves the key with failover', async () => {
    const secret = (await read('Secret', 'alice-laptop-key')) as KubeObject & {
      metadata: { ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }> };
    };
    expect(secret.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'AccessKey', name: 'alice-laptop', controller: true }),
    ]);
    expect(Object.keys(secret.metadata.labels ?? {}).sort()).toEqual([
      'app.kubernetes.io/managed-by',
      'app.kubernetes.io/part-of',
    ]);
    const key = await keyIn('alice-laptop-key');
    expect(Buffer.from(secret.data?.ANTHROPIC_BASE_URL ?? '', 'base64').toString()).toBe(
      `https://ccproxy.example.com/ak/${key}`,
    );
    const record = await findKeyByHash(db, hashKey(key));
    expect(record).toMatchObject({ namespace, name: 'alice-laptop', userName: 'alice', routing: 'PlanWithFailover' });
    const [row] = await db.query<{ key_hash: string; uid: string }>(
      'SELECT key_hash, uid FROM access_keys WHERE namespace = $1',
      [namespace],
    );
    expect(row?.uid).toBe((await read('AccessKey', 'alice-laptop'))?.metadata?.uid);
    expect(JSON.stringify(await db.query('SELECT * FROM access_keys'))).not.toContain(key);

    const ciphertext = await findBedrockCiphertext(db, record?.accessKeyId ?? '');
    expect(ciphertext?.toString()).not.toContain(bedrockApiKey);
    expect(JSON.parse(ciphertext?.toString() ?? '{}')).toMatchObject({ kid: kms.keyId });
    expect(await decryptSecret(ciphertext as Buffer, kms.wrapper)).toBe(bedrockApiKey);
    await expect(decryptSecret(ciphertext as Buffer, new LocalKeyWrapper(Buffer.alloc(32, 7)))).rejects.toThrow();

    proxy = await startCcproxy(['proxy'], {
      ...awsEnv(),
      DATABASE_URL: databaseUrl,
      CCPROXY_KEY_HASHER_SECRET: hasherSecret,
      CCPROXY_KMS_KEY_ID: kms.keyId,
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
      CCPROXY_DATA_DIR: await mkdtemp(join(tmpdir(), 'ccproxy-op-proxy-')),
    });
    expect(await call(key)).toEqual({ status: 200, text: 'Hello from the test server' });
    anthropic.respondWith(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    expect(await call(key)).toEqual({ status: 200, text: 'Hello from the Bedrock test server' });
    anthropic.respondWith(undefined);
    expect(bedrock.requests.at(-1)?.path).toContain(
      encodeURIComponent('global.anthropic.claude-sonnet-4-5-20250929-v1:0'),
    );
    // A new Bedrock API key in the referenced Secret is encrypted again (the Secret is watched).
    const before = (await read('BedrockKey', 'alice-laptop-bedrock'))?.status?.fingerprint;
    await mergePatch(admin, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'team-a-bedrock', namespace },
      stringData: { apiKey: `${bedrockApiKey}-2` },
    } as never);
    await expect
      .poll(async () => (await read('BedrockKey', 'alice-laptop-bedrock'))?.status?.fingerprint, {
        timeout: 5_000,
        interval: 50,
      })
      .not.toBe(before);
    expect(
      await decryptSecret((await findBedrockCiphertext(db, record?.accessKeyId ?? '')) as Buffer, kms.wrapper),
    ).toBe(`${bedrockApiKey}-2`);
    await mergePatch(admin, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'team-a-bedrock', namespace },
      stringData: { apiKey: bedrockApiKey },
    } as never);
    await expect
      .poll(async () => (await read('BedrockKey', 'alice-laptop-bedrock'))?.status?.fingerprint, {
        timeout: 5_000,
        interval: 50,
      })
      .toBe(before);
    // The failover is surfaced in the AccessKey's status (breaker notification → reconcile).
    await expect
      .poll(async () => (await read('AccessKey', 'alice-laptop'))?.status?.breaker, { timeout: 5_000, interval: 100 })
      .toMatchObject({ state: 'failing', lastFailoverAt: expect.any(String) });
  });

  it('revoke, rotate, suspend and delete reach Postgres, the proxy and status within a second', async () => {
    const key = await keyIn('alice-laptop-key');
    const within = { timeout: 1_000, interval: 20 };
    const spec = (kind: string, name: string, value: object) =>
      mergePatch(admin, {
        apiVersion: 'ccproxy.io/v1alpha1',
        kind,
        metadata: { name, namespace },
        spec: value,
      } as never);

    await spec('AccessKey', 'alice-laptop', { revoked: true });
    await expect.poll(async () => (await call(key)).status, within).toBe(404);
    await expect
      .poll(() => ready('AccessKey', 'alice-laptop'), within)
      .toMatchObject({ status: 'False', reason: 'Revoked' });
    await spec('AccessKey', 'alice-laptop', { revoked: false });
    await expect.poll(async () => (await call(key)).status, within).toBe(200);

    // Rotation: a new key in the Secret; the old one keeps working for the grace period (2 s here).
    const rotated = 'ak_rotated_by_test_0123456789abcdefghijklmn';
    await mergePatch(admin, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'alice-laptop-key', namespace },
      data: { accessKey: Buffer.from(rotated).toString('base64') },
    } as never);
    await expect.poll(async () => (await call(rotated)).status, within).toBe(200);
    expect((await call(key)).status, 'old key during the grace period').toBe(200);
    await expect.poll(async () => (await call(key)).status, { timeout: 5_000, interval: 100 }).toBe(404);
    expect((await read('AccessKey', 'alice-laptop'))?.status?.keyPrefix).toBe(rotated.slice(0, 10));

    await spec('ProxyUser', 'alice', { suspended: true });
    await expect.poll(async () => (await call(rotated)).status, within).toBe(404);
    await expect
      .poll(() => ready('AccessKey', 'alice-laptop'), within)
      .toMatchObject({ status: 'False', reason: 'UserSuspended' });
    await spec('ProxyUser', 'alice', { suspended: false });
    await expect.poll(async () => (await call(rotated)).status, within).toBe(200);

    await deleteObject(admin, 'AccessKey', namespace, 'alice-laptop');
    await expect.poll(async () => (await call(rotated)).status, within).toBe(404);
    await expect.poll(() => read('AccessKey', 'alice-laptop'), within).toBeUndefined();
    expect(await db.query('SELECT 1 FROM access_keys WHERE namespace = $1', [namespace])).toEqual([]);
    await expect
      .poll(() => ready('BedrockKey', 'alice-laptop-bedrock'), within)
      .toMatchObject({ status: 'False', reason: 'AccessKeyNotFound' });
  });

  it('gives the same results for the same resources in local mode', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccproxy-parity-'));
    const localDb = await openTestDatabase();
    try {
      await writeFile(join(dir, 'team-a.yaml'), examples);
      const local = new LocalOperator({
        manifestsDir: dir,
        dataDir: join(dir, '.data'),
        db: localDb,
        hashKey,
        wrapper: kms.wrapper,
        logger: silent,
        rotationGraceSeconds: 2,
        publicUrl: 'https://ccproxy.example.com',
      });
      const report = await local.sync();
      const namespaced = uniqueName('parity');
      await ensureNamespace(admin, namespaced);
      const kube = new KubeOperator({
        client: new KubeClient(operatorConfig(), namespaced),
        db: localDb,
        hashKey,
        wrapper: kms.wrapper,
        logger: silent,
        registry: createMetricsRegistry({ processMetrics: false }),
        rotationGraceSeconds: 2,
        publicUrl: 'https://ccproxy.example.com',
        breakerOpenMs: 60_000,
        namespace: namespaced,
      });
      await kube.start();
      try {
        await apply(admin, objectsOf(examples, namespaced));
        for (const [kind, name] of [
          ['ProxyUser', 'alice'],
          ['AccessKey', 'alice-laptop'],
          ['BedrockKey', 'alice-laptop-bedrock'],
        ] as const) {
          const localReady = report.statuses.get(`${kind}/team-a/${name}`)?.conditions.find((c) => c.type === 'Ready');
          await expect
            .poll(async () => condition(await readObject(admin, kind, namespaced, name), 'Ready'), {
              timeout: 10_000,
              interval: 100,
            })
            .toMatchObject({ status: localReady?.status, reason: localReady?.reason });
        }
        const rows = await localDb.query<{ namespace: string; row: string }>(
          `SELECT k.namespace, concat_ws(' ', k.name, k.status, k.routing, k.bedrock_model, k.bedrock_model_map::text, u.name, u.display_name, b.fingerprint) AS row
             FROM access_keys k JOIN users u ON u.id = k.user_id JOIN bedrock_keys b ON b.access_key_id = k.id ORDER BY k.namespace = 'team-a'`,
        );
        expect(rows.map((r) => r.namespace)).toEqual([namespaced, 'team-a']);
        expect(rows[0]?.row).toBe(rows[1]?.row);
      } finally {
        await kube.stop();
      }
    } finally {
      await localDb.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exports its metrics', async () => {
    const reconciles = await operator.metrics.reconciles.get();
    expect(
      reconciles.values.find((v) => v.labels.kind === 'AccessKey' && v.labels.result === 'success')?.value,
    ).toBeGreaterThan(0);
    const duration = await operator.metrics.duration.get();
    expect(
      duration.values.some((v) => v.metricName === 'ccproxy_operator_reconcile_duration_seconds_count' && v.value > 0),
    ).toBe(true);
  });
});
