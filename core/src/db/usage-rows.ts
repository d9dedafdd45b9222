import { buildPriceTable, costMicroUsd, type PriceTable } from '../pricing/price-table.ts';
import type { Queryable } from './database.ts';

const builtInPrices = buildPriceTable();

/**
 * One request as the proxy meters it: its token usage, or (`metered: false`) a request that
 * reported none — an error answer or a failure — kept for the request log only.
 */
export interface UsageRecord {
  requestId: string;
  /** ms since epoch. */
  occurredAt: number;
  userId: string | null;
  accessKeyId: string | null;
  /** Null when no upstream was reached (the proxy answered the failure itself). */
  provider: 'plan' | 'bedrock' | null;
  failover: boolean;
  modelRequested: string | null;
  modelServed: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  latencyMs: number;
  ttfbMs: number | null;
  status: number;
  /** False when the response ended early: the tokens are what was seen until then. */
  complete: boolean;
  /** False: no usage was reported; zero tokens, no cost, not in usage_aggregates. Absent means true (older spool lines). */
  metered?: boolean;
  /** The proxy's PRX_ code when the proxy answered the failure itself. */
  errorCode?: string | null;
}

/**
 * Inserts a batch idempotently (a `request_id` already stored is skipped) and adds exactly the
 * inserted rows to the hourly and daily aggregates, in one statement: replays and concurrent
 * writers from several replicas never count a request twice.
 */
export async function insertUsage(
  db: Queryable,
  records: readonly UsageRecord[],
  prices: PriceTable = builtInPrices,
): Promise<number> {
  if (records.length === 0) return 0;
  // Priced here, at the one place every record passes (live and replayed from the spool alike).
  const rows = records.map((record) => ({
    ...record,
    metered: record.metered !== false,
    errorCode: record.errorCode ?? null,
    costMicroUsd: usageRecordCostMicroUsd(prices, record) ?? null,
  }));
  const result = await db.query<{ inserted: string }>(
    `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
         "requestId" text, "occurredAt" float8, "userId" bigint, "accessKeyId" bigint, provider text, failover boolean,
         "modelRequested" text, "modelServed" text, "inputTokens" bigint, "outputTokens" bigint, "cacheReadTokens" bigint,
         "cacheCreationTokens" bigint, "latencyMs" float8, "ttfbMs" float8, status int, complete boolean,
         "costMicroUsd" bigint, metered boolean, "errorCode" text)
     ), inserted AS (
       INSERT INTO token_usage (request_id, occurred_at, user_id, access_key_id, provider, failover, model_requested, model_served,
                                input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, latency_ms, ttfb_ms, status, complete,
                                cost_micro_usd, metered, error_code)
       SELECT "requestId", to_timestamp("occurredAt" / 1000), "userId", "accessKeyId", provider, failover, "modelRequested", "modelServed",
              "inputTokens", "outputTokens", "cacheReadTokens", "cacheCreationTokens", round("latencyMs")::int, round("ttfbMs")::int, status, complete,
              "costMicroUsd", metered, "errorCode"
         FROM input
       ON CONFLICT (request_id) DO NOTHING
       RETURNING *
     ), buckets AS (
       SELECT b.bucket, date_trunc(b.bucket, i.occurred_at) AS bucket_start, i.*
         FROM inserted i CROSS JOIN (VALUES ('hour'), ('day')) AS b(bucket)
        WHERE i.user_id IS NOT NULL AND i.access_key_id IS NOT NULL AND i.metered
     ), aggregated AS (
       INSERT INTO usage_aggregates AS a (bucket, bucket_start, user_id, access_key_id, provider, requests, failovers,
                                          input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
                                          cost_micro_usd, unpriced_requests)
       SELECT bucket, bucket_start, user_id, access_key_id, provider, count(*), count(*) FILTER (WHERE failover),
              sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_creation_tokens),
              coalesce(sum(cost_micro_usd), 0), count(*) FILTER (WHERE cost_micro_usd IS NULL)
         FROM buckets GROUP BY bucket, bucket_start, user_id, access_key_id, provider
       ON CONFLICT (bucket, bucket_start, user_id, access_key_id, provider) DO UPDATE SET
         requests = a.requests + EXCLUDED.requests, failovers = a.failovers + EXCLUDED.failovers,
         input_tokens = a.input_tokens + EXCLUDED.input_tokens, output_tokens = a.output_tokens + EXCLUDED.output_tokens,
         cache_read_tokens = a.cache_read_tokens + EXCLUDED.cache_read_tokens, cache_creation_tokens = a.cache_creation_tokens + EXCLUDED.cache_creation_tokens,
         cost_micro_usd = a.cost_micro_usd + EXCLUDED.cost_micro_usd, unpriced_requests = a.unpriced_requests + EXCLUDED.unpriced_requests
       RETURNING 1
     )
     SELECT count(*)::text AS inserted FROM inserted`,
    [JSON.stringify(rows)],
  );
  return Number(result[0]?.inserted ?? 0);
}

/**
 * A record's cost in micro-USD as the usage store prices it (and the proxy's spend metric counts
 * it): undefined for an unmetered record or a model the table lacks.
 */
export function usageRecordCostMicroUsd(prices: PriceTable, record: UsageRecord): number | undefined {
  if (record.metered === false || record.provider === null) return undefined;
  return costMicroUsd(prices, {
    provider: record.provider,
    model: record.modelServed ?? record.modelRequested,
    occurredAt: record.occurredAt,
    inputTokens: record.inputTokens,
    outputTokens: record.outputTokens,
    cacheReadTokens: record.cacheReadTokens,
    cacheCreationTokens: record.cacheCreationTokens,
  });
}
