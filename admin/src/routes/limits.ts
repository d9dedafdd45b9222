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

/** The spec with `changes` merged in, a null `budget` or `rateLimits` removed. */
export function mergeSpec<S extends object>(spec: S, changes: object): S {
  const merged: { budget?: unknown; rateLimits?: unknown } = { ...spec, ...changes };
  if (merged.budget === null || merged.budget === undefined) delete merged.budget;
  if (merged.rateLimits === null || merged.rateLimits === undefined) delete merged.rateLimits;
  // The schemas checked `changes` against the same resource schema the spec comes from.
  return merged as S;
}

/** What a view shows of them (null: none). */
export function limitsView(spec: { budget?: unknown; rateLimits?: unknown }) {
  return { budget: spec.budget ?? null, rateLimits: spec.rateLimits ?? null };
}
