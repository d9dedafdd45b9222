import type { BudgetPeriod } from '../governance/limits.ts';
import type { Queryable } from './database.ts';

/** NOTIFY channel of a new crossing (payload: its scope). */
export const budgetCrossingChannel = 'ccproxy_budget_crossings';

export type CrossingKind = 'SoftLimit' | 'Exhausted';

export interface BudgetCrossing {
  /** key:<access_keys.id>, user:<users.id> or team:<namespace> (the budget guard's scope ids). */
  scope: string;
  /** The namespace of the key, user or team. */
  namespace: string;
  period: BudgetPeriod;
  periodStart: number;
  kind: CrossingKind;
  percent: number;
  message: string;
  resetsAt: number;
}

/** Records a crossing once per scope, period and kind: a second insert (another replica, a restart) is a no-op. */
export async function recordBudgetCrossing(db: Queryable, crossing: BudgetCrossing): Promise<void> {
  await db.query(
    `INSERT INTO budget_crossings (scope, period, period_start, kind, percent, message, resets_at, namespace)
     VALUES ($1, $2, to_timestamp($3 / 1000.0), $4, $5, $6, to_timestamp($7 / 1000.0), $8)
     ON CONFLICT DO NOTHING`,
    [
      crossing.scope,
      crossing.period,
      crossing.periodStart,
      crossing.kind,
      crossing.percent,
      crossing.message,
      crossing.resetsAt,
      crossing.namespace,
    ],
  );
}

export type CrossingResourceKind = 'AccessKey' | 'ProxyUser' | 'TeamBudget';

/** A crossing with the resource whose budget it is (undefined: that resource's row is gone). */
export interface PendingCrossing extends BudgetCrossing {
  resource: { kind: CrossingResourceKind; namespace: string; name: string } | undefined;
}

/**
 * Claims up to `limit` unreported crossings (marks them reported in the same statement, so two
 * operators never both announce one) with the resource each belongs to.
 */
export async function claimBudgetCrossings(
  db: Queryable,
  namespace: string | undefined,
  limit = 100,
): Promise<PendingCrossing[]> {
  const rows = await db.query<{
    scope: string;
    crossing_namespace: string;
    period: BudgetPeriod;
    period_start: number;
    kind: CrossingKind;
    percent: number;
    message: string;
    resets_at: number;
    resource_kind: CrossingResourceKind;
    namespace: string | null;
    name: string | null;
  }>(
    `WITH claimed AS (
       UPDATE budget_crossings SET reported_at = now()
        WHERE (scope, period, period_start, kind) IN (
          SELECT b.scope, b.period, b.period_start, b.kind FROM budget_crossings b
           WHERE b.reported_at IS NULL AND ($2::text IS NULL OR b.namespace = $2)
           ORDER BY b.crossed_at LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING *
     )
     SELECT c.scope, c.namespace AS crossing_namespace, c.period, (extract(epoch FROM c.period_start) * 1000)::float8 AS period_start, c.kind,
            c.percent, c.message, (extract(epoch FROM c.resets_at) * 1000)::float8 AS resets_at,
            CASE split_part(c.scope, ':', 1) WHEN 'key' THEN 'AccessKey' WHEN 'user' THEN 'ProxyUser' ELSE 'TeamBudget' END
              AS resource_kind,
            coalesce(k.namespace, u.namespace, t.namespace) AS namespace, coalesce(k.name, u.name, t.name) AS name
       FROM claimed c
       LEFT JOIN access_keys k ON c.scope = 'key:' || k.id::text
       LEFT JOIN users u ON c.scope = 'user:' || u.id::text
       LEFT JOIN team_budgets t ON c.scope = 'team:' || t.namespace
      ORDER BY c.crossed_at`,
    [limit, namespace ?? null],
  );
  return rows.map((row) => ({
    scope: row.scope,
    namespace: row.crossing_namespace,
    period: row.period,
    periodStart: Number(row.period_start),
    kind: row.kind,
    percent: row.percent,
    message: row.message,
    resetsAt: Number(row.resets_at),
    resource:
      row.namespace === null || row.name === null
        ? undefined
        : { kind: row.resource_kind, namespace: row.namespace, name: row.name },
  }));
}

/** Gives a claimed crossing back (its Event could not be recorded): the next claim tries again. */
export async function unclaimBudgetCrossing(db: Queryable, crossing: BudgetCrossing): Promise<void> {
  await db.query(
    `UPDATE budget_crossings SET reported_at = NULL
      WHERE scope = $1 AND period = $2 AND period_start = to_timestamp($3 / 1000.0) AND kind = $4`,
    [crossing.scope, crossing.period, crossing.periodStart, crossing.kind],
  );
}

/**
 * Deletes the crossings of periods that ended more than `keepMs` ago: their insert-once key cannot
 * come again (a new period has another start) and an Event for them would be stale, so without
 * this the table only grew (one row per budget, period and kind, every day). Returns how many.
 */
export async function pruneBudgetCrossings(db: Queryable, keepMs = 7 * 86_400_000): Promise<number> {
  const rows = await db.query<{ deleted: string }>(
    `WITH gone AS (DELETE FROM budget_crossings WHERE resets_at < now() - make_interval(secs => $1 / 1000.0) RETURNING 1)
     SELECT count(*)::text AS deleted FROM gone`,
    [keepMs],
  );
  return Number(rows[0]?.deleted ?? 0);
}
