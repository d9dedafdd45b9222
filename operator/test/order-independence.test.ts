import { randomBytes } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry, LocalKeyWrapper, type Database } from '@ccproxy/core';
import { KubeClient, KubeOperator } from '@ccproxy/operator/kube';
import {
  adminConfig,
  apply,
  bindOperatorRbac,
  condition,
  ensureNamespace,
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

  beforeAll(async () => {
    await installCrds(admin);
    await bindOperatorRbac(admin);
    namespace = uniqueName('order');
    await ensureNamespace(admin, namespace);
    db = await openTestDatabase();
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
    await operator?.stop();
    await db?.close();
  });

  const events = async (): Promise<Event[]> =>
    (JSON.parse((await kubeRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/events`)).body) as { items: Event[] })
      .items;
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
  });
});
