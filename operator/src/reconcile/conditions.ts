/** Kubernetes-style status conditions (Ready / Reconciling / Stalled), computed purely. */
export interface Condition {
  type: 'Ready' | 'Reconciling' | 'Stalled';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export interface ResourceStatus {
  observedGeneration?: number;
  conditions: Condition[];
  /** Extra, kind-specific fields (e.g. the key prefix), never secrets. */
  fields?: Record<string, string>;
}

export function ready(reason: string, message: string, fields?: Record<string, string>): ResourceStatus {
  return {
    conditions: [
      { type: 'Ready', status: 'True', reason, message },
      { type: 'Reconciling', status: 'False', reason, message: '' },
      { type: 'Stalled', status: 'False', reason, message: '' },
    ],
    ...(fields === undefined ? {} : { fields }),
  };
}

/** Something only a change to the resource (or what it references) can fix. */
export function stalled(reason: string, message: string): ResourceStatus {
  return {
    conditions: [
      { type: 'Ready', status: 'False', reason, message },
      { type: 'Reconciling', status: 'False', reason, message: '' },
      { type: 'Stalled', status: 'True', reason, message },
    ],
  };
}

/** A transient failure (e.g. Postgres down): will be retried without anyone acting. */
export function retrying(reason: string, message: string): ResourceStatus {
  return {
    conditions: [
      { type: 'Ready', status: 'False', reason, message },
      { type: 'Reconciling', status: 'True', reason, message },
      { type: 'Stalled', status: 'False', reason, message: '' },
    ],
  };
}

/** Deliberately not serving (revoked, suspended): not an error, nothing to retry. */
export function inactive(reason: string, message: string, fields?: Record<string, string>): ResourceStatus {
  return {
    conditions: [
      { type: 'Ready', status: 'False', reason, message },
      { type: 'Reconciling', status: 'False', reason, message: '' },
      { type: 'Stalled', status: 'False', reason, message: '' },
    ],
    ...(fields === undefined ? {} : { fields }),
  };
}
