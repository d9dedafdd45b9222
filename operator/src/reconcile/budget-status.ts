import {
  budgetPeriods,
  defaultSoftLimitPercent,
  microUsdPerUsd,
  periodBounds,
  periodBudget,
  readSpend,
  type Budget,
  type Queryable,
  type SpendScope,
} from '@ccproxy/core';

/**
 * `status.budget`: spend against each cap of the resource's budget, from the stored usage (every
 * proxy replica's), written on every reconcile and resync. `state` is Exhausted once a cap is
 * reached, Warning past the soft limit, Ok otherwise; undefined when the resource has no budget.
 */
export async function budgetStatus(
  db: Queryable,
  scope: SpendScope,
  budget: Budget | undefined,
  now = Date.now(),
): Promise<Record<string, unknown> | undefined> {
  if (budget === undefined) return undefined;
  const soft = budget.softLimitPercent ?? defaultSoftLimitPercent;
  const out: Record<string, unknown> = {};
  let worst = 0;
  for (const period of budgetPeriods) {
    const cap = periodBudget(budget, period);
    if (cap === undefined) continue;
    const { start, end } = periodBounds(period, now);
    const spent = await readSpend(db, scope, start, end);
    const fractions = [
      cap.usd === undefined ? 0 : cap.usd === 0 ? 1 : spent.microUsd / (cap.usd * microUsdPerUsd),
      cap.tokens === undefined ? 0 : cap.tokens === 0 ? 1 : spent.tokens / cap.tokens,
    ];
    const percent = Math.floor(Math.max(...fractions) * 100);
    worst = Math.max(worst, percent);
    out[period] = {
      spentUsd: (spent.microUsd / microUsdPerUsd).toFixed(2),
      ...(cap.usd === undefined ? {} : { limitUsd: cap.usd.toFixed(2) }),
      spentTokens: spent.tokens,
      ...(cap.tokens === undefined ? {} : { limitTokens: cap.tokens }),
      percent,
      resetsAt: new Date(end).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
  }
  if (Object.keys(out).length === 0) return undefined;
  return { state: worst >= 100 ? 'Exhausted' : worst >= soft ? 'Warning' : 'Ok', ...out };
}
