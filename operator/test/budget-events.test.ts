import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { recordBudgetCrossing, upsertTeamBudget, type Database, type PendingCrossing } from '@ccproxy/core';
import { createTestDatabase, openMigratedDatabase } from '@ccproxy/test-harness';
import { BudgetEvents } from '../src/kube/budget-events.ts';
import { silent } from './kube-fixture.ts';

/**
 * Budget crossings → Events when announcing fails: a crossing whose Event cannot be recorded is
 * given back and announced by a later drain; the rest of its claimed batch is announced at once
 * (never left claimed and unsaid). Real PostgreSQL; the announcer is the seam the operator fills.
 */
describe('budget crossings announced through failures', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openMigratedDatabase({ url: await createTestDatabase(inject('postgresUrl'), 'budget_events') });
  });
  afterAll(async () => db?.close());

  const day = 86_400_000;
  const today = Math.floor(Date.now() / day) * day;

  it('announces every other crossing of the batch and retries the failed one on the next drain', async () => {
    const namespaces = ['team-e1', 'team-e2', 'team-e3'];
    for (const namespace of namespaces) {
      await upsertTeamBudget(db, { namespace, name: 'team', uid: `uid-${namespace}`, budget: { daily: { usd: 1 } } });
      await recordBudgetCrossing(db, {
        scope: `team:${namespace}`,
        namespace,
        period: 'day',
        periodStart: today,
        kind: 'Exhausted',
        percent: 100,
        message: `The daily budget of team ${namespace} is spent.`,
        resetsAt: today + day,
      });
    }
    const announced: string[] = [];
    let refuse = 'team-e1';
    const events = new BudgetEvents({
      db,
      logger: silent,
      namespace: undefined,
      pollMs: 60_000,
      announce: async (crossing: PendingCrossing & { resource: NonNullable<PendingCrossing['resource']> }) => {
        if (crossing.resource.namespace === refuse) throw new Error('events: forbidden by a webhook');
        announced.push(`${crossing.resource.kind} ${crossing.resource.namespace}/${crossing.resource.name}`);
        return true;
      },
    });
    await events.start();
    await expect.poll(() => announced.length, { timeout: 5_000 }).toBe(2);
    expect(announced.sort()).toEqual(['TeamBudget team-e2/team', 'TeamBudget team-e3/team']);
    // The failed one is still unreported; the next drain (a NOTIFY or the timer) announces it once.
    refuse = '';
    events.drain();
    await expect.poll(() => announced.length, { timeout: 5_000 }).toBe(3);
    expect(announced).toContain('TeamBudget team-e1/team');
    events.drain();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(announced).toHaveLength(3);
    await events.stop();
  });

  it('deletes crossings of periods over for a week (the table does not grow forever), keeps the rest, and never announces them', async () => {
    const crossing = (namespace: string, periodStart: number, resetsAt: number) =>
      recordBudgetCrossing(db, {
        scope: `team:${namespace}`,
        namespace,
        period: 'day',
        periodStart,
        kind: 'SoftLimit',
        percent: 80,
        message: `The daily budget of team ${namespace} is 80% spent.`,
        resetsAt,
      });
    await upsertTeamBudget(db, { namespace: 'team-p1', name: 'team', uid: 'uid-p1', budget: { daily: { usd: 1 } } });
    await crossing('team-p1', today - 9 * day, today - 8 * day);
    await crossing('team-p1', today - 6 * day, today - 5 * day);
    await crossing('team-p1', today, today + day);
    const count = async () =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM budget_crossings WHERE namespace = 'team-p1'`))[0]
        ?.n;
    expect(await count()).toBe(3);
    const announced: number[] = [];
    const events = new BudgetEvents({
      db,
      logger: silent,
      namespace: 'team-p1',
      pollMs: 60_000,
      announce: async (c) => (announced.push(c.periodStart), true),
    });
    await events.start();
    await expect.poll(count, { timeout: 5_000 }).toBe(2);
    await expect.poll(() => announced.length, { timeout: 5_000 }).toBe(2);
    expect(announced.sort()).toEqual([today - 6 * day, today]);
    await events.stop();
  });
});
