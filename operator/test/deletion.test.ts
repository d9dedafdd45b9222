import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createMetricsRegistry, LocalKeyWrapper } from '@ccproxy/core';
import { finalizer, KubeClient, KubeOperator } from '@ccproxy/operator/kube';
import {
  createTestDatabase,
  startAnthropicServer,
  startCcproxy,
  startThrowawayPostgres,
  type AnthropicTestServer,
  type CcproxyProcess,
  type ThrowawayPostgres,
} from '@ccproxy/test-harness';
import {
  adminConfig,
  apply,
  bindOperatorRbac,
  condition,
  deleteObject,
  ensureNamespace,
  hasherSecret,
  hashKey,
  installCrds,
  kubeRequest,
  objectsOf,
  openTestDatabase,
  operatorConfig,
  readObject,
  silent,
  uniqueName,
} from './kube-fixture.ts';

const user = (name: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: ${name} }\nspec: {}\n`;
const key = (name: string, userName: string) =>
  `apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: ${name} }\nspec: { userRef: { name: ${userName} }, secretName: ${name}-key, routing: PlanOnly }\n`;
const ask = '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}';
/** Revocation must reach every proxy replica within this (the README's promise). */
const withinASecond = { timeout: 1_000, interval: 20 };
const gc = { timeout: 30_000, interval: 100 };

/** One operator on one namespace and database, with two real proxy processes serving what it writes. */
async function startStack(admin: ReturnType<typeof adminConfig>, databaseUrl: string, anthropic: AnthropicTestServer) {
  const namespace = uniqueName('del');
  await ensureNamespace(admin, namespace);
  const db = await openTestDatabase(databaseUrl);
  const operator = new KubeOperator({
    client: new KubeClient(operatorConfig(), namespace),
    db,
    hashKey,
    wrapper: new LocalKeyWrapper(randomBytes(32)),
    referenceWaitMs: 0,
    logger: silent,
    registry: createMetricsRegistry({ processMetrics: false }),
    // A long grace: a deleted Secret must not fall under it (a rotation by hand does).
    rotationGraceSeconds: 3600,
    publicUrl: undefined,
    breakerOpenMs: 60_000,
    namespace,
    reflector: { backoff: { baseMs: 100, maxMs: 500 } },
    queue: { baseDelayMs: 50, maxDelayMs: 500 },
  });
  await operator.start();
  const proxies = await Promise.all(
    [1, 2].map(async () =>
      startCcproxy(['proxy'], {
        DATABASE_URL: databaseUrl,
        CCPROXY_KEY_HASHER_SECRET: hasherSecret,
        ANTHROPIC_UPSTREAM_URL: anthropic.url,
        CCPROXY_DATA_DIR: await mkdtemp(join(tmpdir(), 'ccproxy-del-proxy-')),
        CCPROXY_LOG_LEVEL: 'warn',
      }),
    ),
  );
  return { namespace, db, operator, proxies };
}

/**
 * Deletion and re-creation on a real kube-apiserver with the real garbage collector
 * (kube-controller-manager from the same module), the operator running with its own RBAC only,
 * and two real proxy processes: what is deleted stops working on both within a second, and
 * nothing deleted comes back in a resource re-created under its name.
 */
describe('deletion and re-creation (Kubernetes)', () => {
  const admin = adminConfig();
  let anthropic: AnthropicTestServer;
  let stack: Awaited<ReturnType<typeof startStack>>;
  const stops: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    await installCrds(admin);
    await bindOperatorRbac(admin);
    anthropic = await startAnthropicServer();
    stack = await startStack(admin, await createTestDatabase(inject('postgresUrl'), 'deletion'), anthropic);
    stops.push(
      () => Promise.all(stack.proxies.map((p) => p.stop())),
      () => stack.operator.stop(),
      () => stack.db.close(),
    );
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await anthropic?.close();
  });

  const read = (kind: string, name: string, namespace = stack.namespace) => readObject(admin, kind, namespace, name);
  const keyIn = async (secretName: string, namespace = stack.namespace) =>
    Buffer.from(
      ((await read('Secret', secretName, namespace)) as { data?: Record<string, string> } | undefined)?.data
        ?.accessKey ?? '',
      'base64',
    ).toString();
  const answer = async (proxy: CcproxyProcess, value: string) =>
    (await fetch(`${proxy.url}/ak/${value}/v1/messages`, { method: 'POST', body: ask, headers: { 'x-api-key': 'k' } }))
      .status;
  /** The key's status on every proxy, e.g. "200 200". */
  const answers = async (value: string, proxies = stack.proxies) =>
    (await Promise.all(proxies.map((proxy) => answer(proxy, value)))).join(' ');
  const remove = (
    kind: string,
    name: string,
    propagationPolicy: 'Background' | 'Orphan' = 'Background',
    namespace = stack.namespace,
  ) => deleteObject(admin, kind, namespace, name, propagationPolicy);
  const events = async (name: string, namespace = stack.namespace) =>
    (
      JSON.parse((await kubeRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/events`)).body) as {
        items: Array<{ involvedObject: { name: string; uid: string }; reason: string; type: string; message: string }>;
      }
    ).items.filter((e) => e.involvedObject.name === name);
  /** "type reason" of the object's Events (recorded right after the status they announce: polled). */
  const eventsOf = async (name: string, namespace = stack.namespace) =>
    (await events(name, namespace)).map((e) => `${e.type} ${e.reason}`);
  const readyKey = async (name: string) => {
    await expect
      .poll(async () => condition(await read('AccessKey', name), 'Ready'), { timeout: 10_000, interval: 50 })
      .toMatchObject({ status: 'True' });
    const value = await keyIn(`${name}-key`);
    await expect.poll(() => answers(value), withinASecond).toBe('200 200');
    return value;
  };

  it('deleting a ProxyUser: its AccessKeys and Secrets go by garbage collection, the keys are refused within 1 s', async () => {
    await apply(
      admin,
      objectsOf([user('ann'), key('ann-1', 'ann'), key('ann-2', 'ann')].join('---\n'), stack.namespace),
    );
    const keys = [await readyKey('ann-1'), await readyKey('ann-2')];
    const userUid = (await read('ProxyUser', 'ann'))?.metadata?.uid;
    // Each AccessKey is owned by its user (set by the operator before any row was written).
    for (const name of ['ann-1', 'ann-2'])
      expect((await read('AccessKey', name))?.metadata?.ownerReferences).toEqual([
        { apiVersion: 'ccproxy.io/v1alpha1', kind: 'ProxyUser', name: 'ann', uid: userUid, blockOwnerDeletion: true },
      ]);

    // (This stack waits for no reference, so a key applied with its user may have warned once before.)
    const warned = async (name: string) => (await eventsOf(name)).filter((e) => e.startsWith('Warning'));
    const warnedBefore = { 'ann-1': await warned('ann-1'), 'ann-2': await warned('ann-2') };
    await remove('ProxyUser', 'ann');
    for (const value of keys) await expect.poll(() => answers(value), withinASecond).toBe('404 404');
    await expect.poll(() => read('ProxyUser', 'ann'), gc).toBeUndefined();
    // A user of the same name created at once is another user: the old keys still go, and never answer.
    await apply(admin, objectsOf(user('ann'), stack.namespace));
    for (const name of ['ann-1', 'ann-2']) {
      await expect.poll(() => read('AccessKey', name), gc).toBeUndefined();
      await expect.poll(() => read('Secret', `${name}-key`), gc).toBeUndefined();
    }
    for (const value of keys) expect(await answers(value)).toBe('404 404');
    expect(await stack.db.query('SELECT name FROM access_keys WHERE namespace = $1', [stack.namespace])).toEqual([]);
    await expect.poll(() => eventsOf('ann'), { timeout: 5_000, interval: 50 }).toContain('Normal CleanedUp');
    // Each key went through its finalizer (revoked first) without a new Warning (at most a Normal
    // UserDeleting, when its reconcile saw the user going before garbage collection reached it);
    // the new user is a user of its own.
    for (const name of ['ann-1', 'ann-2'] as const) {
      await expect.poll(() => eventsOf(name), { timeout: 5_000, interval: 50 }).toContain('Normal CleanedUp');
      expect(await warned(name)).toEqual(warnedBefore[name]);
    }
    await expect
      .poll(async () => condition(await read('ProxyUser', 'ann'), 'Ready'), { timeout: 10_000, interval: 50 })
      .toMatchObject({ status: 'True' });
    expect((await read('ProxyUser', 'ann'))?.metadata?.uid).not.toBe(userUid);
  });

  it('a user deleted with its keys orphaned and created again does not revive them: UserDeleted, refused', async () => {
    await apply(admin, objectsOf([user('bob'), key('bob-1', 'bob')].join('---\n'), stack.namespace));
    const value = await readyKey('bob-1');
    const oldUid = (await read('ProxyUser', 'bob'))?.metadata?.uid;
    // --cascade=orphan: the garbage collector strips the owner reference and leaves the key.
    await remove('ProxyUser', 'bob', 'Orphan');
    await expect.poll(() => answers(value), withinASecond).toBe('404 404');
    await expect.poll(() => read('ProxyUser', 'bob'), gc).toBeUndefined();
    await apply(admin, objectsOf(user('bob'), stack.namespace));
    await expect
      .poll(async () => condition(await read('ProxyUser', 'bob'), 'Ready'), { timeout: 10_000, interval: 50 })
      .toMatchObject({ status: 'True' });
    await expect
      .poll(async () => condition(await read('AccessKey', 'bob-1'), 'Stalled'), { timeout: 10_000, interval: 50 })
      .toMatchObject({ status: 'True', reason: 'UserDeleted', message: expect.stringContaining(String(oldUid)) });
    expect(condition(await read('AccessKey', 'bob-1'), 'Ready')).toMatchObject({ status: 'False' });
    await expect.poll(() => eventsOf('bob-1'), { timeout: 5_000, interval: 50 }).toContain('Warning UserDeleted');
    // Still refused well after the new user is Ready (a revived key would be served within ~0.1 s).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await answers(value)).toBe('404 404');
    expect(await keyIn('bob-1-key')).toBe(value); // the Secret is left alone, its key dead
  });

  it('an AccessKey deleted and re-created under its name gets a new key; the old one stays refused', async () => {
    await apply(admin, objectsOf([user('cid'), key('cid-1', 'cid')].join('---\n'), stack.namespace));
    const old = await readyKey('cid-1');
    const oldUid = (await read('AccessKey', 'cid-1'))?.metadata?.uid;
    // (This stack waits for no reference, so a key applied with its user may have warned once before.)
    const warned = async () => (await eventsOf('cid-1')).filter((e) => e.startsWith('Warning'));
    const warnedBefore = await warned();
    await remove('AccessKey', 'cid-1');
    await expect.poll(() => answers(old), withinASecond).toBe('404 404');
    await expect.poll(() => read('AccessKey', 'cid-1'), gc).toBeUndefined();
    await apply(admin, objectsOf(key('cid-1', 'cid'), stack.namespace));
    const fresh = await readyKey('cid-1');
    expect(fresh).not.toBe(old);
    expect(await answers(old)).toBe('404 404');
    const newUid = (await read('AccessKey', 'cid-1'))?.metadata?.uid;
    expect(newUid).not.toBe(oldUid);
    const secret = await read('Secret', 'cid-1-key');
    expect(secret?.metadata?.ownerReferences?.map((r) => r.uid)).toEqual([newUid]);
    expect(secret?.metadata?.annotations?.['ccproxy.io/owner-uid']).toBe(newUid);
    // The old object was cleaned up through its finalizer, the new one is active; neither warned.
    expect(condition(await read('AccessKey', 'cid-1'), 'Ready')).toMatchObject({ status: 'True', reason: 'KeyActive' });
    await expect.poll(() => eventsOf('cid-1'), { timeout: 5_000, interval: 50 }).toContain('Normal CleanedUp');
    expect(await warned()).toEqual(warnedBefore);
  });

  it('a Secret left by an earlier AccessKey of the name is never adopted: SecretNotOwned until it is gone, then a new key', async () => {
    await apply(admin, objectsOf([user('dee'), key('dee-1', 'dee')].join('---\n'), stack.namespace));
    const old = await readyKey('dee-1');
    const oldUid = (await read('AccessKey', 'dee-1'))?.metadata?.uid;
    // --cascade=orphan leaves the generated Secret behind without its owner reference.
    await remove('AccessKey', 'dee-1', 'Orphan');
    await expect.poll(() => answers(old), withinASecond).toBe('404 404');
    await expect.poll(() => read('AccessKey', 'dee-1'), gc).toBeUndefined();
    await expect.poll(async () => (await read('Secret', 'dee-1-key'))?.metadata?.ownerReferences ?? [], gc).toEqual([]);
    await apply(admin, objectsOf(key('dee-1', 'dee'), stack.namespace));
    await expect
      .poll(async () => condition(await read('AccessKey', 'dee-1'), 'Stalled'), { timeout: 10_000, interval: 50 })
      .toMatchObject({ status: 'True', reason: 'SecretNotOwned', message: expect.stringContaining(`uid ${oldUid}`) });
    await expect.poll(() => eventsOf('dee-1'), { timeout: 5_000, interval: 50 }).toContain('Warning SecretNotOwned');
    expect(await answers(old)).toBe('404 404');
    expect(await keyIn('dee-1-key')).toBe(old); // not overwritten: the operator never writes over a Secret
    await remove('Secret', 'dee-1-key');
    const fresh = await readyKey('dee-1');
    expect(fresh).not.toBe(old);
    expect(await answers(old)).toBe('404 404');
  });

  it('deleting the issued Secret rotates: a new key at once, the old one refused within 1 s on both proxies', async () => {
    await apply(admin, objectsOf([user('eve'), key('eve-1', 'eve')].join('---\n'), stack.namespace));
    const old = await readyKey('eve-1');
    const prefix = (await read('AccessKey', 'eve-1'))?.status?.keyPrefix;
    const warned = async () => (await eventsOf('eve-1')).filter((e) => e.startsWith('Warning'));
    const warnedBefore = await warned();
    const started = Date.now();
    await remove('Secret', 'eve-1-key');
    await expect.poll(() => answers(old), withinASecond).toBe('404 404');
    const refusedAfterMs = Date.now() - started;
    expect(refusedAfterMs).toBeLessThan(1_000);
    await expect.poll(() => keyIn('eve-1-key'), { timeout: 5_000, interval: 50 }).not.toBe('');
    const fresh = await keyIn('eve-1-key');
    expect(fresh).not.toBe(old);
    await expect.poll(() => answers(fresh), withinASecond).toBe('200 200');
    const accessKey = await read('AccessKey', 'eve-1');
    expect(accessKey?.status?.keyPrefix).not.toBe(prefix);
    expect(condition(accessKey, 'Ready')).toMatchObject({ status: 'True', reason: 'KeyActive' });
    // The policy (rotate) at work, not a problem: no Warning.
    expect(await warned()).toEqual(warnedBefore);
  });

  it('a finalizer that cannot revoke (Postgres down) keeps the resource, says why, and completes when Postgres returns', async () => {
    const postgres: ThrowawayPostgres = await startThrowawayPostgres();
    stops.push(() => postgres.stop());
    const own = await startStack(admin, await createTestDatabase(postgres.url, 'deletion-pg'), anthropic);
    stops.push(
      () => Promise.all(own.proxies.map((p) => p.stop())),
      () => own.operator.stop(),
      () => own.db.close(),
    );
    const ns = own.namespace;
    await apply(admin, objectsOf([user('fay'), key('fay-1', 'fay')].join('---\n'), ns));
    await expect
      .poll(async () => condition(await read('AccessKey', 'fay-1', ns), 'Ready'), { timeout: 10_000, interval: 50 })
      .toMatchObject({ status: 'True' });
    const value = await keyIn('fay-1-key', ns);
    await expect.poll(() => answers(value, own.proxies), withinASecond).toBe('200 200');

    await postgres.pause();
    await remove('AccessKey', 'fay-1', 'Background', ns);
    await expect
      .poll(async () => condition(await read('AccessKey', 'fay-1', ns), 'Reconciling'), {
        timeout: 15_000,
        interval: 100,
      })
      .toMatchObject({ status: 'True', reason: 'CleanupPending', message: expect.stringContaining(finalizer) });
    const stuck = await read('AccessKey', 'fay-1', ns);
    expect(stuck?.metadata?.deletionTimestamp).toBeDefined();
    expect(stuck?.metadata?.finalizers).toContain(finalizer);
    await expect
      .poll(() => eventsOf('fay-1', ns), { timeout: 5_000, interval: 50 })
      .toContain('Warning CleanupPending');

    await postgres.resume();
    await expect.poll(() => read('AccessKey', 'fay-1', ns), { timeout: 20_000, interval: 100 }).toBeUndefined();
    // Gone from the API only after the revocation was committed: the proxies refuse it.
    await expect.poll(() => answers(value, own.proxies), { timeout: 5_000, interval: 50 }).toBe('404 404');
    expect(await own.db.query('SELECT name FROM access_keys WHERE namespace = $1', [ns])).toEqual([]);
  });
});
