import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
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

const waitMs = 4_000;
const bundle = `
apiVersion: ccproxy.io/v1alpha1
kind: BedrockKey
metadata: { name: dev-bedrock }
spec: { accessKeyRef: { name: dev-laptop }, secretRef: { name: dev-bedrock, key: apiKey } }
---
apiVersion: ccproxy.io/v1alpha1
kind: AccessKey
metadata: { name: dev-laptop }
spec: { userRef: { name: dev }, secretName: dev-laptop-key }
---
apiVersion: v1
kind: Secret
metadata: { name: dev-bedrock }
stringData: { apiKey: bedrock-api-key-for-the-order-test }
---
apiVersion: ccproxy.io/v1alpha1
kind: ProxyUser
metadata: { name: dev }
spec: {}
`;

interface Event {
  type: string;
  reason: string;
  involvedObject: { kind: string; name: string };
}

/**
 * One `kubectl apply` of a bundle in any order — a BedrockKey before its AccessKey, an AccessKey
 * before its ProxyUser, a Secret in between — settles without a Stalled condition or a Warning
 * event; a reference that never comes turns into Stalled (and one Warning) after the documented
 * wait. The real API server, the operator as its RBAC-bound identity, real Postgres.
 */
describe('order independence', () => {
  const admin = adminConfig();
  let db: Database;
  let operator: KubeOperator;
  let namespace: string;
  let anthropic: AnthropicTestServer;
  let proxy: CcproxyProcess;

  beforeAll(async () => {
    await installCrds(admin);
    await bindOperatorRbac(admin);
    namespace = uniqueName('order');
    await ensureNamespace(admin, namespace);
    const databaseUrl = await createTestDatabase(inject('postgresUrl'), 'order');
    db = await openTestDatabase(databaseUrl);
    anthropic = await startAnthropicServer();
    proxy = await startCcproxy(['proxy'], {
      DATABASE_URL: databaseUrl,
      CCPROXY_KEY_HASHER_SECRET: hasherSecret,
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      CCPROXY_DATA_DIR: await mkdtemp(join(tmpdir(), 'ccproxy-order-proxy-')),
      CCPROXY_LOG_LEVEL: 'warn',
    });
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
      referenceWaitMs: waitMs,
      queue: { baseDelayMs: 50, maxDelayMs: 500 },
    });
    await operator.start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await anthropic?.close();
    await operator?.stop();
    await db?.close();
  });

  const events = async (): Promise<Event[]> =>
    (JSON.parse((await kubeRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/events`)).body) as { items: Event[] })
      .items;
  const answer = async (key: string) => {
    const response = await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
      headers: { 'x-api-key': 'sk-ant-dev' },
    });
    return {
      status: response.status,
      text: ((await response.json()) as { content?: Array<{ text?: string }> }).content?.[0]?.text,
    };
  };
  const conditionOf = async (kind: string, name: string, type: string) =>
    condition(await readObject(admin, kind, namespace, name), type);

  it('a bundle applied in reverse order becomes Ready without Stalled or a Warning', async () => {
    const seen = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const [kind, name] of [
          ['AccessKey', 'dev-laptop'],
          ['BedrockKey', 'dev-bedrock'],
        ] as const) {
          const stalled = await conditionOf(kind, name, 'Stalled');
          const ready = await conditionOf(kind, name, 'Ready');
          if (stalled?.status === 'True') seen.add(`${kind} Stalled ${stalled.reason}`);
          if (ready?.status === 'False') seen.add(`${kind} Ready=False ${ready.reason}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    // A pause between documents, as a slow apply or a GitOps sync makes: the waits must show.
    for (const object of objectsOf(bundle, namespace)) {
      await apply(admin, [object as KubernetesObject]);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    await expect
      .poll(
        async () =>
          [
            (await conditionOf('ProxyUser', 'dev', 'Ready'))?.status,
            (await conditionOf('AccessKey', 'dev-laptop', 'Ready'))?.status,
            (await conditionOf('BedrockKey', 'dev-bedrock', 'Ready'))?.status,
          ].join(),
        { timeout: 15_000, interval: 100 },
      )
      .toBe('True,True,True');
    watching = false;
    await watcher;
    expect([...seen].filter((s) => s.includes('Stalled'))).toEqual([]);
    // The waits were real (so the test shows the rule, not a lucky order), and said what they wait for.
    expect([...seen].some((s) => /Ready=False WaitingFor(User|AccessKey|Secret)/.test(s))).toBe(true);
    expect((await events()).filter((e) => e.type === 'Warning').map((e) => e.reason)).toEqual([]);
    // And it works: the generated Secret holds a key the proxy serves.
    const secret = (await readObject(admin, 'Secret', namespace, 'dev-laptop-key')) as
      { data?: Record<string, string> } | undefined;
    const key = Buffer.from(secret?.data?.accessKey ?? '', 'base64').toString();
    expect(key).toMatch(/^ak_/);
    await expect
      .poll(() => answer(key), { timeout: 2_000, interval: 50 })
      .toMatchObject({ status: 200, text: 'Hello from the test server' });
  });

  it('a reference that never comes: WaitingForUser (InProgress), then Stalled with one Warning', async () => {
    await apply(
      admin,
      objectsOf(
        'apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: orphan }\nspec: { userRef: { name: nobody }, secretName: orphan-key }\n',
        namespace,
      ),
    );
    await expect
      .poll(() => conditionOf('AccessKey', 'orphan', 'Ready'), { timeout: 5_000, interval: 50 })
      .toMatchObject({ status: 'False', reason: 'WaitingForUser' });
    expect(await conditionOf('AccessKey', 'orphan', 'Reconciling')).toMatchObject({ status: 'True' });
    expect(await conditionOf('AccessKey', 'orphan', 'Stalled')).toMatchObject({ status: 'False' });
    await expect
      .poll(() => conditionOf('AccessKey', 'orphan', 'Stalled'), { timeout: waitMs + 5_000, interval: 100 })
      .toMatchObject({ status: 'True', reason: 'UserNotFound' });
    // The event is recorded right after the status it announces.
    const warnings = async () =>
      (await events()).filter((e) => e.type === 'Warning' && e.involvedObject.name === 'orphan').map((e) => e.reason);
    await expect.poll(warnings, { timeout: 5_000, interval: 100 }).toEqual(['UserNotFound']);
    // Nothing was issued for it: no Secret, no row (so no key any proxy could serve).
    expect(await readObject(admin, 'Secret', namespace, 'orphan-key')).toBeUndefined();
    expect(
      await db.query('SELECT 1 FROM access_keys WHERE namespace = $1 AND name = $2', [namespace, 'orphan']),
    ).toEqual([]);
  });
});
