import type { Budget } from '../governance/limits.ts';
import type { Queryable } from './database.ts';

/** Whose spend: an access key, a user (all their keys), or a team (every user of a namespace). */
export type SpendScope =
  { kind: 'key'; id: string } | { kind: 'user'; id: string } | { kind: 'team'; namespace: string };

export interface Spend {
  microUsd: number;
  tokens: number;
}

/**
 * Spend of `scope` in [start, end) from the hourly aggregates (hours are whole in every time zone
 * with a whole-hour offset, so a UTC day or month is a set of hour buckets whatever the server's
 * TimeZone; day buckets follow the server's zone). Every replica's stored usage is in there.
 */
export async function readSpend(db: Queryable, scope: SpendScope, start: number, end: number): Promise<Spend> {
  const where =
    scope.kind === 'key'
      ? 'a.access_key_id = $3'
      : scope.kind === 'user'
        ? 'a.user_id = $3'
        : 'a.user_id IN (SELECT id FROM users WHERE namespace = $3)';
  const rows = await db.query<{ micro_usd: string; tokens: string }>(
    `SELECT coalesce(sum(a.cost_micro_usd), 0)::text AS micro_usd,
            coalesce(sum(a.input_tokens + a.output_tokens + a.cache_read_tokens + a.cache_creation_tokens), 0)::text AS tokens
       FROM usage_aggregates a
      WHERE a.bucket = 'hour' AND a.bucket_start >= to_timestamp($1 / 1000.0) AND a.bucket_start < to_timestamp($2 / 1000.0)
        AND ${where}`,
    [start, end, scope.kind === 'team' ? scope.namespace : scope.id],
  );
  return { microUsd: Number(rows[0]?.micro_usd ?? 0), tokens: Number(rows[0]?.tokens ?? 0) };
}

/**
 * Leases up to `want` requests of `scope`'s window, never past `limit` in total across replicas
 * (a conditional upsert: the row lock orders concurrent leases). Returns how many were granted.
 */
export async function leaseRequests(
  db: Queryable,
  scope: string,
  windowStart: number,
  want: number,
  limit: number,
): Promise<number> {
  const rows = await db.query<{ granted: number }>(
    `WITH current AS (
       SELECT coalesce((SELECT requests FROM rate_windows WHERE scope = $1 AND window_start = to_timestamp($2 / 1000.0)), 0) AS used
     ), wanted AS (
       SELECT LEAST($3::bigint, $4::bigint - used) AS n FROM current
     ), leased AS (
       INSERT INTO rate_windows AS w (scope, window_start, requests)
       SELECT $1, to_timestamp($2 / 1000.0), n FROM wanted WHERE n > 0
       ON CONFLICT (scope, window_start) DO UPDATE SET requests = w.requests + EXCLUDED.requests
         WHERE w.requests + EXCLUDED.requests <= $4
       RETURNING 1
     )
     SELECT n::int AS granted FROM wanted WHERE EXISTS (SELECT 1 FROM leased)`,
    [scope, windowStart, want, limit],
  );
  return rows[0]?.granted ?? 0;
}

export interface TokenDelta {
  scope: string;
  windowStart: number;
  inputTokens: number;
  outputTokens: number;
}

export interface WindowTotals {
  scope: string;
  windowStart: number;
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

/** Adds token deltas (one statement for every scope) and returns each window's totals across replicas. */
export async function addWindowTokens(db: Queryable, deltas: readonly TokenDelta[]): Promise<WindowTotals[]> {
  if (deltas.length === 0) return [];
  const rows = await db.query<{
    scope: string;
    ws: number;
    requests: string;
    input_tokens: string;
    output_tokens: string;
  }>(
    `INSERT INTO rate_windows AS w (scope, window_start, input_tokens, output_tokens)
     SELECT d.scope, to_timestamp(d.ws / 1000.0), d.i, d.o
       FROM jsonb_to_recordset($1::jsonb) AS d(scope text, ws float8, i bigint, o bigint)
     ON CONFLICT (scope, window_start) DO UPDATE
       SET input_tokens = w.input_tokens + EXCLUDED.input_tokens, output_tokens = w.output_tokens + EXCLUDED.output_tokens
     RETURNING w.scope, (extract(epoch FROM w.window_start) * 1000)::float8 AS ws, w.requests::text,
               w.input_tokens::text, w.output_tokens::text`,
    [JSON.stringify(deltas.map((d) => ({ scope: d.scope, ws: d.windowStart, i: d.inputTokens, o: d.outputTokens })))],
  );
  return rows.map((row) => ({
    scope: row.scope,
    windowStart: Number(row.ws),
    requests: Number(row.requests),
    inputTokens: Number(row.input_tokens),
    outputTokens: Number(row.output_tokens),
  }));
}

/** Forgets windows older than `before` (ms since epoch). */
export async function pruneRateWindows(db: Queryable, before: number): Promise<void> {
  await db.query('DELETE FROM rate_windows WHERE window_start < to_timestamp($1 / 1000.0)', [before]);
}

export async function claimStreamSlot(
  db: Queryable,
  scope: string,
  slot: string,
  limit: number,
  leaseMs: number,
): Promise<boolean> {
  const rows = await db.query<{ ok: boolean }>('SELECT ccproxy_claim_stream_slot($1, $2, $3, $4) AS ok', [
    scope,
    slot,
    limit,
    leaseMs,
  ]);
  return rows[0]?.ok === true;
}

export async function releaseStreamSlots(db: Queryable, slots: readonly string[]): Promise<void> {
  if (slots.length > 0) await db.query('DELETE FROM stream_slots WHERE slot = ANY($1::text[])', [slots]);
}

/** Extends the leases of the slots this replica still holds. */
export async function renewStreamSlots(db: Queryable, slots: readonly string[], leaseMs: number): Promise<void> {
  if (slots.length === 0) return;
  await db.query(
    'UPDATE stream_slots SET expires_at = clock_timestamp() + make_interval(secs => $2 / 1000.0) WHERE slot = ANY($1::text[])',
    [slots, leaseMs],
  );
}

export async function readTeamBudgets(db: Queryable): Promise<Map<string, Budget>> {
  const rows = await db.query<{ namespace: string; budget: Budget }>('SELECT namespace, budget FROM team_budgets');
  return new Map(rows.map((row) => [row.namespace, row.budget]));
}

export async function upsertTeamBudget(
  db: Queryable,
  row: { namespace: string; name: string; uid: string; budget: Budget },
): Promise<void> {
  await db.query(
    `INSERT INTO team_budgets (namespace, name, uid, budget) VALUES ($1, $2, $3, $4)
     ON CONFLICT (namespace) DO UPDATE SET name = EXCLUDED.name, uid = EXCLUDED.uid, budget = EXCLUDED.budget, updated_at = now()
     WHERE (team_budgets.name, team_budgets.uid, team_budgets.budget) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.uid, EXCLUDED.budget)`,
    [row.namespace, row.name, row.uid, JSON.stringify(row.budget)],
  );
}

export async function deleteTeamBudget(db: Queryable, namespace: string, name: string): Promise<void> {
  await db.query('DELETE FROM team_budgets WHERE namespace = $1 AND name = $2', [namespace, name]);
}
