import { upsertUser, type Queryable } from '@ccproxy/core';
import type { ProxyUser } from '../resources.ts';
import { budgetStatus } from './budget-status.ts';
import { ready, type ResourceStatus } from './conditions.ts';
import { limitsOf } from './limits.ts';
import { refOf } from './object-ref.ts';

export async function reconcileUser(db: Queryable, user: ProxyUser): Promise<ResourceStatus> {
  const userId = await upsertUser(db, {
    ...refOf(user),
    displayName: user.spec.displayName,
    description: user.spec.description,
    suspended: user.spec.suspended,
    limits: limitsOf(user.spec),
  });
  const budget = await budgetStatus(db, { kind: 'user', id: userId }, user.spec.budget);
  const fields = budget === undefined ? undefined : { budget };
  return user.spec.suspended
    ? ready('Suspended', 'User is suspended: its access keys are refused.', fields)
    : ready('Reconciled', 'User is active.', fields);
}
