import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createKeyHasher,
  createLogger,
  LocalKeyWrapper,
  migrate,
  PgliteDatabase,
  recordBudgetCrossing,
  type Database,
} from '@ccproxy/core';
import { LocalOperator } from '@ccproxy/operator';

const teamBudget = (name: string, spec: string) => `apiVersion: ccproxy.io/v1alpha1
kind: TeamBudget
metadata: { name: ${name}, namespace: team-l }
spec: ${spec}
`;

/** TeamBudget in local mode: the manifests folder's file → `team_budgets` and a status; crossings → one warning line each. */
describe('local operator: TeamBudget and budget crossings', () => {
  let dir: string;
  let db: Database;
  let operator: LocalOperator;
  const lines: Array<{ level: number; msg: string; resource?: string; reason?: string }> = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-local-tb-'));
    await mkdir(join(dir, 'manifests'));
    db = await PgliteDatabase.open();
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) },
    });
    await migrate(db, createLogger({ level: 'silent' }));
    operator = new LocalOperator({
      manifestsDir: join(dir, 'manifests'),
      dataDir: join(dir, 'data'),
      db,
      hashKey: createKeyHasher('s'.repeat(32)),
      wrapper: new LocalKeyWrapper(randomBytes(32)),
      logger,
      rotationGraceSeconds: 60,
      publicUrl: 'http://127.0.0.1:8080',
    });
  });
  afterEach(async () => {
    await operator?.stop();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the row and status; refuses another name; the row goes with the file', async () => {
    await writeFile(join(dir, 'manifests', 'team.yaml'), teamBudget('team', '{ budget: { daily: { usd: 20 } } }'));
    await writeFile(join(dir, 'manifests', 'other.yaml'), teamBudget('second', '{ budget: { daily: { usd: 5 } } }'));
    const report = await operator.sync();
    expect(report.statuses.get('TeamBudget/team-l/team')?.fields?.budget).toMatchObject({
      state: 'Ok',
      day: { spentUsd: '0.00', limitUsd: '20.00', percent: 0 },
    });
    const refused = report.statuses.get('TeamBudget/team-l/second')?.conditions.find((c) => c.type === 'Stalled');
    expect(refused).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(refused?.message).toContain('must be named team');
    expect(await db.query('SELECT namespace, name, budget FROM team_budgets')).toEqual([
      { namespace: 'team-l', name: 'team', budget: { daily: { usd: 20 }, softLimitPercent: 80 } },
    ]);
    await rm(join(dir, 'manifests', 'team.yaml'));
    await operator.sync();
    expect(await db.query('SELECT 1 FROM team_budgets')).toEqual([]);
  });

  it('logs each crossing the proxy recorded once, with its reason and the resource', async () => {
    await writeFile(join(dir, 'manifests', 'team.yaml'), teamBudget('team', '{ budget: { daily: { usd: 20 } } }'));
    await operator.sync();
    const crossing = {
      scope: 'team:team-l',
      namespace: 'team-l',
      period: 'day' as const,
      periodStart: Date.UTC(2026, 11, 7),
      kind: 'Exhausted' as const,
      percent: 101,
      message:
        'The daily budget of team team-l is spent ($20.10 spent of $20.00). It resets at 2026-12-08T00:00:00.000Z.',
      resetsAt: Date.UTC(2026, 11, 8),
    };
    // Two replicas record the same crossing: one row.
    await recordBudgetCrossing(db, crossing);
    await recordBudgetCrossing(db, { ...crossing, percent: 102 });
    lines.length = 0;
    await operator.sync();
    await operator.sync();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const logged = lines.filter((line) => line.reason !== undefined);
    expect(logged).toEqual([
      expect.objectContaining({
        level: 40,
        reason: 'BudgetExhausted',
        resource: 'TeamBudget/team-l/team',
        msg: crossing.message,
      }),
    ]);
  });
});
