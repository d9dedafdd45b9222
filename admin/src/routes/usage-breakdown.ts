import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import {
  buildPriceTable,
  usageBreakdown,
  usageBuckets,
  usageDimensions,
  type PriceTable,
  type Queryable,
  type UsageBreakdownQuery,
  type UsageBreakdownRow,
} from '@ccproxy/core';
import { sendCsv, type CsvValue } from '../csv.ts';
import { badRequest } from '../errors.ts';
import { listQuery, sendPage, type ListQuery } from '../list.ts';
import { csvAnswer, ownerFilters, ownersOf, rangeOf, timeRange, usd } from './observe-params.ts';

export interface UsageBreakdownDeps {
  db: Queryable;
  /** The price table the proxy prices with (CCPROXY_PRICE_TABLE_FILE), shown read-only. */
  prices?: PriceTable;
}

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((value) => Type.Literal(value)));
const breakdownFilters = {
  ...timeRange,
  ...ownerFilters,
  by: literals(usageDimensions),
  bucket: Type.Union(
    usageBuckets.map((value) => Type.Literal(value)),
    { default: 'day' },
  ),
  provider: Type.Optional(literals(['plan', 'bedrock'] as const)),
};
const sortable = ['id', 'bucketStart', 'group', 'requests', 'totalTokens', 'costMicroUsd'] as const;
// A breakdown is read whole by default (a chart), pageable like every list.
const breakdownQuery = listQuery(
  { ...breakdownFilters, _end: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 100_000 }) },
  sortable,
);
const exportQuery = Type.Object(breakdownFilters, { additionalProperties: false });

const breakdownRecord = Type.Object({
  id: Type.String(),
  bucketStart: Type.String(),
  group: Type.String(),
  requests: Type.Number(),
  failovers: Type.Number(),
  inputTokens: Type.Number(),
  outputTokens: Type.Number(),
  cacheReadTokens: Type.Number(),
  cacheCreationTokens: Type.Number(),
  totalTokens: Type.Number(),
  costMicroUsd: Type.Number(),
  unpricedRequests: Type.Number(),
});
const priceTableRecord = Type.Object({
  effectiveDate: Type.String(),
  sources: Type.Array(Type.String()),
  bedrockRegionalMultiplier: Type.Number(),
  entries: Type.Array(Type.Object({ family: Type.String(), from: Type.String(), overridden: Type.Boolean() })),
});

const maxHourRangeMs = 93 * 86_400_000;

function queryOf(query: Static<typeof exportQuery>): UsageBreakdownQuery {
  const range = rangeOf(query);
  if (query.bucket === 'hour' && range.to - range.from > maxHourRangeMs)
    throw badRequest('hour buckets cover at most 93 days; use bucket=day or month', [
      'querystring/bucket: range too long for hour',
    ]);
  return {
    by: query.by,
    bucket: query.bucket,
    ...range,
    ...ownersOf(query),
    ...(query.provider === undefined ? {} : { provider: query.provider }),
  };
}

const csvColumns: ReadonlyArray<readonly [string, (row: UsageBreakdownRow) => CsvValue]> = [
  ['bucket_start', (row) => row.bucketStart],
  ['group', (row) => row.group],
  ['requests', (row) => row.requests],
  ['failovers', (row) => row.failovers],
  ['input_tokens', (row) => row.inputTokens],
  ['output_tokens', (row) => row.outputTokens],
  ['cache_read_tokens', (row) => row.cacheReadTokens],
  ['cache_write_tokens', (row) => row.cacheCreationTokens],
  ['total_tokens', (row) => row.totalTokens],
  ['cost_usd', (row) => usd(row.costMicroUsd)],
  ['unpriced_requests', (row) => row.unpricedRequests],
];

async function* each<T>(rows: Promise<T[]>): AsyncGenerator<T> {
  yield* await rows;
}

/** Usage by user, key, model or provider over hour, day or month, with cost; and the price table itself. */
export const usageBreakdownRoutes: FastifyPluginAsync<UsageBreakdownDeps> = async (app, deps) => {
  const { db } = deps;
  const prices = deps.prices ?? buildPriceTable();
  const tags = ['usage'];

  app.get<{ Querystring: Static<typeof breakdownQuery> }>(
    '/admin/api/usage/breakdown',
    { schema: { tags, querystring: breakdownQuery, response: { 200: Type.Array(breakdownRecord) } } },
    async (request, reply) => {
      const rows = (await usageBreakdown(db, queryOf(request.query))).map((row) => ({
        id: `${row.bucketStart}|${row.group}`,
        ...row,
      }));
      const listed: ListQuery = request.query;
      return sendPage(reply, 'usage-breakdown', rows, listed, sortable);
    },
  );

  app.get<{ Querystring: Static<typeof exportQuery> }>(
    '/admin/api/usage/breakdown.csv',
    {
      schema: {
        tags,
        querystring: exportQuery,
        response: { 200: csvAnswer('one header line, then one line per bucket and group') },
      },
    },
    async (request, reply) => {
      const query = queryOf(request.query);
      return sendCsv(reply, `usage-by-${query.by}.csv`, csvColumns, each(usageBreakdown(db, query)));
    },
  );

  app.get(
    '/admin/api/prices',
    {
      schema: {
        tags,
        querystring: Type.Object({}, { additionalProperties: false }),
        response: { 200: priceTableRecord },
      },
    },
    async () => prices,
  );
};
