import type { KeyRecord, UsageRecord } from '@ccproxy/core';
import type { Served } from '../pipeline/serve.ts';

/** The usage record of a served request, or undefined when the answer carried no usage. */
export function usageRecordOf(
  requestId: string,
  key: KeyRecord,
  served: Served,
  latencyMs: number,
): UsageRecord | undefined {
  const { result } = served;
  if (result.usage === undefined) return undefined;
  return {
    requestId,
    occurredAt: Date.now(),
    userId: key.userId,
    accessKeyId: key.accessKeyId,
    provider: served.upstream,
    failover: served.failover,
    modelRequested: result.modelRequested ?? result.modelServed ?? null,
    modelServed: result.modelServed ?? null,
    inputTokens: result.usage.input_tokens,
    outputTokens: result.usage.output_tokens,
    cacheReadTokens: result.usage.cache_read_input_tokens,
    cacheCreationTokens: result.usage.cache_creation_input_tokens,
    latencyMs,
    ttfbMs: result.ttfbMs,
    status: result.status,
    complete: result.usageComplete === true && result.outcome === 'complete',
  };
}
