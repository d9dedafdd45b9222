import type { StoredResource } from '../store/resource-store.ts';
import { idOf } from '../list.ts';
import { limitsView } from './limits.ts';

/**
 * What every record shows of its resource's status: the Ready condition flattened (for list
 * columns and filters) plus all conditions, as the operator wrote them. A resource the operator
 * has not reported on yet is `Unknown`, not "fine".
 */
export function statusView(resource: StoredResource) {
  const ready = resource.status.conditions.find((condition) => condition.type === 'Ready');
  return {
    status: statusOf(resource.status.conditions),
    id: idOf(resource.namespace, resource.name),
    namespace: resource.namespace,
    name: resource.name,
    resourceVersion: resource.resourceVersion,
    ready: ready?.status ?? 'Unknown',
    readyReason: ready?.reason ?? 'Pending',
    readyMessage: ready?.message ?? 'Not reconciled yet.',
    conditions: resource.status.conditions,
  };
}

/** What an administrator reads off a resource, one word for the status column and filter. */
export type Status = 'Ready' | 'Suspended' | 'Revoked' | 'Stalled' | 'Reconciling' | 'Pending' | 'NotReady';

/**
 * The one rule from conditions to status. A suspended user is Ready=True to the operator (its
 * reconcile succeeded), reason Suspended; its keys are Ready=False, reason UserSuspended: both
 * read "Suspended", never "Ready". Stalled (a human must act) wins over everything.
 */
export function statusOf(conditions: StoredResource['status']['conditions']): Status {
  const on = (type: string) => conditions.find((condition) => condition.type === type);
  const ready = on('Ready');
  if (on('Stalled')?.status === 'True') return 'Stalled';
  if (ready?.reason === 'Suspended' || ready?.reason === 'UserSuspended') return 'Suspended';
  if (ready?.reason === 'Revoked') return 'Revoked';
  if (ready?.status === 'True') return 'Ready';
  if (on('Reconciling')?.status === 'True') return 'Reconciling';
  return ready === undefined ? 'Pending' : 'NotReady';
}

/** `status.budget` as the operator wrote it (spend against each cap, state, reset times); null without a budget. */
export interface BudgetStatusView {
  state: string;
  day?: Record<string, unknown>;
  month?: Record<string, unknown>;
}
export function budgetStatusOf(resource: StoredResource): BudgetStatusView | null {
  const budget = resource.status.fields.budget as { state?: unknown } | undefined;
  return budget !== undefined && typeof budget.state === 'string' ? (budget as BudgetStatusView) : null;
}

export function userView(resource: StoredResource<'ProxyUser'>) {
  const { spec } = resource;
  return {
    ...statusView(resource),
    displayName: spec.displayName ?? '',
    description: spec.description ?? '',
    suspended: spec.suspended ?? false,
    ...limitsView(resource.spec),
    budgetStatus: budgetStatusOf(resource),
    identity: spec.identity ?? null,
    selfService: spec.selfService ?? null,
  };
}

export function teamBudgetView(resource: StoredResource<'TeamBudget'>) {
  const budgetStatus = budgetStatusOf(resource);
  return {
    ...statusView(resource),
    description: resource.spec.description ?? '',
    budget: resource.spec.budget,
    budgetStatus,
    /** Ok, Warning, Exhausted, or Unknown before the operator has reported. */
    state: budgetStatus?.state ?? 'Unknown',
  };
}

export function accessKeyView(resource: StoredResource<'AccessKey'>) {
  const { spec } = resource;
  const fields = resource.status.fields;
  const breaker = (fields.breaker ?? {}) as { state?: string; lastFailoverAt?: string };
  return {
    ...statusView(resource),
    userId: idOf(resource.namespace, spec.userRef.name),
    user: spec.userRef.name,
    secretName: spec.secretName,
    routing: spec.routing ?? 'PlanWithFailover',
    revoked: spec.revoked ?? false,
    bedrock: spec.bedrock ?? null,
    ...limitsView(resource.spec),
    budgetStatus: budgetStatusOf(resource),
    keyPrefix: typeof fields.keyPrefix === 'string' ? fields.keyPrefix : null,
    // Filled from circuit_breakers by the route (the CR's copy may lag); the CR's is the fallback.
    breakerState: breaker.state ?? 'closed',
    lastFailoverAt: breaker.lastFailoverAt ?? null,
  };
}

export function bedrockKeyView(resource: StoredResource<'BedrockKey'>) {
  // An AwsIdentity key has no Secret: its secret name and key read as empty.
  const { spec } = resource;
  const fields = resource.status.fields;
  return {
    ...statusView(resource),
    accessKeyId: idOf(resource.namespace, spec.accessKeyRef.name),
    accessKey: spec.accessKeyRef.name,
    secretName: spec.secretRef?.name ?? '',
    secretKey: spec.secretRef === undefined ? '' : (spec.secretRef.key ?? 'apiKey'),
    fingerprint: typeof fields.fingerprint === 'string' ? fields.fingerprint : null,
    api: spec.api ?? null,
  };
}
