import { Type } from 'typebox';
import { budgetSpec, rateLimitsSpec } from '@ccproxy/operator';

/** `budget` and `rateLimits` of users and keys, in the resources' own schemas (one validator). */
export const limitFields = {
  budget: Type.Optional(budgetSpec),
  rateLimits: Type.Optional(rateLimitsSpec),
};

/** On an update, null removes the budget or the rate limits; absent keeps them. */
export const limitUpdateFields = {
  budget: Type.Optional(Type.Union([budgetSpec, Type.Null()])),
  rateLimits: Type.Optional(Type.Union([rateLimitsSpec, Type.Null()])),
};

/** Optional spec objects an update removes with null (absent keeps them). */
const removable = ['budget', 'rateLimits', 'identity', 'selfService'] as const;

/** The spec with `changes` merged in, a null `budget`, `rateLimits`, `identity` or `selfService` removed. */
export function mergeSpec<S extends object>(spec: S, changes: object): S {
  const merged: Record<string, unknown> = { ...(spec as Record<string, unknown>), ...changes };
  const removed = new Set<string>(removable.filter((field) => merged[field] === null || merged[field] === undefined));
  // The schemas checked `changes` against the same resource schema the spec comes from.
  return Object.fromEntries(Object.entries(merged).filter(([field]) => !removed.has(field))) as S;
}

/** What a view shows of them (null: none). */
export function limitsView(spec: { budget?: unknown; rateLimits?: unknown }) {
  return { budget: spec.budget ?? null, rateLimits: spec.rateLimits ?? null };
}
