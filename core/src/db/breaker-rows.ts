import type { Queryable } from './database.ts';

export const breakerChannel = 'ccproxy_breakers';

export interface BreakerPolicy {
  /** Consecutive Plan failures that open the breaker. */
  failures: number;
  /** …within this many ms of the first one. */
  windowMs: number;
  /** How long the breaker stays open before one trial request goes to Plan. */
  openMs: number;
}

export interface BreakerRow {
  consecutiveFailures: number;
  /** First failure of the current streak (ms since epoch); the streak counts only within the window. */
  streakStartedAt: number | null;
  /** ms since epoch, or null when closed. */
  openedAt: number | null;
  trialStartedAt: number | null;
  lastFailoverAt: number | null;
}

interface Row {
  consecutive_failures: number;
  streak_started_at: Date | null;
  opened_at: Date | null;
  trial_started_at: Date | null;
  last_failover_at: Date | null;
}

const toRow = (row: Row): BreakerRow => ({
  consecutiveFailures: row.consecutive_failures,
  streakStartedAt: row.streak_started_at?.getTime() ?? null,
  openedAt: row.opened_at?.getTime() ?? null,
  trialStartedAt: row.trial_started_at?.getTime() ?? null,
  lastFailoverAt: row.last_failover_at?.getTime() ?? null,
});

const columns = 'consecutive_failures, streak_started_at, opened_at, trial_started_at, last_failover_at';

export async function readBreaker(db: Queryable, accessKeyId: string): Promise<BreakerRow | undefined> {
  const rows = await db.query<Row>(`SELECT ${columns} FROM circuit_breakers WHERE access_key_id = $1`, [accessKeyId]);
  return rows[0] === undefined ? undefined : toRow(rows[0]);
}

/**
 * Counts one Plan failure, atomically across replicas: a streak older than the window starts
 * over; reaching the threshold, or failing a half-open trial, (re)opens the breaker.
 */
export async function recordPlanFailure(
  db: Queryable,
  accessKeyId: string,
  policy: BreakerPolicy,
  reason = 'unknown',
): Promise<BreakerRow> {
  // The streak's reasons (last 20) go with the row: the breaker_events trigger copies them when it opens.
  const rows = await db.query<Row>(
    `INSERT INTO circuit_breakers AS b (access_key_id, consecutive_failures, streak_started_at, opened_at, streak_reasons)
     VALUES ($1, 1, now(), CASE WHEN $2::int <= 1 THEN now() END, ARRAY[$4::text])
     ON CONFLICT (access_key_id) DO UPDATE SET
       streak_reasons = CASE WHEN b.streak_started_at IS NULL OR b.streak_started_at < now() - make_interval(secs => $3::float8 / 1000)
                             THEN ARRAY[$4::text] ELSE (b.streak_reasons || $4::text)[greatest(1, cardinality(b.streak_reasons) - 18):] END,
       consecutive_failures = CASE WHEN b.streak_started_at IS NULL OR b.streak_started_at < now() - make_interval(secs => $3::float8 / 1000)
                                   THEN 1 ELSE b.consecutive_failures + 1 END,
       streak_started_at = CASE WHEN b.streak_started_at IS NULL OR b.streak_started_at < now() - make_interval(secs => $3::float8 / 1000)
                                THEN now() ELSE b.streak_started_at END,
       opened_at = CASE
         WHEN b.trial_started_at IS NOT NULL THEN now()
         WHEN b.opened_at IS NOT NULL THEN b.opened_at
         WHEN b.streak_started_at IS NOT NULL AND b.streak_started_at >= now() - make_interval(secs => $3::float8 / 1000)
              AND b.consecutive_failures + 1 >= $2::int THEN now()
         ELSE NULL END,
       trial_started_at = NULL,
       updated_at = now()
     RETURNING ${columns}`,
    [accessKeyId, policy.failures, policy.windowMs, reason],
  );
  return toRow(rows[0] as Row);
}

/** A Plan success closes the breaker and ends the streak. */
export async function recordPlanSuccess(db: Queryable, accessKeyId: string): Promise<void> {
  await db.query(
    `UPDATE circuit_breakers SET consecutive_failures = 0, streak_started_at = NULL, opened_at = NULL, trial_started_at = NULL,
            streak_reasons = '{}', updated_at = now()
      WHERE access_key_id = $1 AND (consecutive_failures > 0 OR opened_at IS NOT NULL OR trial_started_at IS NOT NULL)`,
    [accessKeyId],
  );
}

/**
 * Stamps a failover with the moment the proxy decided it (ms, the proxy's clock), not the moment
 * this background write lands: the admin calls a failover served when a Bedrock usage row (stamped
 * with the same clock when the request ended) is at or after it, and a late write (seen under load)
 * made a served failover look failed.
 */
export async function recordFailover(db: Queryable, accessKeyId: string, decidedAt: number): Promise<void> {
  await db.query(
    `INSERT INTO circuit_breakers (access_key_id, last_failover_at) VALUES ($1, to_timestamp($2::float8 / 1000))
     ON CONFLICT (access_key_id) DO UPDATE SET last_failover_at = to_timestamp($2::float8 / 1000), updated_at = now()`,
    [accessKeyId, decidedAt],
  );
}

/**
 * Claims the single half-open trial once the open period is over; true for exactly one caller
 * across all replicas (a trial that never reports back is re-offered after the open period).
 */
export async function claimTrial(db: Queryable, accessKeyId: string, policy: BreakerPolicy): Promise<boolean> {
  const rows = await db.query(
    `UPDATE circuit_breakers SET trial_started_at = now(), updated_at = now()
      WHERE access_key_id = $1 AND opened_at IS NOT NULL AND opened_at <= now() - make_interval(secs => $2::float8 / 1000)
        AND (trial_started_at IS NULL OR trial_started_at <= now() - make_interval(secs => $2::float8 / 1000))
      RETURNING 1`,
    [accessKeyId, policy.openMs],
  );
  return rows.length > 0;
}

/**
 * The breaker as one replica sees it. `failing`: Plan failures counted within the window, not
 * (yet) open; a streak older than the window is `closed` however many it counted, since the next
 * failure starts it over (`recordPlanFailure`) — so reading it must not keep it alive.
 */
export type BreakerState = 'closed' | 'failing' | 'open' | 'half-open';

/** Pure: a breaker row (and the time) → its state. */
export function breakerStateOf(
  row: BreakerRow | undefined,
  policy: Pick<BreakerPolicy, 'openMs' | 'windowMs'>,
  now: number,
): BreakerState {
  if (row === undefined) return 'closed';
  if (row.openedAt !== null) return now - row.openedAt < policy.openMs ? 'open' : 'half-open';
  if (row.consecutiveFailures === 0 || row.streakStartedAt === null) return 'closed';
  return now - row.streakStartedAt < policy.windowMs ? 'failing' : 'closed';
}
