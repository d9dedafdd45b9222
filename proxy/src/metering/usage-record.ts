import { ProxyError, type KeyRecord, type Usage, type UsageRecord } from '@ccproxy/core';
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

/** More tokens than any one answer can have (context windows are about a million): a cap, not a guess. */
export const maxTokensPerRequest = 1_000_000_000;
const usageFields = [
  'input_tokens',
  'output_tokens',
  'cache_creation_input_tokens',
  'cache_read_input_tokens',
] as const;

/**
 * The upstream's token counts made storable, in place, for every backend: each a whole number
 * from 0 to `maxTokensPerRequest` (a negative or non-number count is 0, a fraction is rounded
 * down, a larger one is the cap). Returns the fields it changed. Without this a broken or hostile
 * upstream's `-5` made the token counter throw (the request's usage record and its rate-limit
 * settle were skipped), and its `1e300` made the usage batch insert fail on every retry (no
 * record of that replica stored again).
 */
export function sanitizeUsage(usage: Usage | undefined): string[] {
  if (usage === undefined) return [];
  const changed: string[] = [];
  for (const field of usageFields) {
    const value: unknown = usage[field];
    const sane = typeof value !== 'number' || !(value >= 0) ? 0 : Math.min(Math.floor(value), maxTokensPerRequest);
    if (sane !== value) {
      usage[field] = sane;
      changed.push(`${field}=${String(value)}`);
    }
  }
  return changed;
}
