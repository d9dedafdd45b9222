import { upsertUser, type Queryable } from '@ccproxy/core';
import type { ProxyUser } from '../resources.ts';
import { ready, type ResourceStatus } from './conditions.ts';
import { limitsOf } from './limits.ts';
import { refOf } from './object-ref.ts';

export async function reconcileUser(db: Queryable, user: ProxyUser): Promise<ResourceStatus> {
  await upsertUser(db, {
    ...refOf(user),
    displayName: user.spec.displayName,
    description: user.spec.description,
    suspended: user.spec.suspended,
    limits: limitsOf(user.spec),
  });
  return user.spec.suspended
    ? ready('Suspended', 'User is suspended: its access keys are refused.')
    : ready('Reconciled', 'User is active.');
}
