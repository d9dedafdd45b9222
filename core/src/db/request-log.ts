import type { Queryable } from './database.ts';

/** What a request ended as, from its status and completeness (the request log's outcome filter). */
export const requestOutcomes = ['ok', 'client_error', 'upstream_error', 'incomplete'] as const;
export type RequestOutcome = (typeof requestOutcomes)[number];

/** A resource reference as the admin names it: `namespace/name`. */
export interface Ref {
  namespace: string;
  name: string;
}

export interface RequestFilters {
  /** ms since epoch, inclusive. */
  from: number;
  /** ms since epoch, inclusive. */
  to: number;
  user?: Ref;
  accessKey?: Ref;
  /** `none`: the proxy answered the failure itself, no upstream was reached. */
  provider?: 'plan' | 'bedrock' | 'none';
  outcome?: RequestOutcome;
  /** Free text: every word a case-insensitive substring of the user, key (namespace/name) or model. */
  q?: string;
  /** Only these request ids (react-admin's getMany). */
  ids?: readonly string[];
}

/** Columns the log sorts by, mapped to SQL (never interpolated from input). */
export const requestSortColumns = {
  occurredAt: 't.occurred_at',
  latencyMs: 't.latency_ms',
  ttfbMs: 't.ttfb_ms',
  status: 't.status',
  costMicroUsd: 't.cost_micro_usd',
  totalTokens: '(t.input_tokens + t.output_tokens + t.cache_read_tokens + t.cache_creation_tokens)',
} as const;
export type RequestSort = keyof typeof requestSortColumns;

export interface RequestRow {
  id: string;
  occurredAt: string;
  userId: string | null;
  user: string | null;
  accessKeyId: string | null;
  accessKey: string | null;
  model: string | null;
  modelRequested: string | null;
  provider: 'plan' | 'bedrock' | null;
  failover: boolean;
  status: number | null;
  outcome: RequestOutcome;
  errorCode: string | null;
  latencyMs: number | null;
  ttfbMs: number | null;
  /** False: the request reported no usage (tokens unknown, zero here). */
  metered: boolean;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  totalTokens: number;
  /** Null: unpriced (a model the price table does not know) or not metered. */
  costMicroUsd: number | null;
}

const outcomeSql = `CASE WHEN t.status >= 500 THEN 'upstream_error' WHEN t.status >= 400 THEN 'client_error'
  WHEN t.complete THEN 'ok' ELSE 'incomplete' END`;

const outcomeWhere: Record<RequestOutcome, string> = {
  ok: 't.status < 400 AND t.complete',
  incomplete: 't.status < 400 AND NOT t.complete',
  client_error: 't.status >= 400 AND t.status < 500',
  upstream_error: 't.status >= 500',
};

/** Escapes LIKE's wildcards: the text is matched literally. */
export const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function where(filters: RequestFilters): { sql: string; params: unknown[] } {
  const params: unknown[] = [filters.from, filters.to];
  const clauses = [
    't.occurred_at >= to_timestamp($1::float8 / 1000)',
    't.occurred_at <= to_timestamp($2::float8 / 1000)',
  ];
  const add = (clause: (n: number) => string, ...values: unknown[]) => {
    params.push(...values);
    clauses.push(clause(params.length - values.length + 1));
  };
  if (filters.user !== undefined)
    add((n) => `u.namespace = $${n} AND u.name = $${n + 1}`, filters.user.namespace, filters.user.name);
  if (filters.accessKey !== undefined)
    add((n) => `k.namespace = $${n} AND k.name = $${n + 1}`, filters.accessKey.namespace, filters.accessKey.name);
  if (filters.provider === 'none') clauses.push('t.provider IS NULL');
  else if (filters.provider !== undefined) add((n) => `t.provider = $${n}`, filters.provider);
  if (filters.outcome !== undefined) clauses.push(outcomeWhere[filters.outcome]);
  if (filters.ids !== undefined) add((n) => `t.request_id = ANY($${n}::text[])`, filters.ids);
  if (filters.q !== undefined && filters.q.trim() !== '')
    for (const term of filters.q.trim().split(/\s+/))
      add(
        // concat_ws skips NULLs (a deleted user or key): the other fields still match.
        (n) => `concat_ws(' ', u.namespace || '/' || u.name, u.display_name, k.namespace || '/' || k.name,
                          t.model_served, t.model_requested) ILIKE $${n}`,
        likePattern(term),
      );
  return {
    sql: `FROM token_usage t LEFT JOIN users u ON u.id = t.user_id LEFT JOIN access_keys k ON k.id = t.access_key_id
          WHERE ${clauses.join(' AND ')}`,
    params,
  };
}

const select = `SELECT t.request_id, t.occurred_at, u.namespace AS user_namespace, u.name AS user_name,
  k.namespace AS key_namespace, k.name AS key_name, t.model_served, t.model_requested, t.provider, t.failover, t.status,
  ${outcomeSql} AS outcome, t.error_code, t.latency_ms, t.ttfb_ms, t.metered, t.input_tokens::float8 AS input_tokens,
  t.output_tokens::float8 AS output_tokens, t.cache_read_tokens::float8 AS cache_read_tokens,
  t.cache_creation_tokens::float8 AS cache_creation_tokens, t.cost_micro_usd::float8 AS cost_micro_usd`;

interface Row {
  request_id: string;
  occurred_at: Date;
  user_namespace: string | null;
  user_name: string | null;
  key_namespace: string | null;
  key_name: string | null;
  model_served: string | null;
  model_requested: string | null;
  provider: 'plan' | 'bedrock' | null;
  failover: boolean;
  status: number | null;
  outcome: RequestOutcome;
  error_code: string | null;
  latency_ms: number | null;
  ttfb_ms: number | null;
  metered: boolean;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  cost_micro_usd: number | null;
}

const refOf = (namespace: string | null, name: string | null) =>
  namespace === null || name === null ? null : `${namespace}/${name}`;

const toRequest = (row: Row): RequestRow => ({
  id: row.request_id,
  occurredAt: row.occurred_at.toISOString(),
  userId: refOf(row.user_namespace, row.user_name),
  user: row.user_name,
  accessKeyId: refOf(row.key_namespace, row.key_name),
  accessKey: row.key_name,
  model: row.model_served ?? row.model_requested,
  modelRequested: row.model_requested,
  provider: row.provider,
  failover: row.failover,
  status: row.status,
  outcome: row.outcome,
  errorCode: row.error_code,
  latencyMs: row.latency_ms,
  ttfbMs: row.ttfb_ms,
  metered: row.metered,
  inputTokens: row.input_tokens,
  outputTokens: row.output_tokens,
  cacheReadTokens: row.cache_read_tokens,
  cacheCreationTokens: row.cache_creation_tokens,
  totalTokens: row.input_tokens + row.output_tokens + row.cache_read_tokens + row.cache_creation_tokens,
  costMicroUsd: row.cost_micro_usd,
});

/** One page of the request log and the total matching the filters. */
export async function listRequests(
  db: Queryable,
  filters: RequestFilters,
  page: { sort: RequestSort; descending: boolean; start: number; end: number },
): Promise<{ rows: RequestRow[]; total: number }> {
  const { sql, params } = where(filters);
  const direction = page.descending ? 'DESC' : 'ASC';
  const [count] = await db.query<{ n: number }>(`SELECT count(*)::float8 AS n ${sql}`, params);
  const rows = await db.query<Row>(
    `${select} ${sql} ORDER BY ${requestSortColumns[page.sort]} ${direction} NULLS LAST, t.request_id ${direction}
     LIMIT ${Math.max(0, page.end - page.start)} OFFSET ${page.start}`,
    params,
  );
  return { rows: rows.map(toRequest), total: count?.n ?? 0 };
}

/**
 * Every matching request, newest first, in batches read by keyset (time, id): an export of any
 * size holds one batch in memory and sees each row once even while new requests arrive.
 */
export async function* eachRequest(db: Queryable, filters: RequestFilters, batch = 1000): AsyncGenerator<RequestRow> {
  const { sql, params } = where(filters);
  // The time as Postgres's own text (microseconds), not a JS Date (milliseconds): the keyset is exact.
  let after: { at: string; id: string } | undefined;
  for (;;) {
    const keyset =
      after === undefined
        ? ''
        : ` AND (t.occurred_at, t.request_id) < ($${params.length + 1}::timestamptz, $${params.length + 2}::text)`;
    const rows = await db.query<Row & { at: string }>(
      `${select}, t.occurred_at::text AS at ${sql}${keyset} ORDER BY t.occurred_at DESC, t.request_id DESC LIMIT ${batch}`,
      after === undefined ? params : [...params, after.at, after.id],
    );
    for (const row of rows) yield toRequest(row);
    const last = rows.at(-1);
    if (last === undefined || rows.length < batch) return;
    after = { at: last.at, id: last.request_id };
  }
}
