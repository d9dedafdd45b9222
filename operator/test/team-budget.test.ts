import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMetricsRegistry, recordBudgetCrossing, type Database } from '@ccproxy/core';
import { parseResource } from '@ccproxy/operator';
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
  awsEnv,
  bindOperatorRbac,
  condition,
  ensureNamespace,
  hasherSecret,
  hashKey,
  installCrds,
  kmsKey,
  kubeRequest,
  objectsOf,
  openTestDatabase,
  operatorConfig,
  readObject,
  silent,
  uniqueName,
} from './kube-fixture.ts';

interface KubeEvent {
  involvedObject: { kind: string; name: string };
  type: string;
  reason: string;
  message: string;
}

/**
 * TeamBudget on a real kube-apiserver: the CRD refuses what the schema refuses (the same cases
 * parseResource refuses in local mode), the operator writes the team's row and its status, and
 * the crossings a real `ccproxy proxy` records become one Warning Event each on the resource.
 */
describe('TeamBudget', () => {
  const admin = adminConfig();
  const namespace = uniqueName('team-budget');
  let db: Database;
  let operator: KubeOperator;
  let anthropic: AnthropicTestServer;
  let proxy: CcproxyProcess;
  let databaseUrl: string;
  let keyId: string;

  beforeAll(async () => {
    await installCrds(admin);
    await bindOperatorRbac(admin);
    await ensureNamespace(admin, namespace);
    databaseUrl = await createTestDatabase(inject('postgresUrl'), 'operator');
    db = await openTestDatabase(databaseUrl);
    const kms = await kmsKey();
    operator = new KubeOperator({
      client: new KubeClient(operatorConfig(), namespace),
      db,
      hashKey,
      wrapper: kms.wrapper,
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
    proxy = await startCcproxy(['proxy'], {
      ...awsEnv(),
      DATABASE_URL: databaseUrl,
      CCPROXY_KEY_HASHER_SECRET: hasherSecret,
      CCPROXY_KMS_KEY_ID: kms.keyId,
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      CCPROXY_DATA_DIR: await mkdtemp(join(tmpdir(), 'ccproxy-tb-proxy-')),
    });
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await operator?.stop();
    await anthropic?.close();
    await db?.close();
  });

  const read = (kind: string, name: string) => readObject(admin, kind, namespace, name);
  const teamBudget = (name: string, spec: string) =>
    `apiVersion: ccproxy.io/v1alpha1\nkind: TeamBudget\nmetadata: { name: ${name} }\nspec: ${spec}\n`;

  it('the API server and parseResource refuse the same bad TeamBudgets, naming the field', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['other', '{ budget: { daily: { usd: 10 } } }', /must be named team/],
      ['team', '{ description: x }', /spec\.budget: Required value|budget/],
      ['team', '{ budget: { daily: { usd: -1 } } }', /spec\.budget\.daily\.usd|usd/],
      ['team', '{ budget: { monthly: { tokens: 1.5 } } }', /spec\.budget\.monthly\.tokens|tokens/],
      ['team', '{ budget: { softLimitPercent: 0 } }', /spec\.budget\.softLimitPercent|softLimitPercent/],
      ['team', '{ budget: { softLimitPercent: 101 } }', /spec\.budget\.softLimitPercent|softLimitPercent/],
      ['team', '{ budget: { weekly: { usd: 1 } } }', /weekly/],
      ['team', '{ budget: {}, surprise: 1 }', /surprise/],
      ['team', '{ budget: {}, description: "a\\u0000b" }', /spec\.description|description/],
    ];
    for (const [name, spec, message] of cases) {
      const refused = await apply(admin, objectsOf(teamBudget(name, spec), namespace)).then(
        () => 'accepted',
        (error: { body?: string }) => (JSON.parse(error.body ?? '{}') as { message?: string }).message ?? '',
      );
      expect(refused, `API server: ${name} ${spec}`).toMatch(message);
      const [object] = objectsOf(teamBudget(name, spec), namespace);
      const local = parseResource(object);
      expect('problems' in local ? local.problems.join('; ') : 'accepted', `parseResource: ${name} ${spec}`).toMatch(
        message,
      );
    }
    expect(await read('TeamBudget', 'other')).toBeUndefined();
  });

  it('writes the team row and shows the team spend in status.budget', async () => {
    await apply(
      admin,
      objectsOf(
        [
          teamBudget(
            'team',
            '{ description: Platform team, budget: { daily: { tokens: 200 }, softLimitPercent: 30 } }',
          ),
          'apiVersion: ccproxy.io/v1alpha1\nkind: ProxyUser\nmetadata: { name: dana }\nspec: { displayName: Dana }',
          'apiVersion: ccproxy.io/v1alpha1\nkind: AccessKey\nmetadata: { name: dana-laptop }\nspec: { userRef: { name: dana }, secretName: dana-laptop-key, routing: PlanOnly }',
        ].join('\n---\n'),
        namespace,
      ),
    );
    await expect
      .poll(async () => condition(await read('TeamBudget', 'team'), 'Ready'), { timeout: 10_000, interval: 100 })
      .toMatchObject({ status: 'True', reason: 'Reconciled' });
    const rows = await db.query<{ name: string; budget: unknown }>(
      'SELECT name, budget FROM team_budgets WHERE namespace = $1',
      [namespace],
    );
    expect(rows).toEqual([{ name: 'team', budget: { daily: { tokens: 200 }, softLimitPercent: 30 } }]);
    expect((await read('TeamBudget', 'team'))?.status?.budget).toMatchObject({
      state: 'Ok',
      day: { spentTokens: 0, limitTokens: 200, percent: 0, resetsAt: expect.stringMatching(/T00:00:00Z$/) },
    });
    await expect
      .poll(async () => condition(await read('AccessKey', 'dana-laptop'), 'Ready'), { timeout: 10_000 })
      .toMatchObject({ status: 'True' });
    keyId =
      (
        await db.query<{ id: string }>('SELECT id::text FROM access_keys WHERE namespace = $1 AND name = $2', [
          namespace,
          'dana-laptop',
        ])
      )[0]?.id ?? '';
    expect(keyId).not.toBe('');
  });

  it('a crossing the proxy records becomes one Warning Event on the TeamBudget, with the budget and its reset time', async () => {
    const secret = (await read('Secret', 'dana-laptop-key')) as { data?: Record<string, string> } | undefined;
    const key = Buffer.from(secret?.data?.accessKey ?? '', 'base64').toString();
    const call = async () =>
      (
        await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
          method: 'POST',
          body: '{"model":"claude-sonnet-4-5-20250929","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
          headers: { 'x-api-key': 'sk-ant-dev', 'content-type': 'application/json' },
        })
      ).status;
    // 37 tokens a request: the soft limit (30% of 200) on the 2nd, the cap on the 6th; then 402s.
    const statuses: number[] = [];
    for (let i = 0; i < 12; i += 1) statuses.push(await call());
    expect(statuses).toContain(402);
    const midnight = new Date(
      Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1),
    ).toISOString();
    const budgetEvents = async () =>
      (
        JSON.parse((await kubeRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/events`)).body) as {
          items: KubeEvent[];
        }
      ).items.filter((e) => e.reason.startsWith('Budget'));
    await expect
      .poll(async () => (await budgetEvents()).map((e) => e.reason).sort(), { timeout: 15_000, interval: 200 })
      .toEqual(['BudgetExhausted', 'BudgetSoftLimit']);
    // More refused requests, and a second drain: still one Event per crossing.
    for (let i = 0; i < 5; i += 1) expect(await call()).toBe(402);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const events = await budgetEvents();
    expect(events.map((e) => `${e.involvedObject.kind}/${e.involvedObject.name} ${e.type} ${e.reason}`).sort()).toEqual(
      ['TeamBudget/team Warning BudgetExhausted', 'TeamBudget/team Warning BudgetSoftLimit'],
    );
    for (const event of events) {
      expect(event.message).toContain(`daily budget of team ${namespace}`);
      expect(event.message).toContain(midnight);
    }
    expect(events.find((e) => e.reason === 'BudgetExhausted')?.message).toMatch(/is spent \(\d+ tokens used of 200\)/);
    // The status follows at once (the Event wakes the reconcile), not at the next resync.
    await expect
      .poll(async () => ((await read('TeamBudget', 'team'))?.status?.budget as { state?: string })?.state, {
        timeout: 10_000,
      })
      .toBe('Exhausted');
    expect(
      (await db.query('SELECT 1 FROM budget_crossings WHERE reported_at IS NULL AND namespace = $1', [namespace]))
        .length,
    ).toBe(0);
  });

  it("every kind: a key's and a user's crossings land on the AccessKey and the ProxyUser, once", async () => {
    const userId =
      (await db.query<{ id: string }>('SELECT id::text FROM users WHERE namespace = $1', [namespace]))[0]?.id ?? '';
    const crossing = (scope: string, label: string) => ({
      scope,
      namespace,
      period: 'month' as const,
      periodStart: Date.UTC(2026, 11, 1),
      kind: 'SoftLimit' as const,
      percent: 81,
      message: `81% of the monthly budget of ${label} is used; it resets at 2027-01-01T00:00:00.000Z (soft limit 80%: $8.10 spent of $10.00).`,
      resetsAt: Date.UTC(2027, 0, 1),
    });
    for (const [scope, label] of [
      [`key:${keyId}`, `access key ${namespace}/dana-laptop`],
      [`user:${userId}`, `user ${namespace}/dana`],
    ] as const) {
      // Both replicas insert it: one row, one Event.
      await recordBudgetCrossing(db, crossing(scope, label));
      await recordBudgetCrossing(db, crossing(scope, label));
    }
    const soft = async () =>
      (
        JSON.parse((await kubeRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/events`)).body) as {
          items: KubeEvent[];
        }
      ).items
        .filter((e) => e.reason === 'BudgetSoftLimit' && e.involvedObject.kind !== 'TeamBudget')
        .map((e) => `${e.involvedObject.kind}/${e.involvedObject.name} ${e.type} ${e.message}`)
        .sort();
    await expect.poll(soft, { timeout: 15_000, interval: 200 }).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await soft()).toEqual([
      `AccessKey/dana-laptop Warning ${crossing('', `access key ${namespace}/dana-laptop`).message}`,
      `ProxyUser/dana Warning ${crossing('', `user ${namespace}/dana`).message}`,
    ]);
  });
});
