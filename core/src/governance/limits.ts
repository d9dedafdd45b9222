/**
 * Budgets and rate limits as the proxy applies them: the shapes of `spec.budget` and
 * `spec.rateLimits` (ProxyUser, AccessKey) and `spec.budget` (TeamBudget), stored verbatim as
 * jsonb (`users.limits`, `access_keys.limits`, `team_budgets.budget`). The resource schemas
 * (operator/src/resources.ts) validate them; this side only reads.
 */
export interface PeriodBudget {
  /** Spend cap in USD (priced by core/src/pricing). */
  readonly usd?: number;
  /** Token cap: input + output + cache read + cache write tokens. */
  readonly tokens?: number;
}

export type BudgetPeriod = 'day' | 'month';
export const budgetPeriods: readonly BudgetPeriod[] = ['day', 'month'];

export interface Budget {
  readonly daily?: PeriodBudget;
  readonly monthly?: PeriodBudget;
  /** Percent of a budget at which requests carry a warning (header, metric, condition); default 80. */
  readonly softLimitPercent?: number;
}

export interface RateLimitSet {
  readonly requestsPerMinute?: number;
  readonly inputTokensPerMinute?: number;
  readonly outputTokensPerMinute?: number;
  readonly concurrentStreams?: number;
}

export interface RateLimits extends RateLimitSet {
  /** Limits on the requests Bedrock serves (failover, or BedrockOnly): the shared Bedrock quota. */
  readonly bedrock?: RateLimitSet;
}

export interface Limits {
  readonly budget?: Budget;
  readonly rateLimits?: RateLimits;
}

export const defaultSoftLimitPercent = 80;

export function periodBudget(budget: Budget | undefined, period: BudgetPeriod): PeriodBudget | undefined {
  const value = period === 'day' ? budget?.daily : budget?.monthly;
  return value !== undefined && (value.usd !== undefined || value.tokens !== undefined) ? value : undefined;
}

/** The UTC period containing `now`: [start, end) in ms since epoch. Days start at 00:00 UTC, months on the 1st. */
export function periodBounds(period: BudgetPeriod, now: number): { start: number; end: number } {
  const date = new Date(now);
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth();
  if (period === 'month') return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) };
  const d = date.getUTCDate();
  return { start: Date.UTC(y, m, d), end: Date.UTC(y, m, d + 1) };
}

export const microUsdPerUsd = 1_000_000;
