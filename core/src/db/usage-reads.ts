import type { Queryable } from './database.ts';

/** A resource named by namespace and name (the admin's ids). */
export interface ResourceName {
  namespace: string;
  name: string;
}

/** What the usage reads filter by; every value goes in as a parameter. */
export interface UsageFilter {
  bucket: 'hour' | 'day';
  from: Date;
  to: Date;
  user?: ResourceName;
  accessKey?: ResourceName;
  provider?: 'plan' | 'bedrock';
  /** One namespace's users (a team admin's dashboard). */
  namespace?: string;
}

export interface UsageTotals {
  requests: number;
  failovers: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  totalTokens: number;
}

/**
 * The user, key, namespace and provider filters of a usage read, over a usage table aliased
 * `alias` joined to users `u` and access keys `k`; their values are appended to `params`.
 * Shared by the dashboard's reads and the usage breakdown.
 */
export function usageFilterClauses(
  alias: string,
  filter: Pick<UsageFilter, 'user' | 'accessKey' | 'namespace' | 'provider'>,
  params: unknown[],
): string[] {
  const clauses: string[] = [];
  for (const [table, ref] of [
    ['u', filter.user],
    ['k', filter.accessKey],
  ] as const) {
    if (ref === undefined) continue;
    params.push(ref.namespace, ref.name);
    clauses.push(`${table}.namespace = $${params.length - 1} AND ${table}.name = $${params.length}`);
  }
  if (filter.namespace !== undefined) {
    params.push(filter.namespace);
    clauses.push(`u.namespace = $${params.length}`);
  }
  if (filter.provider !== undefined) {
    params.push(filter.provider);
    clauses.push(`${alias}.provider = $${params.length}`);
  }
  return clauses;
}

/**
 * Usage from `usage_aggregates` (the proxy's hour/day roll-ups), never from raw token_usage:
 * dashboards stay cheap however many requests there were.
 */
function where(filter: UsageFilter): { sql: string; params: unknown[] } {
  const params: unknown[] = [filter.bucket, filter.from, filter.to];
  const clauses = [
    'a.bucket = $1',
    'a.bucket_start >= date_trunc($1, $2::timestamptz)',
    'a.bucket_start <= $3',
    ...usageFilterClauses('a', filter, params),
  ];
  return {
    sql: `FROM usage_aggregates a LEFT JOIN users u ON u.id = a.user_id LEFT JOIN access_keys k ON k.id = a.access_key_id WHERE ${clauses.join(' AND ')}`,
    params,
  };
}

const sums = `sum(a.requests)::float8 AS requests, sum(a.failovers)::float8 AS failovers, sum(a.input_tokens)::float8 AS input_tokens,
  sum(a.output_tokens)::float8 AS output_tokens, sum(a.cache_read_tokens)::float8 AS cache_read_tokens, sum(a.cache_creation_tokens)::float8 AS cache_creation_tokens`;

interface SumRow {
  requests: number;
  failovers: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
}

const totals = (row: SumRow): UsageTotals => ({
  requests: row.requests,
  failovers: row.failovers,
  inputTokens: row.input_tokens,
  outputTokens: row.output_tokens,
  cacheReadTokens: row.cache_read_tokens,
  cacheCreationTokens: row.cache_creation_tokens,
  totalTokens: row.input_tokens + row.output_tokens + row.cache_read_tokens + row.cache_creation_tokens,
});

/** Tokens over time: one row per bucket and provider, oldest first. */
export async function readUsageSeries(
  db: Queryable,
  filter: UsageFilter,
): Promise<Array<UsageTotals & { bucketStart: Date; provider: string }>> {
  const { sql, params } = where(filter);
  const rows = await db.query<SumRow & { bucket_start: Date; provider: string }>(
    `SELECT a.bucket_start, a.provider, ${sums} ${sql} GROUP BY a.bucket_start, a.provider ORDER BY a.bucket_start, a.provider`,
    params,
  );
  return rows.map((row) => ({ bucketStart: row.bucket_start, provider: row.provider, ...totals(row) }));
}

/** Totals by provider. */
export async function readUsageByProvider(
  db: Queryable,
  filter: UsageFilter,
): Promise<Array<UsageTotals & { provider: string }>> {
  const { sql, params } = where(filter);
  const rows = await db.query<SumRow & { provider: string }>(
    `SELECT a.provider, ${sums} ${sql} GROUP BY a.provider ORDER BY a.provider`,
    params,
  );
  return rows.map((row) => ({ provider: row.provider, ...totals(row) }));
}

/** The `limit` users with the most tokens; a deleted user's rows have a null name. */
export async function readTopUsers(
  db: Queryable,
  filter: UsageFilter,
  limit: number,
): Promise<Array<UsageTotals & { user: ResourceName | null; displayName: string | null }>> {
  const { sql, params } = where(filter);
  params.push(Math.trunc(limit));
  const rows = await db.query<SumRow & { namespace: string | null; name: string | null; display_name: string | null }>(
    `SELECT u.namespace, u.name, u.display_name, ${sums} ${sql} GROUP BY u.namespace, u.name, u.display_name
      ORDER BY sum(a.input_tokens + a.output_tokens + a.cache_read_tokens + a.cache_creation_tokens) DESC LIMIT $${params.length}`,
    params,
  );
  return rows.map((row) => ({
    user: row.namespace === null || row.name === null ? null : { namespace: row.namespace, name: row.name },
    displayName: row.display_name,
    ...totals(row),
  }));
}
