import type { Queryable } from './database.ts';
import type { Ref } from './request-log.ts';
import { usageFilterClauses } from './usage-reads.ts';

export const usageDimensions = ['user', 'key', 'model', 'provider'] as const;
export type UsageDimension = (typeof usageDimensions)[number];
export const usageBuckets = ['hour', 'day', 'month'] as const;
export type UsageBucket = (typeof usageBuckets)[number];

export interface UsageBreakdownQuery {
  by: UsageDimension;
  bucket: UsageBucket;
  /** ms since epoch, inclusive (the bucket holding it is included whole). */
  from: number;
  to: number;
  user?: Ref;
  accessKey?: Ref;
  provider?: 'plan' | 'bedrock';
}

export interface UsageBreakdownRow {
  bucketStart: string;
  /** The group: `namespace/name` for a user or key, the model id, or the provider. */
  group: string;
  requests: number;
  failovers: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  totalTokens: number;
  /** Sum of the priced requests' cost; `unpricedRequests` says how many had none. */
  costMicroUsd: number;
  unpricedRequests: number;
}

const groupSql: Record<UsageDimension, string> = {
  user: `coalesce(u.namespace || '/' || u.name, '(deleted user)')`,
  key: `coalesce(k.namespace || '/' || k.name, '(deleted key)')`,
  model: `coalesce(s.model_served, s.model_requested, '(unknown model)')`,
  provider: 's.provider',
};

/**
 * Usage and cost per bucket and group. Users, keys and providers come from usage_aggregates (the
 * proxy's hour and day roll-ups; months are summed from days), so the dashboard stays cheap
 * however many requests there were. Models are not in the roll-ups: `by: model` sums the metered
 * token_usage rows of the range instead (an index range scan on occurred_at).
 */
export async function usageBreakdown(db: Queryable, query: UsageBreakdownQuery): Promise<UsageBreakdownRow[]> {
  const raw = query.by === 'model';
  const stored = query.bucket === 'hour' ? 'hour' : 'day';
  const params: unknown[] = [query.bucket, query.from, query.to];
  const clauses = raw
    ? ['s.metered', 's.user_id IS NOT NULL', 's.access_key_id IS NOT NULL']
    : [`s.bucket = '${stored}'`];
  const time = raw ? 's.occurred_at' : 's.bucket_start';
  clauses.push(
    `${time} >= date_trunc($1, to_timestamp($2::float8 / 1000), 'UTC')`,
    `${time} <= to_timestamp($3::float8 / 1000)`,
  );
  clauses.push(...usageFilterClauses('s', query, params));
  const sums = raw
    ? `count(*)::float8 AS requests, count(*) FILTER (WHERE s.failover)::float8 AS failovers,
       sum(s.input_tokens)::float8 AS input_tokens, sum(s.output_tokens)::float8 AS output_tokens,
       sum(s.cache_read_tokens)::float8 AS cache_read_tokens, sum(s.cache_creation_tokens)::float8 AS cache_creation_tokens,
       coalesce(sum(s.cost_micro_usd), 0)::float8 AS cost_micro_usd,
       count(*) FILTER (WHERE s.cost_micro_usd IS NULL)::float8 AS unpriced_requests`
    : `sum(s.requests)::float8 AS requests, sum(s.failovers)::float8 AS failovers,
       sum(s.input_tokens)::float8 AS input_tokens, sum(s.output_tokens)::float8 AS output_tokens,
       sum(s.cache_read_tokens)::float8 AS cache_read_tokens, sum(s.cache_creation_tokens)::float8 AS cache_creation_tokens,
       sum(s.cost_micro_usd)::float8 AS cost_micro_usd, sum(s.unpriced_requests)::float8 AS unpriced_requests`;
  const rows = await db.query<{
    bucket_start: Date;
    grp: string;
    requests: number;
    failovers: number;
    input_tokens: number;
    output_tokens: number;
    cache_read_tokens: number;
    cache_creation_tokens: number;
    cost_micro_usd: number;
    unpriced_requests: number;
  }>(
    `SELECT date_trunc($1, ${time}, 'UTC') AS bucket_start, ${groupSql[query.by]} AS grp, ${sums}
       FROM ${raw ? 'token_usage' : 'usage_aggregates'} s
       LEFT JOIN users u ON u.id = s.user_id LEFT JOIN access_keys k ON k.id = s.access_key_id
      WHERE ${clauses.join(' AND ')}
      GROUP BY 1, 2 ORDER BY 1, 2`,
    params,
  );
  return rows.map((row) => ({
    bucketStart: row.bucket_start.toISOString(),
    group: row.grp,
    requests: row.requests,
    failovers: row.failovers,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    cacheReadTokens: row.cache_read_tokens,
    cacheCreationTokens: row.cache_creation_tokens,
    totalTokens: row.input_tokens + row.output_tokens + row.cache_read_tokens + row.cache_creation_tokens,
    costMicroUsd: row.cost_micro_usd,
    unpricedRequests: row.unpriced_requests,
  }));
}
