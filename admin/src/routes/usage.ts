import { Type } from 'typebox';
import { readTopUsers, readUsageByProvider, readUsageSeries, type UsageFilter } from '@ccproxy/core';
import { badRequest } from '../errors.ts';
import { idOf, listQuery, sendPage, splitId } from '../list.ts';
import type { RoutePlugin } from '../route-deps.ts';
import { isoTime } from '../iso-time.ts';

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

/** The query's filters, checked (a real range, not too many hour buckets), for core/src/db/usage-reads.ts. */
function usageFilter(filters: Filters): UsageFilter {
  const to = filters.to === undefined ? new Date() : new Date(filters.to);
  const from = filters.from === undefined ? new Date(to.getTime() - 7 * 86_400_000) : new Date(filters.from);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()))
    throw badRequest('from/to must be ISO 8601 times', ['querystring/from: not a valid time']);
  if (from > to) throw badRequest('from must not be after to', ['querystring/from: after to']);
  if (filters.bucket === 'hour' && to.getTime() - from.getTime() > maxHourRangeMs)
    throw badRequest('hour buckets cover at most 93 days; use bucket=day', [
      'querystring/bucket: range too long for hour',
    ]);
  return {
    bucket: filters.bucket,
    from,
    to,
    ...(filters.userId === undefined ? {} : { user: splitId(filters.userId) }),
    ...(filters.accessKeyId === undefined ? {} : { accessKey: splitId(filters.accessKeyId) }),
    ...(filters.provider === undefined ? {} : { provider: filters.provider }),
    ...(filters.namespace === undefined ? {} : { namespace: filters.namespace }),
  };
}

/**
 * Usage from `usage_aggregates` (the proxy's hour/day roll-ups), never from raw token_usage:
 * dashboards stay cheap however many requests there were.
 */
export const usageRoutes: RoutePlugin = async (app, { db }) => {
  const tags = ['usage'];

  /** Tokens over time by provider: one row per bucket and provider, list-shaped for react-admin. */
  app.get('/admin/api/usage', { schema: { tags, querystring: seriesQuery } }, async (request, reply) => {
    const { query } = request;
    const series = (await readUsageSeries(db, usageFilter(query))).map(({ bucketStart, ...row }) => ({
      id: `${bucketStart.toISOString()}|${row.provider}`,
      bucketStart: bucketStart.toISOString(),
      ...row,
    }));
    return sendPage(reply, 'usage', series, query, ['id', 'bucketStart', 'provider', 'requests', 'totalTokens']);
  });

  /** Totals by provider, top users by tokens, and the failover share, for the same filters. */
  app.get('/admin/api/usage/summary', { schema: { tags, querystring: summaryQuery } }, async (request) => {
    const filter = usageFilter(request.query);
    const byProvider = await readUsageByProvider(db, filter);
    const topUsers = await readTopUsers(db, filter, request.query.limit);
    const all = byProvider.reduce(
      (acc, row) => ({ requests: acc.requests + row.requests, failovers: acc.failovers + row.failovers }),
      { requests: 0, failovers: 0 },
    );
    return {
      byProvider,
      topUsers: topUsers.map(({ user, displayName, ...totals }) => ({
        userId: user === null ? null : idOf(user.namespace, user.name),
        name: user?.name ?? '(deleted user)',
        displayName: displayName ?? '',
        ...totals,
      })),
      requests: all.requests,
      failovers: all.failovers,
      // Share of requests that Bedrock served because Plan failed (not BedrockOnly traffic).
      failoverShare: all.requests === 0 ? 0 : all.failovers / all.requests,
    };
  });
};
