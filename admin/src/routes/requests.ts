import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import {
  eachRequest,
  listBreakerEvents,
  listRequests,
  requestOutcomes,
  requestSortColumns,
  type Queryable,
  type RequestFilters,
  type RequestRow,
  type RequestSort,
} from '@ccproxy/core';
import { sendCsv, type CsvValue } from '../csv.ts';
import { listQuery, pageOf, sendSqlPage } from '../list.ts';
import { csvAnswer, ownerFilters, ownersOf, rangeOf, refId, timeRange, usd } from './observe-params.ts';

export interface RequestRouteDeps {
  /** Reads token_usage, breaker_events and the names of users and keys. */
  db: Queryable;
}

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((value) => Type.Literal(value)));
const sortable = Object.keys(requestSortColumns) as RequestSort[];
const requestFilters = {
  ...timeRange,
  ...ownerFilters,
  provider: Type.Optional(literals(['plan', 'bedrock', 'none'] as const)),
  outcome: Type.Optional(literals(requestOutcomes)),
};
const requestQuery = listQuery(requestFilters, sortable);
const exportQuery = Type.Object(
  { ...requestFilters, q: Type.Optional(Type.String({ maxLength: 200 })) },
  {
    additionalProperties: false,
  },
);
const breakerEventQuery = listQuery({ ...timeRange, accessKeyId: Type.Optional(refId) }, ['openedAt']);

const nullable = <T extends ReturnType<typeof Type.String | typeof Type.Number>>(schema: T) =>
  Type.Union([schema, Type.Null()]);
const requestRecord = Type.Object({
  id: Type.String(),
  occurredAt: Type.String(),
  userId: nullable(Type.String()),
  user: nullable(Type.String()),
  accessKeyId: nullable(Type.String()),
  accessKey: nullable(Type.String()),
  model: nullable(Type.String()),
  modelRequested: nullable(Type.String()),
  provider: Type.Union([Type.Literal('plan'), Type.Literal('bedrock'), Type.Null()]),
  failover: Type.Boolean(),
  status: nullable(Type.Number()),
  outcome: literals(requestOutcomes),
  errorCode: nullable(Type.String()),
  latencyMs: nullable(Type.Number()),
  ttfbMs: nullable(Type.Number()),
  metered: Type.Boolean(),
  inputTokens: Type.Number(),
  outputTokens: Type.Number(),
  cacheReadTokens: Type.Number(),
  cacheCreationTokens: Type.Number(),
  totalTokens: Type.Number(),
  costMicroUsd: nullable(Type.Number()),
});
const breakerEventRecord = Type.Object({
  id: Type.String(),
  accessKeyId: Type.String(),
  openedAt: Type.String(),
  closedAt: nullable(Type.String()),
  openMs: Type.Number(),
  failures: Type.Integer(),
  reasons: Type.Array(Type.String()),
  reopened: Type.Integer(),
  bedrockRequests: Type.Number(),
});

function filtersOf(query: Static<typeof exportQuery>): RequestFilters {
  return {
    ...rangeOf(query),
    ...ownersOf(query),
    ...(query.provider === undefined ? {} : { provider: query.provider }),
    ...(query.outcome === undefined ? {} : { outcome: query.outcome }),
    ...(query.q === undefined ? {} : { q: query.q }),
  };
}

/** The CSV's columns: what the log shows, cost in USD ("unpriced" is an empty cost with metered=true). */
const csvColumns: ReadonlyArray<readonly [string, (row: RequestRow) => CsvValue]> = [
  ['time', (row) => row.occurredAt],
  ['request_id', (row) => row.id],
  ['user', (row) => row.userId],
  ['access_key', (row) => row.accessKeyId],
  ['model', (row) => row.model],
  ['provider', (row) => row.provider ?? 'none'],
  ['failover', (row) => row.failover],
  ['status', (row) => row.status],
  ['outcome', (row) => row.outcome],
  ['error_code', (row) => row.errorCode],
  ['latency_ms', (row) => row.latencyMs],
  ['ttfb_ms', (row) => row.ttfbMs],
  ['metered', (row) => row.metered],
  ['input_tokens', (row) => row.inputTokens],
  ['output_tokens', (row) => row.outputTokens],
  ['cache_read_tokens', (row) => row.cacheReadTokens],
  ['cache_write_tokens', (row) => row.cacheCreationTokens],
  ['cost_usd', (row) => usd(row.costMicroUsd)],
];

/**
 * The request log (token_usage: one row per authenticated request, failures included; no bodies,
 * no keys) and each key's breaker history (breaker_events), paged and sorted in Postgres.
 */
export const requestRoutes: FastifyPluginAsync<RequestRouteDeps> = async (app, { db }) => {
  const tags = ['observe'];

  app.get<{ Querystring: Static<typeof requestQuery> }>(
    '/admin/api/requests',
    { schema: { tags, querystring: requestQuery, response: { 200: Type.Array(requestRecord) } } },
    async (request, reply) => {
      const { query } = request;
      const { start, end } = pageOf(query);
      const page = { start, end };
      const ids = query.id === undefined ? undefined : [query.id].flat();
      const { rows, total } = await listRequests(
        db,
        { ...filtersOf(query), ...(ids === undefined ? {} : { ids }) },
        { sort: query._sort ?? 'occurredAt', descending: (query._order ?? 'DESC') === 'DESC', ...page },
      );
      return sendSqlPage(reply, 'requests', page.start, rows, total);
    },
  );

  app.get<{ Querystring: Static<typeof exportQuery> }>(
    '/admin/api/requests.csv',
    {
      schema: {
        tags,
        querystring: exportQuery,
        response: { 200: csvAnswer('one header line, then one line per request, newest first') },
      },
    },
    async (request, reply) => sendCsv(reply, 'requests.csv', csvColumns, eachRequest(db, filtersOf(request.query))),
  );

  app.get<{ Querystring: Static<typeof breakerEventQuery> }>(
    '/admin/api/breaker-events',
    { schema: { tags, querystring: breakerEventQuery, response: { 200: Type.Array(breakerEventRecord) } } },
    async (request, reply) => {
      const { query } = request;
      const { start, end } = pageOf(query);
      const page = { start, end };
      const range = query.from === undefined && query.to === undefined ? {} : rangeOf(query);
      const filters = { ...range, ...ownersOf(query), ...(query.q === undefined ? {} : { q: query.q }) };
      const { rows, total } = await listBreakerEvents(db, filters, { ...page, descending: query._order !== 'ASC' });
      return sendSqlPage(reply, 'breaker-events', page.start, rows, total);
    },
  );
};
