import { KeyWrapperError } from '@ccproxy/core';

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
  fields?: Record<string, unknown>;
  /** Look again after this many ms (a wait for a reference runs out then). */
  retryInMs?: number;
}

/** The three conditions for one outcome; only the true ones carry the message. */
function outcome(
  flags: { ready: boolean; reconciling: boolean; stalled: boolean },
  reason: string,
  message: string,
  fields?: Record<string, unknown>,
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

export function ready(reason: string, message: string, fields?: Record<string, unknown>): ResourceStatus {
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
export function inactive(reason: string, message: string, fields?: Record<string, unknown>): ResourceStatus {
  return outcome({ ready: false, reconciling: false, stalled: false }, reason, message, fields);
}

/** How long a missing reference is waited for: the resource's age, and the limit. */
export interface ReferenceWait {
  /** Since the resource was created; undefined where that is unknown (local mode reads whole folders). */
  ageMs: number | undefined;
  limitMs: number;
}

/**
 * A reference that is not there: `Waiting…` (Ready=False, Reconciling=True: kstatus says
 * InProgress, no Warning) while the resource is younger than the limit — it may come in the same
 * `kubectl apply` or a moment later, in any order — and `Stalled` (a human must act) after.
 */
export function missingReference(
  wait: ReferenceWait | undefined,
  reasons: { waiting: string; stalled: string },
  message: string,
): ResourceStatus {
  if (wait?.ageMs === undefined || wait.ageMs >= wait.limitMs) return stalled(reasons.stalled, message);
  const seconds = Math.round(wait.limitMs / 1000);
  return {
    ...outcome(
      { ready: false, reconciling: true, stalled: false },
      reasons.waiting,
      `${message} Waiting for it (up to ${seconds} s after creation, then Stalled).`,
    ),
    retryInMs: wait.limitMs - wait.ageMs + 100,
  };
}

/** Reasons of a wait for a reference: not a problem (no Warning event) while they last. */
export const isWaitingReason = (reason: string): boolean => reason.startsWith('WaitingFor');

/**
 * A reconcile that failed on what it depends on, named: `KmsUnavailable` (KMS unreachable, timing
 * out, throttling: heals by itself), `KmsRefused` (KMS said no: a disabled key or missing
 * permission; retried, as fixing IAM needs no change to the resource), `DependencyUnavailable`
 * (the database, or anything else). All are Reconciling=True: kstatus InProgress, retried with backoff.
 */
export function dependencyFailure(error: unknown): ResourceStatus {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof KeyWrapperError)
    return error.unavailable
      ? retrying('KmsUnavailable', `Waiting for KMS to encrypt the Bedrock API key: ${message}`)
      : retrying(
          'KmsRefused',
          `KMS refused to encrypt the Bedrock API key (check the key and its IAM policy): ${message}`,
        );
  return retrying('DependencyUnavailable', `Waiting for the database: ${message}`);
}
