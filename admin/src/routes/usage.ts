import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { RouteDeps } from '../app.ts';
import { badRequest } from '../errors.ts';
import { idOf, listQuery, sendPage, splitId, type ListQuery } from '../list.ts';

// A real date (month 01-12, day 01-31) and time (hours 00-23, minutes and seconds 00-59).
const isoTime = Type.String({
  maxLength: 40,
  pattern:
    '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])(T([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d(\\.\\d{1,9})?)?(Z|[+-]([01]\\d|2[0-3]):?[0-5]\\d)?)?$',
});
const refId = Type.String({
  maxLength: 320,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
});
const usageFilters = {
  from: Type.Optional(isoTime),
  to: Type.Optional(isoTime),
  bucket: Type.Union([Type.Literal('hour'), Type.Literal('day')], { default: 'hour' }),
  userId: Type.Optional(refId),
  accessKeyId: Type.Optional(refId),
  /** One namespace's users (a team admin's dashboard). */
  namespace: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' })),
  provider: Type.Optional(Type.Union([Type.Literal('plan'), Type.Literal('bedrock')])),
};
// A time series is read whole: without `_end` every bucket of the range comes back.
const seriesQuery = listQuery(
  { ...usageFilters, _end: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 100_000 }) },
  ['id', 'bucketStart', 'provider', 'requests', 'totalTokens'],
);
const summaryQuery = Type.Object(
  { ...usageFilters, limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }) },
  { additionalProperties: false },
);

const maxHourRangeMs = 93 * 86_400_000;

interface Filters {
  from?: string;
  to?: string;
  bucket: 'hour' | 'day';
  userId?: string;
  accessKeyId?: string;
  namespace?: string;
  provider?: 'plan' | 'bedrock';
}

/** The WHERE clause shared by every usage query; all values are parameters. */
function where(filters: Filters): { sql: string; params: unknown[] } {
  const to = filters.to === undefined ? new Date() : new Date(filters.to);
  const from = filters.from === undefined ? new Date(to.getTime() - 7 * 86_400_000) : new Date(filters.from);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()))
    throw badRequest('from/to must be ISO 8601 times', ['querystring/from: not a valid time']);
  if (from > to) throw badRequest('from must not be after to', ['querystring/from: after to']);
  if (filters.bucket === 'hour' && to.getTime() - from.getTime() > maxHourRangeMs)
    throw badRequest('hour buckets cover at most 93 days; use bucket=day', [
      'querystring/bucket: range too long for hour',
    ]);
  const params: unknown[] = [filters.bucket, from, to];
  const clauses = ['a.bucket = $1', 'a.bucket_start >= date_trunc($1, $2::timestamptz)', 'a.bucket_start <= $3'];
  if (filters.userId !== undefined) {
    const { namespace, name } = splitId(filters.userId);
    params.push(namespace, name);
    clauses.push(`u.namespace = $${params.length - 1} AND u.name = $${params.length}`);
  }
  if (filters.accessKeyId !== undefined) {
    const { namespace, name } = splitId(filters.accessKeyId);
    params.push(namespace, name);
    clauses.push(`k.namespace = $${params.length - 1} AND k.name = $${params.length}`);
  }
  if (filters.namespace !== undefined) {
    params.push(filters.namespace);
    clauses.push(`u.namespace = $${params.length}`);
  }
  if (filters.provider !== undefined) {
    params.push(filters.provider);
    clauses.push(`a.provider = $${params.length}`);
  }
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
const totals = (row: SumRow) => ({
  requests: row.requests,
  failovers: row.failovers,
  inputTokens: row.input_tokens,
  outputTokens: row.output_tokens,
  cacheReadTokens: row.cache_read_tokens,
  cacheCreationTokens: row.cache_creation_tokens,
  totalTokens: row.input_tokens + row.output_tokens + row.cache_read_tokens + row.cache_creation_tokens,
});

/**
 * Usage from `usage_aggregates` (the proxy's hour/day roll-ups), never from raw token_usage:
 * dashboards stay cheap however many requests there were.
 */
export function registerUsageRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { db } = deps;
  const tags = ['usage'];

  /** Tokens over time by provider: one row per bucket and provider, list-shaped for react-admin. */
  app.get('/admin/api/usage', { schema: { tags, querystring: seriesQuery } }, async (request, reply) => {
    const query = request.query as Static<typeof seriesQuery>;
    const { sql, params } = where(query);
    const rows = await db.query<SumRow & { bucket_start: Date; provider: string }>(
      `SELECT a.bucket_start, a.provider, ${sums} ${sql} GROUP BY a.bucket_start, a.provider ORDER BY a.bucket_start, a.provider`,
      params,
    );
    const series = rows.map((row) => ({
      id: `${row.bucket_start.toISOString()}|${row.provider}`,
      bucketStart: row.bucket_start.toISOString(),
      provider: row.provider,
      ...totals(row),
    }));
    return sendPage(reply, 'usage', series, query as ListQuery, [
      'id',
      'bucketStart',
      'provider',
      'requests',
      'totalTokens',
    ]);
  });

  /** Totals by provider, top users by tokens, and the failover share, for the same filters. */
  app.get('/admin/api/usage/summary', { schema: { tags, querystring: summaryQuery } }, async (request) => {
    const query = request.query as Static<typeof summaryQuery>;
    const { sql, params } = where(query);
    const byProvider = await db.query<SumRow & { provider: string }>(
      `SELECT a.provider, ${sums} ${sql} GROUP BY a.provider ORDER BY a.provider`,
      params,
    );
    const topUsers = await db.query<
      SumRow & { namespace: string | null; name: string | null; display_name: string | null }
    >(
      `SELECT u.namespace, u.name, u.display_name, ${sums} ${sql} GROUP BY u.namespace, u.name, u.display_name
        ORDER BY sum(a.input_tokens + a.output_tokens + a.cache_read_tokens + a.cache_creation_tokens) DESC LIMIT ${query.limit}`,
      params,
    );
    const all = byProvider.reduce(
      (acc, row) => ({ requests: acc.requests + row.requests, failovers: acc.failovers + row.failovers }),
      { requests: 0, failovers: 0 },
    );
    return {
      byProvider: byProvider.map((row) => ({ provider: row.provider, ...totals(row) })),
      topUsers: topUsers.map((row) => ({
        userId: row.namespace === null || row.name === null ? null : idOf(row.namespace, row.name),
        name: row.name ?? '(deleted user)',
        displayName: row.display_name ?? '',
        ...totals(row),
      })),
      requests: all.requests,
      failovers: all.failovers,
      // Share of requests that Bedrock served because Plan failed (not BedrockOnly traffic).
      failoverShare: all.requests === 0 ? 0 : all.failovers / all.requests,
    };
  });
}
