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

/** The three conditions for one outcome; only the true ones carry the message. */
function outcome(
  flags: { ready: boolean; reconciling: boolean; stalled: boolean },
  reason: string,
  message: string,
  fields?: Record<string, string>,
): ResourceStatus {
  const condition = (type: Condition['type'], on: boolean, alwaysMessage = false): Condition => ({
    type,
    status: on ? 'True' : 'False',
    reason,
    message: on || alwaysMessage ? message : '',
  });
  return {
    conditions: [
      condition('Ready', flags.ready, true),
      condition('Reconciling', flags.reconciling),
      condition('Stalled', flags.stalled),
    ],
    ...(fields === undefined ? {} : { fields }),
  };
}

export function ready(reason: string, message: string, fields?: Record<string, string>): ResourceStatus {
  return outcome({ ready: true, reconciling: false, stalled: false }, reason, message, fields);
}

/** Something only a change to the resource (or what it references) can fix. */
export function stalled(reason: string, message: string): ResourceStatus {
  return outcome({ ready: false, reconciling: false, stalled: true }, reason, message);
}

/** A transient failure (e.g. Postgres down): will be retried without anyone acting. */
export function retrying(reason: string, message: string): ResourceStatus {
  return outcome({ ready: false, reconciling: true, stalled: false }, reason, message);
}

/** Deliberately not serving (revoked, suspended): not an error, nothing to retry. */
export function inactive(reason: string, message: string, fields?: Record<string, string>): ResourceStatus {
  return outcome({ ready: false, reconciling: false, stalled: false }, reason, message, fields);
}
