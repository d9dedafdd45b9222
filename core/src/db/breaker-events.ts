import type { Queryable } from './database.ts';
import { likePattern, type Ref } from './request-log.ts';

/** One time a key's breaker opened (the breaker_events trigger writes it; see migration 70). */
export interface BreakerEvent {
  id: string;
  accessKeyId: string;
  openedAt: string;
  /** Null while still open (or half-open). */
  closedAt: string | null;
  /** How long it stayed open (until now while open), ms. */
  openMs: number;
  /** Consecutive Plan failures that opened it. */
  failures: number;
  /** Why: each failure's reason (`status_529`, `unreachable`), oldest first. */
  reasons: string[];
  /** Half-open trials that failed and opened it again. */
  reopened: number;
  /** Requests Bedrock served for the key while it was open. */
  bedrockRequests: number;
}

export interface BreakerEventFilters {
  accessKey?: Ref;
  /** ms since epoch: events open at any time in [from, to]. */
  from?: number;
  to?: number;
  /** Free text: every word a case-insensitive substring of the key (namespace/name) or a reason. */
  q?: string;
}

/** One page by opening time; the total matching for paging. */
export async function listBreakerEvents(
  db: Queryable,
  filters: BreakerEventFilters,
  page: { start: number; end: number; descending: boolean },
): Promise<{ rows: BreakerEvent[]; total: number }> {
  const direction = page.descending ? 'DESC' : 'ASC';
  const params: unknown[] = [];
  const clauses = ['true'];
  if (filters.accessKey !== undefined) {
    params.push(filters.accessKey.namespace, filters.accessKey.name);
    clauses.push(`k.namespace = $${params.length - 1} AND k.name = $${params.length}`);
  }
  if (filters.from !== undefined) {
    params.push(filters.from);
    clauses.push(`coalesce(e.closed_at, now()) >= to_timestamp($${params.length}::float8 / 1000)`);
  }
  if (filters.to !== undefined) {
    params.push(filters.to);
    clauses.push(`e.opened_at <= to_timestamp($${params.length}::float8 / 1000)`);
  }
  for (const term of filters.q
    ?.trim()
    .split(/\s+/)
    .filter((word) => word !== '') ?? []) {
    params.push(likePattern(term));
    clauses.push(`(k.namespace || '/' || k.name || ' ' || array_to_string(e.reasons, ' ')) ILIKE $${params.length}`);
  }
  const from = `FROM breaker_events e JOIN access_keys k ON k.id = e.access_key_id WHERE ${clauses.join(' AND ')}`;
  const [count] = await db.query<{ n: number }>(`SELECT count(*)::float8 AS n ${from}`, params);
  const rows = await db.query<{
    id: string;
    namespace: string;
    name: string;
    opened_at: Date;
    closed_at: Date | null;
    open_ms: number;
    failures: number;
    reasons: string[];
    reopened: number;
    bedrock_requests: number;
  }>(
    // Requests served by Bedrock as failovers while open: a range scan on token_usage (access_key_id, occurred_at).
    `SELECT e.id::text, k.namespace, k.name, e.opened_at, e.closed_at, e.failures, e.reasons, e.reopened,
            (extract(epoch FROM coalesce(e.closed_at, now()) - e.opened_at) * 1000)::float8 AS open_ms,
            (SELECT count(*) FROM token_usage t
              WHERE t.access_key_id = e.access_key_id AND t.occurred_at >= e.opened_at
                AND t.occurred_at <= coalesce(e.closed_at, now()) AND t.provider = 'bedrock' AND t.failover)::float8 AS bedrock_requests
       ${from} ORDER BY e.opened_at ${direction}, e.id ${direction} LIMIT ${Math.max(0, page.end - page.start)} OFFSET ${page.start}`,
    params,
  );
  return {
    total: count?.n ?? 0,
    rows: rows.map((row) => ({
      id: row.id,
      accessKeyId: `${row.namespace}/${row.name}`,
      openedAt: row.opened_at.toISOString(),
      closedAt: row.closed_at?.toISOString() ?? null,
      openMs: Math.round(row.open_ms),
      failures: row.failures,
      reasons: row.reasons,
      reopened: row.reopened,
      bedrockRequests: row.bedrock_requests,
    })),
  };
}
