import { upsertTeamBudget, type Queryable } from '@ccproxy/core';
import type { TeamBudget } from '../resources.ts';
import { budgetStatus } from './budget-status.ts';
import { ready, type ResourceStatus } from './conditions.ts';
import { refOf } from './object-ref.ts';

/**
 * A TeamBudget's row (`team_budgets`, one per namespace: the CRD and parseResource refuse any
 * name but `team`), which every proxy replica reads on the keys' NOTIFY and applies to every key
 * of every user of the namespace; its status shows the team's spend against it.
 */
export async function reconcileTeamBudget(db: Queryable, resource: TeamBudget): Promise<ResourceStatus> {
  const ref = refOf(resource);
  await upsertTeamBudget(db, { namespace: ref.namespace, name: ref.name, uid: ref.uid, budget: resource.spec.budget });
  const budget = await budgetStatus(db, { kind: 'team', namespace: ref.namespace }, resource.spec.budget);
  return ready(
    'Reconciled',
    `Team budget applies to every access key of every user in namespace ${ref.namespace}.`,
    budget === undefined ? undefined : { budget },
  );
}
