import { ProxyError, type KeyRecord, type UsageRecord } from '@ccproxy/core';
import type { Exchange } from '../pipeline/exchange.ts';
import type { Served } from '../pipeline/serve.ts';

/**
 * The record of a served request: its usage, or, when the answer carried none (an error status
 * relayed, an answer that could not be read), a `metered: false` row for the request log.
 */
export function usageRecordOf(requestId: string, key: KeyRecord, served: Served, latencyMs: number): UsageRecord {
  const { result } = served;
  // An error answer with no tokens (the Plan reader reports zeros for one) is logged, not metered;
  // one with tokens (a 2xx the proxy found broken and answered 502) keeps them: they were billed.
  const reported = result.usage;
  const usage =
    reported === undefined ||
    (result.status >= 400 &&
      reported.input_tokens +
        reported.output_tokens +
        reported.cache_read_input_tokens +
        reported.cache_creation_input_tokens ===
        0)
      ? undefined
      : reported;
  return {
    requestId,
    occurredAt: Date.now(),
    userId: key.userId,
    accessKeyId: key.accessKeyId,
    provider: served.upstream,
    failover: served.failover,
    modelRequested: result.modelRequested ?? result.modelServed ?? null,
    modelServed: result.modelServed ?? null,
    inputTokens: usage?.input_tokens ?? 0,
    outputTokens: usage?.output_tokens ?? 0,
    cacheReadTokens: usage?.cache_read_input_tokens ?? 0,
    cacheCreationTokens: usage?.cache_creation_input_tokens ?? 0,
    latencyMs,
    ttfbMs: result.ttfbMs,
    status: result.status,
    // Without usage, complete says whether the answer itself ended whole (the log's ok vs incomplete).
    complete: result.outcome === 'complete' && (usage === undefined || result.usageComplete === true),
    ...(usage === undefined ? { metered: false } : {}),
  };
}

/**
 * The request-log row of an authenticated request that failed before it was served (the proxy
 * answered it with an error): which upstream it last tried, if any, and the proxy's code.
 */
export function failureRecordOf(exchange: Exchange, key: KeyRecord, error: unknown): UsageRecord {
  const status = error instanceof ProxyError ? error.status : 500;
  return {
    requestId: exchange.id,
    occurredAt: Date.now(),
    userId: key.userId,
    accessKeyId: key.accessKeyId,
    provider: exchange.upstream ?? null,
    failover: exchange.failover,
    modelRequested: null,
    modelServed: null,
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheCreationTokens: 0,
    latencyMs: exchange.elapsedMs,
    ttfbMs: null,
    status,
    complete: false,
    metered: false,
    errorCode: error instanceof ProxyError ? error.code : 'PRX_INTERNAL',
  };
}
