import type { BreakerState, Routing } from '@ccproxy/core';

export type { BreakerState };

/** `trial`: go to Plan as the half-open trial, if this replica wins the claim (else Bedrock). */
export type RouteDecision = 'plan' | 'bedrock' | 'trial';

/**
 * Where a request goes, as a pure function. Bedrock while the key's breaker is open, or while
 * the session is pinned by the `retry-after` of the Plan answer it failed over on (asking Plan
 * sooner would only be refused again, and rewrite the prompt cache twice). Nothing else keeps a
 * session on Bedrock: a pinned session competes for the half-open trial like any other, so a
 * lone session finds Plan again instead of paying Bedrock for the whole open period.
 */
export function decideRoute(routing: Routing, breaker: BreakerState, pinnedToBedrock: boolean): RouteDecision {
  if (routing === 'BedrockOnly') return 'bedrock';
  if (routing === 'PlanOnly') return 'plan';
  if (breaker === 'open' || pinnedToBedrock) return 'bedrock';
  return breaker === 'half-open' ? 'trial' : 'plan';
}
