import type { UsageRecord } from '@ccproxy/core';

/**
 * A whole, valid usage record (a complete 200 on the Plan path, one input and one output token,
 * no user or key) with `fields` over it: what tests insert, spool or hand to the recorder.
 */
export function usageRecord(requestId: string, fields: Partial<UsageRecord> = {}): UsageRecord {
  return {
    requestId,
    occurredAt: Date.now(),
    userId: null,
    accessKeyId: null,
    provider: 'plan',
    failover: false,
    modelRequested: 'claude-sonnet-4-5-20250929',
    modelServed: 'claude-sonnet-4-5-20250929',
    inputTokens: 1,
    outputTokens: 1,
    cacheReadTokens: 0,
    cacheCreationTokens: 0,
    latencyMs: 1,
    ttfbMs: 1,
    status: 200,
    complete: true,
    ...fields,
  };
}
