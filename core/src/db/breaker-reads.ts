import type { Queryable } from './database.ts';
import { breakerStateOf, type BreakerPolicy, type BreakerState } from './breaker-rows.ts';

/** One access key's breaker as the admin shows it. */
export interface BreakerSummary {
  /** The access key's resource: namespace and name. */
  namespace: string;
  name: string;
  state: BreakerState;
  consecutiveFailures: number;
  openedAt: string | null;
  /** The last failover Bedrock answered. */
  lastFailoverAt: string | null;
  /** The last failover attempt when Bedrock did not answer it (shown apart, never as a failover). */
  lastFailedFailoverAt: string | null;
}

interface Row {
  namespace: string;
  name: string;
  consecutive_failures: number;
  streak_started_at: Date | null;
  opened_at: Date | null;
  trial_started_at: Date | null;
  last_failover_at: Date | null;
  served: boolean;
}

/** Every key's breaker row, straight from Postgres: shared by every proxy replica, so current. */
export async function readBreakerSummaries(
  db: Queryable,
  policy: Pick<BreakerPolicy, 'openMs' | 'windowMs'>,
  now = Date.now(),
): Promise<BreakerSummary[]> {
  const rows = await db.query<Row>(
    // The breaker row stamps a failover when it is tried; Bedrock answered it when a Bedrock
    // failover usage row was written at or after that moment (rows are written at the end of
    // the request). An index range scan on token_usage (access_key_id, occurred_at).
    `SELECT k.namespace, k.name, b.consecutive_failures, b.streak_started_at, b.opened_at, b.trial_started_at, b.last_failover_at,
            EXISTS (SELECT 1 FROM token_usage u
                     WHERE u.access_key_id = k.id AND u.occurred_at >= b.last_failover_at
                       AND u.failover AND u.provider = 'bedrock' AND u.metered) AS served
       FROM circuit_breakers b JOIN access_keys k ON k.id = b.access_key_id`,
  );
  return rows.map((row) => ({
    namespace: row.namespace,
    name: row.name,
    state: breakerStateOf(
      {
        consecutiveFailures: row.consecutive_failures,
        streakStartedAt: row.streak_started_at?.getTime() ?? null,
        openedAt: row.opened_at?.getTime() ?? null,
        trialStartedAt: row.trial_started_at?.getTime() ?? null,
        lastFailoverAt: row.last_failover_at?.getTime() ?? null,
      },
      policy,
      now,
    ),
    consecutiveFailures: row.consecutive_failures,
    openedAt: row.opened_at?.toISOString() ?? null,
    lastFailoverAt: row.served ? (row.last_failover_at?.toISOString() ?? null) : null,
    lastFailedFailoverAt: row.served ? null : (row.last_failover_at?.toISOString() ?? null),
  }));
}
