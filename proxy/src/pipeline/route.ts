import type { BreakerState, Routing } from '@ccproxy/core';

export type { BreakerState };

/** `trial`: go to Plan as the half-open trial, if this replica wins the claim (else Bedrock). */
export type RouteDecision = 'plan' | 'bedrock' | 'trial';

/**
 * Where a request goes, as a pure function. A Claude Code session that has failed over stays
 * on Bedrock while its key's Plan upstream is failing or the breaker is open: prompt caches
 * live per provider, and ping-pong would rewrite them on every switch.
 */
export function decideRoute(routing: Routing, breaker: BreakerState, stickyToBedrock: boolean): RouteDecision {
  if (routing === 'BedrockOnly') return 'bedrock';
  if (routing === 'PlanOnly') return 'plan';
  switch (breaker) {
    case 'open':
      return 'bedrock';
    case 'half-open':
      return stickyToBedrock ? 'bedrock' : 'trial';
    case 'failing':
      return stickyToBedrock ? 'bedrock' : 'plan';
    case 'closed':
      return 'plan';
  }
}
