import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry, LocalKeyWrapper, type Database } from '@ccproxy/core';
import { KubeClient, KubeOperator } from '@ccproxy/operator/kube';
import {
  createTestDatabase,
  startAnthropicServer,
  startCcproxy,
  type AnthropicTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';
import { badSpecs, namesField } from './admission-cases.ts';
import {
  adminConfig,
  apply,
  bindOperatorRbac,
  condition,
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

const plurals = { ProxyUser: 'proxyusers', AccessKey: 'accesskeys' } as const;
/** The objects the bad specs of the table are edits of (their userRef and secretName). */
const live = { ProxyUser: 'alice', AccessKey: 'alice-laptop' } as const;

/**
 * Admission on update, on the real API server with the operator and a real proxy running: a
 * working ProxyUser and AccessKey edited into every bad spec of the admission table are refused
 * with a message naming the field, and nothing changes — the stored object (generation), its
 * conditions, its events (no Warning), its Secret, and the proxy's answer for its key.
 */
describe('admission of edits: a refused edit changes nothing', () => {
  const admin = adminConfig();
  const namespace = uniqueName('admit-edit');
  let db: Database;
  let operator: KubeOperator;
  let anthropic: AnthropicTestServer;
  let proxy: CcproxyProcess;

  beforeAll(async () => {
    await installCrds(admin);
    await bindOperatorRbac(admin);
    await ensureNamespace(admin, namespace);
    const databaseUrl = await createTestDatabase(inject('postgresUrl'), 'admit');
    db = await openTestDatabase(databaseUrl);
    operator = new KubeOperator({
      client: new KubeClient(operatorConfig(), namespace),
      db,
      hashKey,
      wrapper: new LocalKeyWrapper(randomBytes(32)),
      logger: silent,
      registry: createMetricsRegistry({ processMetrics: false }),
      rotationGraceSeconds: 60,
      publicUrl: undefined,
      breakerOpenMs: 60_000,
      namespace,
      queue: { baseDelayMs: 50, maxDelayMs: 500 },
    });
    await operator.start();
    anthropic = await startAnthropicServer();
    proxy = await startCcproxy(['proxy'], {
      DATABASE_URL: databaseUrl,
      CCPROXY_KEY_HASHER_SECRET: hasherSecret,
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      CCPROXY_DATA_DIR: await mkdtemp(join(tmpdir(), 'ccproxy-admit-proxy-')),
      CCPROXY_LOG_LEVEL: 'warn',
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await anthropic?.close();
    await operator?.stop();
    await db?.close();
  });

  const read = (kind: string, name: string) => readObject(admin, kind, namespace, name);
  const keyIn = async () =>
    Buffer.from(
      ((await read('Secret', 'alice-key')) as { data?: Record<string, string> } | undefined)?.data?.accessKey ?? '',
      'base64',
    ).toString();
  const answer = async (key: string) =>
    (
      await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
        method: 'POST',
        body: '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
        headers: { 'x-api-key': 'sk-ant-dev' },
      })
    ).status;
  const warnings = async () =>
    (
      JSON.parse((await kubeRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/events`)).body) as {
        items: Array<{ type: string; reason: string }>;
      }
    ).items
      .filter((e) => e.type === 'Warning')
      .map((e) => e.reason);
  /** `kubectl patch --type=merge` (what `kubectl edit` sends) of the spec, strict: the API server's answer. */
  const edit = async (kind: keyof typeof plurals, spec: Record<string, unknown>) => {
    const response = await kubeRequest(
      admin,
      'PATCH',
      `/apis/ccproxy.io/v1alpha1/namespaces/${namespace}/${plurals[kind]}/${live[kind]}?fieldValidation=Strict`,
      JSON.stringify({ spec }),
      'application/merge-patch+json',
    );
    return { status: response.status, message: (JSON.parse(response.body) as { message?: string }).message ?? '' };
  };

  it('refuses every bad edit naming the field; the object, its status, Secret, events and key are untouched', async () => {
    await apply(
      admin,
      objectsOf(
        `apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: alice }\nspec: {}\n---\napiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: alice-laptop }\nspec: { userRef: { name: alice }, secretName: alice-key }\n`,
        namespace,
      ),
    );
    await expect
      .poll(async () => condition(await read('AccessKey', 'alice-laptop'), 'Ready'), { timeout: 10_000, interval: 50 })
      .toMatchObject({ status: 'True', reason: 'KeyActive' });
    const key = await keyIn();
    await expect.poll(() => answer(key), { timeout: 2_000, interval: 50 }).toBe(200);
    const before = {
      user: await read('ProxyUser', 'alice'),
      key: await read('AccessKey', 'alice-laptop'),
      warnings: await warnings(),
    };

    const cases = badSpecs.filter((c) => c.kind === 'ProxyUser' || c.kind === 'AccessKey');
    expect(cases.length).toBeGreaterThan(20);
    for (const c of cases) {
      const { status, message } = await edit(c.kind as keyof typeof plurals, c.spec);
      expect([400, 422], `${c.name}: ${message}`).toContain(status);
      expect(namesField(message, c.field), `${c.name}: ${message} names ${c.field}`).toBe(true);
    }

    // Nothing was stored, so nothing moved: same generation and spec, same conditions, same
    // Secret and key, no Warning, and the proxy still serves the key.
    const after = { user: await read('ProxyUser', 'alice'), key: await read('AccessKey', 'alice-laptop') };
    for (const kind of ['user', 'key'] as const) {
      expect(after[kind]?.metadata?.generation, kind).toBe(before[kind]?.metadata?.generation);
      expect(after[kind]?.spec, kind).toEqual(before[kind]?.spec);
      expect(after[kind]?.status?.conditions, kind).toEqual(before[kind]?.status?.conditions);
    }
    expect(await keyIn()).toBe(key);
    expect(await warnings()).toEqual(before.warnings);
    expect(await answer(key)).toBe(200);
  });
});
