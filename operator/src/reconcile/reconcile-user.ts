import { upsertUser, type Queryable } from '@ccproxy/core';
import type { ProxyUser } from '../resources.ts';
import { budgetStatus } from './budget-status.ts';
import { ready, type ResourceStatus } from './conditions.ts';
import { limitsOf } from './limits.ts';
import { refOf } from './object-ref.ts';
import { runPolicies, verdict, type Policy } from './policies.ts';

type P = Policy<{ spec: ProxyUser['spec'] }, 'upsert'>;

const suspended: P = ({ spec }) =>
  spec.suspended ? verdict(ready('Suspended', 'User is suspended: its access keys are refused.'), 'upsert') : undefined;
const active: P = () => verdict(ready('Reconciled', 'User is active.'), 'upsert');

/** A user's row is always written; suspension is its state, not a failure (its keys say they are refused). */
export const userPolicies: readonly P[] = [suspended, active];

export async function reconcileUser(db: Queryable, user: ProxyUser): Promise<ResourceStatus> {
  const verdict = runPolicies(userPolicies, { spec: user.spec });
  const userId = await upsertUser(db, {
    ...refOf(user),
    displayName: user.spec.displayName,
    description: user.spec.description,
    suspended: user.spec.suspended,
    limits: limitsOf(user.spec),
  });
  const budget = await budgetStatus(db, { kind: 'user', id: userId }, user.spec.budget);
  return budget === undefined ? verdict.status : { ...verdict.status, fields: { ...verdict.status.fields, budget } };
}
