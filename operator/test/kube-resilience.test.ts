import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry, findKeyByHash, type Database } from '@ccproxy/core';
import { KubeClient, KubeOperator } from '@ccproxy/operator/kube';
import {
  createTestDatabase,
  freePort,
  operatorToken,
  startAnthropicServer,
  startCcproxy,
  startThrowawayKubeApiserver,
  startThrowawayPostgres,
  type CcproxyProcess,
  type ThrowawayKubeApiserver,
} from '@ccproxy/test-harness';
import {
  apply,
  awsEnv,
  bindOperatorRbac,
  condition,
  ensureNamespace,
  hasherSecret,
  hashKey,
  installCrds,
  kmsKey,
  kubeConfig,
  kubeRequest,
  leaseNamespace,
  objectsOf,
  openTestDatabase,
  readObject,
  silent,
  uniqueName,
} from './kube-fixture.ts';

const user = (name: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ${name} }\nspec: {}\n`;
const key = (name: string, userName = 'dev') =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: ${name} }\nspec: { userRef: { name: ${userName} }, secretName: ${name}-key }\n`;

/**
 * The operator keeps its promises when its surroundings fail: the API server goes away and
 * comes back, Postgres goes away, the operator is killed mid-work, and a second replica takes
 * over from a dead leader. Its own API server, so pausing it disturbs no other test file.
 */
describe('operator resilience', () => {
  let kube: ThrowawayKubeApiserver;
  let dir: string;
  let kms: Awaited<ReturnType<typeof kmsKey>>;
  const processes: CcproxyProcess[] = [];

  beforeAll(async () => {
    kube = await startThrowawayKubeApiserver({ extraUsers: [{ token: operatorToken, user: 'ccproxy-operator' }] });
    const admin = kubeConfig(kube.kubeconfigYaml);
    await installCrds(admin);
    await bindOperatorRbac(admin);
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-resilience-'));
    await writeFile(join(dir, 'kubeconfig'), kube.kubeconfigFor(operatorToken));
    kms = await kmsKey();
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await kube?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const admin = () => kubeConfig(kube.kubeconfigYaml);
  const readyOf = async (namespace: string, kind: string, name: string) =>
    condition(await readObject(admin(), kind, namespace, name), 'Ready');
  const allReady = async (namespace: string, names: string[]) =>
    (await Promise.all(names.map((name) => readyOf(namespace, 'AccessKey', name)))).filter((c) => c?.status === 'True')
      .length;
  const inProcess = (db: Database, namespace: string) =>
    new KubeOperator({
      client: new KubeClient(kubeConfig(kube.kubeconfigFor(operatorToken)), namespace),
      db,
      hashKey,
      wrapper: kms.wrapper,
      logger: silent,
      registry: createMetricsRegistry({ processMetrics: false }),
      rotationGraceSeconds: 60,
      publicUrl: undefined,
      breakerOpenMs: 60_000,
      namespace,
      reflector: { backoff: { baseMs: 100, maxMs: 500 } },
      queue: { baseDelayMs: 50, maxDelayMs: 500 },
    });
  const startOperator = async (databaseUrl: string, namespace: string, podName: string) => {
    const port = await freePort();
    const child = await startCcproxy(['operator'], {
      ...awsEnv(),
      KUBECONFIG: join(dir, 'kubeconfig'),
      DATABASE_URL: databaseUrl,
      CCPROXY_KEY_HASHER_SECRET: hasherSecret,
      CCPROXY_KMS_KEY_ID: kms.keyId,
      CCPROXY_WATCH_NAMESPACE: namespace,
      CCPROXY_OPERATOR_NAMESPACE: leaseNamespace,
      POD_NAME: podName,
      CCPROXY_LEASE_DURATION_SECONDS: '3',
      PORT: String(port),
      CCPROXY_OPERATOR_PORT: String(port),
      CCPROXY_LOG_LEVEL: 'warn',
    });
    processes.push(child);
    return child;
  };

  it('recovers when the API server dies and comes back, without a restart', async () => {
    const namespace = uniqueName('apidown');
    await ensureNamespace(admin(), namespace);
    const db = await openTestDatabase();
    const operator = inProcess(db, namespace);
    await operator.start();
    try {
      await apply(admin(), objectsOf(user('dev') + '---\n' + key('before'), namespace));
      await expect.poll(() => allReady(namespace, ['before']), { timeout: 10_000, interval: 100 }).toBe(1);
      await kube.pause();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await kube.resume();
      await apply(admin(), objectsOf(key('after'), namespace));
      await expect.poll(() => allReady(namespace, ['before', 'after']), { timeout: 20_000, interval: 100 }).toBe(2);
      const restarts = await operator.metrics.watchRestarts.get();
      expect(restarts.values.reduce((sum, v) => sum + v.value, 0)).toBeGreaterThan(0);
    } finally {
      await operator.stop();
      await db.close();
    }
  });

  it('says so in status while Postgres is down, and recovers without intervention', async () => {
    const postgres = await startThrowawayPostgres();
    const namespace = uniqueName('pgdown');
    await ensureNamespace(admin(), namespace);
    const db = await openTestDatabase(postgres.url);
    const operator = inProcess(db, namespace);
    await operator.start();
    try {
      await apply(admin(), objectsOf(user('dev'), namespace));
      await expect
        .poll(() => readyOf(namespace, 'ProxyUser', 'dev'), { timeout: 10_000, interval: 100 })
        .toMatchObject({ status: 'True' });
      await postgres.pause();
      await apply(admin(), objectsOf(key('waiting'), namespace));
      await expect
        .poll(async () => condition(await readObject(admin(), 'AccessKey', namespace, 'waiting'), 'Reconciling'), {
          timeout: 10_000,
          interval: 100,
        })
        .toMatchObject({ status: 'True', reason: 'DependencyUnavailable' });
      expect(await readyOf(namespace, 'AccessKey', 'waiting')).toMatchObject({ status: 'False' });
      await postgres.resume();
      await expect
        .poll(() => readyOf(namespace, 'AccessKey', 'waiting'), { timeout: 20_000, interval: 100 })
        .toMatchObject({ status: 'True' });
      expect(condition(await readObject(admin(), 'AccessKey', namespace, 'waiting'), 'Reconciling')).toMatchObject({
        status: 'False',
      });
    } finally {
      await operator.stop();
      await db.close();
      await postgres.stop();
    }
  });

  it('loses no key and duplicates no row when the operator is killed mid-work and restarted', async () => {
    const namespace = uniqueName('restart');
    await ensureNamespace(admin(), namespace);
    const databaseUrl = await createTestDatabase(inject('postgresUrl'), 'restart');
    const names = Array.from({ length: 15 }, (_, i) => `key-${i}`);
    const first = await startOperator(databaseUrl, namespace, 'op-restart-1');
    await apply(admin(), objectsOf([user('dev'), ...names.map((name) => key(name))].join('---\n'), namespace));
    await expect.poll(() => allReady(namespace, names), { timeout: 15_000, interval: 20 }).toBeGreaterThan(0);
    await first.stop('SIGKILL');
    const second = await startOperator(databaseUrl, namespace, 'op-restart-2');
    await expect.poll(() => allReady(namespace, names), { timeout: 30_000, interval: 200 }).toBe(names.length);
    // A graceful stop hands the Lease back (the next test's replicas need it).
    expect(await second.stop('SIGTERM')).toBe(0);
    const db = await openTestDatabase(databaseUrl);
    try {
      const [count] = await db.query<{ rows: string; hashes: string }>(
        'SELECT count(*)::text AS rows, count(DISTINCT key_hash)::text AS hashes FROM access_keys WHERE namespace = $1',
        [namespace],
      );
      expect(count).toEqual({ rows: String(names.length), hashes: String(names.length) });
      for (const name of names) {
        const secret = (await readObject(admin(), 'Secret', namespace, `${name}-key`)) as
          { data?: { accessKey?: string } } | undefined;
        const value = Buffer.from(secret?.data?.accessKey ?? '', 'base64').toString();
        expect(await findKeyByHash(db, hashKey(value)), `${name}: the key in its Secret works`).toMatchObject({ name });
      }
    } finally {
      await db.close();
    }
  });

  it('a single replica rides out an API-server outage longer than its Lease: stays up, not ready, then resumes', async () => {
    const namespace = uniqueName('outage');
    await ensureNamespace(admin(), namespace);
    const databaseUrl = await createTestDatabase(inject('postgresUrl'), 'outage');
    const operator = await startOperator(databaseUrl, namespace, 'op-alone');
    // The data plane beside it: a proxy reads Postgres only, so what the operator issued keeps working.
    const anthropic = await startAnthropicServer();
    const proxy = await startCcproxy(['proxy'], {
      DATABASE_URL: databaseUrl,
      CCPROXY_KEY_HASHER_SECRET: hasherSecret,
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      CCPROXY_DATA_DIR: dir,
      CCPROXY_LOG_LEVEL: 'warn',
    });
    processes.push(proxy);
    const readyz = () =>
      fetch(`${operator.url}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
    const keyOf = async (name: string) =>
      Buffer.from(
        (
          (await readObject(admin(), 'Secret', namespace, `${name}-key`)) as
            { data?: { accessKey?: string } } | undefined
        )?.data?.accessKey ?? '',
        'base64',
      ).toString();
    const answer = async (value: string) =>
      (
        await fetch(`${proxy.url}/ak/${value}/v1/messages`, {
          method: 'POST',
          body: '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
          headers: { 'x-api-key': 'sk-ant-dev' },
        })
      ).status;
    await apply(admin(), objectsOf(user('dev') + '---\n' + key('before'), namespace));
    await expect.poll(() => allReady(namespace, ['before']), { timeout: 15_000, interval: 100 }).toBe(1);
    const before = await keyOf('before');
    await expect.poll(() => answer(before), { timeout: 2_000, interval: 50 }).toBe(200);
    expect(await readyz()).toBe(200);
    await kube.pause();
    try {
      // Three times the 3 s Lease: before, the replica exited once it could not renew for 2 s.
      await expect.poll(readyz, { timeout: 5_000, interval: 100 }).toBe(503);
      await new Promise((resolve) => setTimeout(resolve, 9_000));
      expect(operator.child.exitCode).toBeNull();
      expect(await readyz()).toBe(503);
      // And says why.
      expect(await (await fetch(`${operator.url}/readyz`)).json()).toEqual({
        status: 'not ready',
        reasons: [expect.stringMatching(/^API server unreachable/)],
      });
      // What it issued is served all along.
      expect(await answer(before)).toBe(200);
    } finally {
      await kube.resume();
    }
    await apply(admin(), objectsOf(key('after'), namespace));
    await expect.poll(() => allReady(namespace, ['before', 'after']), { timeout: 30_000, interval: 200 }).toBe(2);
    expect(await readyz()).toBe(200);
    expect(operator.child.exitCode).toBeNull();
    expect(operator.output.join('\n')).toContain('campaigning again');
    // Resumed in full: the new key's Secret was generated and works, the old key still works, the
    // Secret of the old one is the one it had, and nothing warned.
    const after = await keyOf('after');
    expect(after).toMatch(/^ak_/);
    await expect.poll(() => answer(after), { timeout: 2_000, interval: 50 }).toBe(200);
    expect(await answer(before)).toBe(200);
    expect(await keyOf('before')).toBe(before);
    const events = JSON.parse((await kubeRequest(admin(), 'GET', `/api/v1/namespaces/${namespace}/events`)).body) as {
      items: Array<{ type: string; reason: string }>;
    };
    expect(events.items.filter((e) => e.type === 'Warning').map((e) => e.reason)).toEqual([]);
    await anthropic.close();
    // A graceful stop hands the Lease back (the next test's replicas need it).
    expect(await operator.stop('SIGTERM')).toBe(0);
  });

  it('runs two replicas with one leader; the other takes over when the leader dies', async () => {
    const namespace = uniqueName('ha');
    await ensureNamespace(admin(), namespace);
    const databaseUrl = await createTestDatabase(inject('postgresUrl'), 'ha');
    const replicas = {
      'op-a': await startOperator(databaseUrl, namespace, 'op-a'),
      'op-b': await startOperator(databaseUrl, namespace, 'op-b'),
    };
    const holder = async () =>
      (
        (await readObject(admin(), 'Lease', leaseNamespace, 'ccproxy-operator')) as
          { spec?: { holderIdentity?: string } } | undefined
      )?.spec?.holderIdentity;
    await expect.poll(holder, { timeout: 10_000, interval: 100 }).toMatch(/^op-[ab]$/);
    await apply(admin(), objectsOf(user('dev') + '---\n' + key('first'), namespace));
    await expect.poll(() => allReady(namespace, ['first']), { timeout: 10_000, interval: 100 }).toBe(1);
    const leader = (await holder()) as keyof typeof replicas;
    const standby = leader === 'op-a' ? 'op-b' : 'op-a';
    await replicas[leader].stop('SIGKILL');
    await apply(admin(), objectsOf(key('second'), namespace));
    await expect.poll(() => allReady(namespace, ['first', 'second']), { timeout: 20_000, interval: 100 }).toBe(2);
    expect(await holder()).toBe(standby);
  });
});
