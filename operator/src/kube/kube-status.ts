import type { Condition, ResourceStatus } from '../reconcile/conditions.ts';

/** `metav1.Condition` as stored in `status.conditions`. */
export interface KubeCondition extends Condition {
  lastTransitionTime: string;
  observedGeneration: number;
}

export interface KubeStatus {
  observedGeneration: number;
  conditions: KubeCondition[];
  [field: string]: unknown;
}

/** What an object shows before the first reconcile finished: so kstatus, Flux and `kubectl wait` see "in progress", not "current". */
export function firstSightStatus(generation: number): ResourceStatus {
  const unknown = (type: Condition['type'], status: Condition['status']): Condition => ({
    type,
    status,
    reason: 'Reconciling',
    message: status === 'False' ? '' : 'The operator is reconciling this resource.',
  });
  return {
    conditions: [unknown('Ready', 'Unknown'), unknown('Reconciling', 'True'), unknown('Stalled', 'False')],
    observedGeneration: generation,
  };
}

/**
 * Pure: the status to write for `computed`, keeping `lastTransitionTime` where a condition's
 * status did not change (as apimachinery's SetStatusCondition does), so a level-triggered
 * resync writes nothing new and GitOps tools see no churn. `fields` become top-level status
 * fields (`keyPrefix`, `fingerprint`, `breaker`).
 */
export function toKubeStatus(
  previous: Record<string, unknown> | undefined,
  computed: ResourceStatus,
  generation: number,
  now: Date,
  extra: Record<string, unknown> = {},
): KubeStatus {
  const before = new Map(
    ((previous?.conditions as KubeCondition[] | undefined) ?? []).map((condition) => [condition.type, condition]),
  );
  const conditions = computed.conditions.map((condition): KubeCondition => {
    const old = before.get(condition.type);
    const lastTransitionTime =
      old !== undefined && old.status === condition.status
        ? old.lastTransitionTime
        : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { ...condition, reason: condition.reason, lastTransitionTime, observedGeneration: generation };
  });
  return { observedGeneration: computed.observedGeneration ?? generation, conditions, ...computed.fields, ...extra };
}

/** Whether writing `next` would change anything visible (so unchanged statuses are not written). */
export function statusChanged(previous: Record<string, unknown> | undefined, next: KubeStatus): boolean {
  if (previous === undefined) return true;
  return JSON.stringify(normalize(previous)) !== JSON.stringify(normalize(next));
}

function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined && v !== '')
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, normalize(v)]),
    );
  }
  return value;
}

export function readyOf(status: Record<string, unknown> | undefined): KubeCondition | undefined {
  return ((status?.conditions as KubeCondition[] | undefined) ?? []).find((condition) => condition.type === 'Ready');
}
