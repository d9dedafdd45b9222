import type { ResourceStatus } from './conditions.ts';

/**
 * One policy's judgement, in cert-manager's shape: a reason, a message, and whether the resource
 * failed (cannot be served as specified: stalled, or waiting for something). Beside them, the
 * conditions to report and what the apply step writes. Policies are pure: they read the facts a
 * gather step collected (rows, Secrets, the source's cache) and nothing else, so every path of a
 * reconcile is table-tested without Postgres or an API server (`operator/test/policies.test.ts`).
 */
export interface Verdict<W extends string = string> {
  reason: string;
  message: string;
  failed: boolean;
  status: ResourceStatus;
  /** What the apply step does for this verdict (kind-specific: upsert, disable, revoke, …). */
  write: W;
}

/** A policy passes (undefined) or decides (a verdict); the first that decides wins. */
export type Policy<F, W extends string = string> = (facts: F) => Verdict<W> | undefined;

/** Runs the chain in order; the last policy of every chain is total, so there is always a verdict. */
export function runPolicies<F, W extends string>(chain: readonly Policy<F, W>[], facts: F): Verdict<W> {
  for (const policy of chain) {
    const verdict = policy(facts);
    if (verdict !== undefined) return verdict;
  }
  throw new Error('policy chain without a total last policy');
}

/** A verdict from the conditions a helper (`ready`, `stalled`, `missingReference`, …) computed. */
export function verdict<W extends string>(status: ResourceStatus, write: W): Verdict<W> {
  const ready = status.conditions.find((condition) => condition.type === 'Ready');
  const failed = status.conditions.some(
    (condition) => (condition.type === 'Stalled' || condition.type === 'Reconciling') && condition.status === 'True',
  );
  return { reason: ready?.reason ?? '', message: ready?.message ?? '', failed, status, write };
}
