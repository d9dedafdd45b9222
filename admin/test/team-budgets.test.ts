import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { insertUsage } from '@ccproxy/core';
import { usageRecord } from '@ccproxy/test-harness';
import { parseResource } from '@ccproxy/operator';
import { startLocalAdmin, type LocalAdmin } from './admin-fixture.ts';

let admin: LocalAdmin;
let headers: { authorization: string };

beforeAll(async () => {
  admin = await startLocalAdmin();
  headers = await admin.auth();
});
afterAll(async () => admin?.close());

const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
  admin.app.inject({
    method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
const enc = encodeURIComponent;

/**
 * Team budgets through the admin facade in local mode: a TeamBudget file the local operator
 * reconciles into `team_budgets`, its status (spend against budget) read back, and the spend of
 * users and keys beside their budgets.
 */
describe('team budgets in the admin facade (local mode)', () => {
  it("creates the namespace's TeamBudget as a file the operator reconciles; status shows the team spend", async () => {
    const created = await call('POST', '/admin/api/team-budgets', {
      namespace: 'team-b',
      description: 'Platform team',
      budget: { daily: { usd: 50 }, monthly: { tokens: 1000 }, softLimitPercent: 75 },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: 'team-b/team', namespace: 'team-b', description: 'Platform team' });
    const text = await readFile(join(admin.manifestsDir, 'team-b', 'teambudget-team.yaml'), 'utf8');
    expect(parseResource(parseAllDocuments(text)[0]?.toJS())).toHaveProperty('resource');
    const rows = await admin.db.query<{ budget: unknown }>(
      "SELECT budget FROM team_budgets WHERE namespace = 'team-b'",
    );
    expect(rows).toEqual([{ budget: { daily: { usd: 50 }, monthly: { tokens: 1000 }, softLimitPercent: 75 } }]);
    // A user and key of the team, and 800 tokens of usage: 80% of the monthly cap, past the soft limit.
    expect((await call('POST', '/admin/api/users', { namespace: 'team-b', name: 'erin' })).statusCode).toBe(201);
    const [user] = await admin.db.query<{ id: string }>("SELECT id::text FROM users WHERE name = 'erin'");
    await insertUsage(admin.db, [
      usageRecord('team-b-usage-1', { userId: user?.id ?? '', accessKeyId: '1', inputTokens: 700, outputTokens: 100 }),
    ]);
    await admin.operator.sync();
    const read = (await call('GET', `/admin/api/team-budgets/${enc('team-b/team')}`)).json() as Record<string, unknown>;
    expect(read).toMatchObject({
      ready: 'True',
      state: 'Warning',
      budget: { daily: { usd: 50 }, monthly: { tokens: 1000 }, softLimitPercent: 75 },
      budgetStatus: {
        state: 'Warning',
        day: { limitUsd: '50.00', spentTokens: 800 },
        month: { spentTokens: 800, limitTokens: 1000, percent: 80 },
      },
    });
    const list = await call('GET', '/admin/api/team-budgets?state=Warning');
    expect(list.headers['content-range']).toBe('team-budgets 0-0/1');
  });

  it('edits and deletes it (the row goes with it); refuses a second, a bad budget and a stale version', async () => {
    const id = enc('team-b/team');
    const current = (await call('GET', `/admin/api/team-budgets/${id}`)).json() as { resourceVersion: string };
    const second = await call('POST', '/admin/api/team-budgets', { namespace: 'team-b', budget: {} });
    expect(second.statusCode).toBe(409);
    for (const budget of [
      { daily: { usd: -1 } },
      { softLimitPercent: 0 },
      { monthly: { tokens: 1.5 } },
      { weekly: {} },
    ]) {
      const refused = await call('PUT', `/admin/api/team-budgets/${id}`, {
        resourceVersion: current.resourceVersion,
        budget,
      });
      expect(refused.statusCode, JSON.stringify(budget)).toBe(400);
      expect((refused.json() as { message: string }).message).toMatch(/budget/);
    }
    const updated = await call('PUT', `/admin/api/team-budgets/${id}`, {
      resourceVersion: current.resourceVersion,
      budget: { daily: { usd: 5 } },
    });
    expect(updated.statusCode).toBe(200);
    await admin.operator.sync();
    expect(
      (await admin.db.query<{ budget: unknown }>("SELECT budget FROM team_budgets WHERE namespace = 'team-b'"))[0],
    ).toEqual({ budget: { daily: { usd: 5 }, softLimitPercent: 80 } });
    const stale = await call('PUT', `/admin/api/team-budgets/${id}`, {
      resourceVersion: current.resourceVersion,
      budget: { daily: { usd: 6 } },
    });
    expect(stale.statusCode).toBe(409);
    expect((await call('DELETE', `/admin/api/team-budgets/${id}`)).statusCode).toBe(200);
    await admin.operator.sync();
    expect(await admin.db.query("SELECT 1 FROM team_budgets WHERE namespace = 'team-b'")).toEqual([]);
    expect((await call('GET', `/admin/api/team-budgets/${id}`)).statusCode).toBe(404);
  });

  it('users and keys show their spend against their budget', async () => {
    const created = await call('POST', '/admin/api/users', {
      namespace: 'team-c',
      name: 'finn',
      budget: { monthly: { tokens: 10_000 } },
    });
    expect(created.statusCode).toBe(201);
    await admin.operator.sync();
    const user = (await call('GET', `/admin/api/users/${enc('team-c/finn')}`)).json() as Record<string, unknown>;
    expect(user.budgetStatus).toMatchObject({
      state: 'Ok',
      month: { spentTokens: 0, limitTokens: 10_000, percent: 0 },
    });
    const list = (await call('GET', '/admin/api/users?namespace=team-c')).json() as Array<Record<string, unknown>>;
    expect(list[0]?.budgetStatus).toMatchObject({ state: 'Ok' });
    const none = (await call('GET', `/admin/api/users/${enc('team-b/erin')}`)).json() as Record<string, unknown>;
    expect(none.budgetStatus).toBeNull();
  });
});
