import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubernetesObject } from '@kubernetes/client-node';
import { leaderElectionRules } from '@ccproxy/operator';
import {
  accessKey,
  bedrockKey,
  createTestDatabase,
  documents,
  freePort,
  proxyUser,
  secret,
  startAnthropicServer,
  startBedrockServer,
  startCcproxy,
  startCuttableRelay,
  type AnthropicTestServer,
  type BedrockTestServer,
  type CcproxyProcess,
  type CuttableRelay,
  type RelayMode,
} from '@ccproxy/test-harness';
import {
  adminConfig,
  apply,
  awsEnv,
  bindOperatorRbac,
  condition,
  ensureNamespace,
  hasherSecret,
  installCrds,
  kmsKey,
  kubeRequest,
  objectsOf,
  readObject,
  uniqueName,
} from './kube-fixture.ts';

const bedrockApiKey = 'bedrock-api-key-kms-outage-0123456789';
const model = 'global.anthropic.claude-sonnet-4-5-20250929-v1:0';
const ask = '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}';
/** The operators' resync: work must resume within one after KMS is back. */
const resyncSeconds = 10;
const outageModes: RelayMode[] = ['refuse', 'hang', 'error500', 'throttle'];

/**
 * KMS outages on real parts: moto's KMS behind a relay the test cuts (refused connections, an
 * endpoint that never answers, 500s, throttling), two real `ccproxy operator` replicas (leader
 * and standby, each with its own Lease view) on the real kube-apiserver, and a real `ccproxy
 * proxy` serving Bedrock through the strict Bedrock test server. Nothing exits; the leader says
 * not-ready naming KMS; a BedrockKey that needs an envelope says KmsUnavailable with one Warning,
 * not one per retry; a key the proxy already decrypted keeps working and one it never did gets a
 * clear 503; and everything resumes within one resync once KMS answers again.
 */
describe('KMS outages', () => {
  const admin = adminConfig();
  const namespace = uniqueName('kms');
  const leaseNamespace = uniqueName('kms-lease');
  let relay: CuttableRelay;
  let anthropic: AnthropicTestServer;
  let bedrock: BedrockTestServer;
  let dir: string;
  let operators: Record<'op-kms-a' | 'op-kms-b', CcproxyProcess>;
  let proxy: CcproxyProcess;
  const stops: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    await installCrds(admin);
    await bindOperatorRbac(admin);
    await ensureNamespace(admin, namespace);
    await ensureNamespace(admin, leaseNamespace);
    // The Lease of these replicas in a namespace of their own: no other test file's replicas compete for it.
    await apply(admin, leaseRbac(leaseNamespace));
    const kms = await kmsKey();
    relay = await startCuttableRelay(inject('motoUrl'));
    stops.push(() => relay.close());
    anthropic = await startAnthropicServer();
    stops.push(() => anthropic.close());
    bedrock = await startBedrockServer({ apiKey: bedrockApiKey });
    stops.push(() => bedrock.close());
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-kms-'));
    stops.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'kubeconfig'), inject('operatorKubeconfig'));
    const databaseUrl = await createTestDatabase(inject('postgresUrl'), 'kms');
    const env = { ...awsEnv(), AWS_ENDPOINT_URL_KMS: relay.url, CCPROXY_KMS_KEY_ID: kms.keyId };
    const operator = async (podName: string) => {
      const port = await freePort();
      const child = await startCcproxy(['operator'], {
        ...env,
        KUBECONFIG: join(dir, 'kubeconfig'),
        DATABASE_URL: databaseUrl,
        CCPROXY_KEY_HASHER_SECRET: hasherSecret,
        CCPROXY_WATCH_NAMESPACE: namespace,
        CCPROXY_OPERATOR_NAMESPACE: leaseNamespace,
        CCPROXY_RESYNC_SECONDS: String(resyncSeconds),
        CCPROXY_REFERENCE_WAIT_SECONDS: '120',
        CCPROXY_LEASE_DURATION_SECONDS: '3',
        POD_NAME: podName,
        PORT: String(port),
        CCPROXY_OPERATOR_PORT: String(port),
        CCPROXY_LOG_LEVEL: 'warn',
      });
      stops.push(() => child.stop('SIGTERM'));
      return child;
    };
    operators = { 'op-kms-a': await operator('op-kms-a'), 'op-kms-b': await operator('op-kms-b') };
    proxy = await startCcproxy(['proxy'], {
      ...env,
      DATABASE_URL: databaseUrl,
      CCPROXY_KEY_HASHER_SECRET: hasherSecret,
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
      CCPROXY_DATA_DIR: await mkdtemp(join(tmpdir(), 'ccproxy-kms-proxy-')),
      CCPROXY_LOG_LEVEL: 'warn',
    });
    stops.push(() => proxy.stop());
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });

  const read = (kind: string, name: string) => readObject(admin, kind, namespace, name);
  const ready = async (kind: string, name: string) => condition(await read(kind, name), 'Ready');
  /** A user, an AccessKey and its BedrockKey (with the Bedrock API key's Secret), in one apply. */
  const bedrockBound = (name: string, routing = 'BedrockOnly') =>
    objectsOf(
      documents(
        accessKey(namespace, name, { user: 'dev', routing, bedrockModel: model }),
        secret(namespace, `${name}-bedrock`, { apiKey: bedrockApiKey }),
        bedrockKey(namespace, `${name}-bedrock`, { accessKey: name, secretName: `${name}-bedrock` }),
      ),
    );
  const keyIn = async (name: string) =>
    Buffer.from(
      ((await read('Secret', name)) as { data?: Record<string, string> } | undefined)?.data?.accessKey ?? '',
      'base64',
    ).toString();
  const call = async (key: string) => {
    const started = performance.now();
    const response = await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: ask,
      headers: { 'x-api-key': 'sk-ant-dev' },
    });
    return {
      status: response.status,
      body: (await response.json()) as {
        type?: string;
        error?: { type: string; message: string };
        request_id?: string;
        content?: Array<{ text?: string }>;
      },
      ms: performance.now() - started,
    };
  };
  const readyz = async (child: CcproxyProcess) => {
    const response = await fetch(`${child.url}/readyz`).catch(() => undefined);
    return response === undefined
      ? { status: 0, reasons: [] }
      : { status: response.status, reasons: ((await response.json()) as { reasons?: string[] }).reasons ?? [] };
  };
  const leader = async () => {
    const lease = (await kubeRequest(
      admin,
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${leaseNamespace}/leases/ccproxy-operator`,
    ).then((r) => JSON.parse(r.body))) as { spec?: { holderIdentity?: keyof typeof operators } };
    return lease.spec?.holderIdentity;
  };
  const warnings = async (name: string) =>
    (
      JSON.parse((await kubeRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/events`)).body) as {
        items: Array<{ type: string; reason: string; count?: number; involvedObject: { name: string } }>;
      }
    ).items
      .filter((e) => e.involvedObject.name === name && e.type === 'Warning')
      .reduce((sum, e) => sum + (e.count ?? 1), 0);
  const metric = async (line: RegExp) => {
    const text = await (await fetch(`${proxy.url}/metrics`)).text();
    return Number(line.exec(text)?.[1] ?? 0);
  };
  const heldServed = () =>
    metric(/ccproxy_bedrock_key_decrypt_failures_total\{cause="kms_unavailable",answer="held_key"\} (\d+)/);
  const refused = () =>
    metric(/ccproxy_bedrock_key_decrypt_failures_total\{cause="kms_unavailable",answer="error"\} (\d+)/);
  /** A key change anywhere: every proxy drops its decrypted keys, so the next Bedrock request must decrypt. */
  let nudges = 0;
  const dropProxyCaches = async () => {
    nudges += 1;
    const name = `nudge-${nudges}`;
    await apply(admin, objectsOf(accessKey(namespace, name, { user: 'dev', routing: 'PlanOnly' })));
    await expect
      .poll(() => ready('AccessKey', name), { timeout: 15_000, interval: 100 })
      .toMatchObject({
        status: 'True',
      });
  };

  it('keeps every replica up, says KmsUnavailable and not-ready naming KMS, serves decrypted keys, and resumes within one resync', async () => {
    await apply(admin, [...objectsOf(proxyUser(namespace, 'dev')), ...bedrockBound('warm'), ...bedrockBound('late')]);
    for (const name of ['warm-bedrock', 'late-bedrock'])
      await expect
        .poll(() => ready('BedrockKey', name), { timeout: 20_000, interval: 100 })
        .toMatchObject({
          status: 'True',
          reason: 'Encrypted',
        });
    await expect.poll(leader, { timeout: 10_000, interval: 100 }).toMatch(/^op-kms-[ab]$/);
    const leading = (await leader()) as keyof typeof operators;
    const standby = leading === 'op-kms-a' ? 'op-kms-b' : 'op-kms-a';
    const warm = await keyIn('warm');
    expect(await call(warm)).toMatchObject({
      status: 200,
      body: { content: [{ text: 'Hello from the Bedrock test server' }] },
    });
    expect(await readyz(operators[leading])).toEqual({ status: 200, reasons: [] });

    await relay.setMode('refuse');
    // A BedrockKey that needs an envelope while KMS is down.
    await apply(admin, bedrockBound('cold'));
    await expect
      .poll(() => read('BedrockKey', 'cold-bedrock'), { timeout: 20_000, interval: 200 })
      .toSatisfy(
        (object) =>
          condition(object, 'Ready')?.status === 'False' &&
          condition(object, 'Reconciling')?.reason === 'KmsUnavailable' &&
          /KMS/.test(condition(object, 'Reconciling')?.message ?? '') &&
          condition(object, 'Stalled')?.status === 'False',
      );
    await expect
      .poll(() => readyz(operators[leading]), { timeout: 10_000, interval: 200 })
      .toMatchObject({
        status: 503,
        reasons: [expect.stringMatching(/^KMS Encrypt unavailable: /)],
      });
    // The standby calls no KMS: it stays ready to take over.
    expect(await readyz(operators[standby])).toEqual({ status: 200, reasons: [] });

    for (const mode of outageModes) {
      await relay.setMode(mode);
      await dropProxyCaches();
      const held = await heldServed();
      // Decrypted before the outage, from the envelope Postgres still holds: served from memory.
      const served = await call(warm);
      expect(served, `${mode}: a key already decrypted keeps working`).toMatchObject({
        status: 200,
        body: { content: [{ text: 'Hello from the Bedrock test server' }] },
      });
      expect(await heldServed(), `${mode}: counted as served from memory`).toBe(held + 1);
      // Its envelope was written before the outage, but this replica never decrypted it.
      const failing = await refused();
      const before = await call(await keyIn('late'));
      expect(before.status, `${mode}: a key never decrypted here`).toBe(503);
      expect(before.body, `${mode}: Anthropic-shaped, naming KMS`).toMatchObject({
        type: 'error',
        error: { type: 'overloaded_error', message: expect.stringContaining('KMS is unreachable') },
        request_id: expect.any(String),
      });
      // Bounded: refused at once, or after the 5 s bound on a KMS endpoint that never answers.
      expect(before.ms, `${mode}: no hang`).toBeLessThan(mode === 'hang' ? 8_000 : 4_000);
      expect(await refused(), `${mode}: counted`).toBe(failing + 1);
      expect(await readyz(operators[leading]), `${mode}: leader not ready, naming KMS`).toMatchObject({
        status: 503,
        reasons: [expect.stringMatching(/^KMS Encrypt unavailable: /)],
      });
      expect(condition(await read('BedrockKey', 'cold-bedrock'), 'Reconciling')).toMatchObject({
        status: 'True',
        reason: 'KmsUnavailable',
      });
    }
    for (const [name, child] of [...Object.entries(operators), ['proxy', proxy] as const])
      expect(child.child.exitCode, `${name} still running`).toBeNull();
    // One Warning for the whole outage (status changes only), not one per retry.
    expect(await warnings('cold-bedrock')).toBe(1);

    await relay.setMode('pass');
    const back = performance.now();
    await expect
      .poll(() => ready('BedrockKey', 'cold-bedrock'), { timeout: (resyncSeconds + 5) * 1000, interval: 200 })
      .toMatchObject({ status: 'True', reason: 'Encrypted' });
    const resumedMs = performance.now() - back;
    expect(resumedMs).toBeLessThan(resyncSeconds * 1000);
    await expect
      .poll(() => readyz(operators[leading]), { timeout: 5_000, interval: 200 })
      .toEqual({
        status: 200,
        reasons: [],
      });
    expect(await call(await keyIn('cold'))).toMatchObject({ status: 200 });
    expect(await call(await keyIn('late'))).toMatchObject({ status: 200 });
    console.info(`KMS back → the BedrockKey written during the outage Ready after ${Math.round(resumedMs)} ms`);
  });
});

function leaseRbac(namespace: string): KubernetesObject[] {
  const metadata = { name: 'ccproxy-leader-election', namespace };
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata,
      rules: leaderElectionRules,
    } as KubernetesObject,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'ccproxy-leader-election' },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'ccproxy-operator' }],
    } as KubernetesObject,
  ];
}
