import { Counter, Gauge, Histogram, type Metric, type Registry } from 'prom-client';

/** Which operator a metric belongs to: the Kubernetes one, the local one (manifests folder), or both. */
export type OperatorMode = 'kube' | 'local';
const both: readonly OperatorMode[] = ['kube', 'local'];
const kube: readonly OperatorMode[] = ['kube'];
const local: readonly OperatorMode[] = ['local'];

/**
 * The operators' Prometheus metrics, defined once for both modes (bounded labels: kind, result,
 * reason). Each mode registers the ones it updates: `reconciles` in both (result `success` /
 * `error` per Kubernetes reconcile, `ready` / `retrying` / `not_ready` per resource of a local
 * sync), the queue, watches and Lease in Kubernetes, the sync timing in local mode. A metric is
 * registered once per registry and shared by every operator built on it: a replica builds a
 * fresh operator for each term of leadership, and its counters must go on counting.
 */
export function operatorMetrics(registry: Registry | undefined, mode: OperatorMode = 'kube') {
  const make = <M extends Metric>(
    modes: readonly OperatorMode[],
    name: string,
    build: (registers: Registry[]) => M,
  ): M => {
    if (registry === undefined || !modes.includes(mode)) return build([]);
    return (registry.getSingleMetric(name) as M | undefined) ?? build([registry]);
  };
  return {
    reconciles: make(
      both,
      'ccproxy_operator_reconciles_total',
      (registers) =>
        new Counter({
          name: 'ccproxy_operator_reconciles_total',
          help: 'Reconciles, by kind and result.',
          labelNames: ['kind', 'result'] as const,
          registers,
        }),
    ),
    errors: make(
      kube,
      'ccproxy_operator_reconcile_errors_total',
      (registers) =>
        new Counter({
          name: 'ccproxy_operator_reconcile_errors_total',
          help: 'Reconciles that failed and were requeued with backoff.',
          labelNames: ['kind'] as const,
          registers,
        }),
    ),
    duration: make(
      kube,
      'ccproxy_operator_reconcile_duration_seconds',
      (registers) =>
        new Histogram({
          name: 'ccproxy_operator_reconcile_duration_seconds',
          help: 'Time of one reconcile.',
          labelNames: ['kind'] as const,
          buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
          registers,
        }),
    ),
    queueDepth: make(
      kube,
      'ccproxy_operator_queue_depth',
      (registers) =>
        new Gauge({ name: 'ccproxy_operator_queue_depth', help: 'Keys waiting in the work queue.', registers }),
    ),
    watchRestarts: make(
      kube,
      'ccproxy_operator_watch_restarts_total',
      (registers) =>
        new Counter({
          name: 'ccproxy_operator_watch_restarts_total',
          help: 'List/watch restarts, by kind and reason (error, silent).',
          labelNames: ['kind', 'reason'] as const,
          registers,
        }),
    ),
    leader: make(
      kube,
      'ccproxy_operator_leader',
      (registers) =>
        new Gauge({
          name: 'ccproxy_operator_leader',
          help: 'Whether this replica holds the leader Lease (1) or not (0).',
          registers,
        }),
    ),
    apiReachable: make(
      kube,
      'ccproxy_operator_api_server_reachable',
      (registers) =>
        new Gauge({
          name: 'ccproxy_operator_api_server_reachable',
          help: 'Whether the last read or write of the leader Lease reached the API server (1) or not (0).',
          registers,
        }),
    ),
    kmsReachable: make(
      kube,
      'ccproxy_operator_kms_reachable',
      (registers) =>
        new Gauge({
          name: 'ccproxy_operator_kms_reachable',
          help: 'Whether the last KMS call answered (1) or failed as an outage: unreachable, timed out, throttled, 5xx (0).',
          registers,
        }),
    ),
    syncSeconds: make(
      local,
      'ccproxy_operator_sync_duration_seconds',
      (registers) =>
        new Histogram({
          name: 'ccproxy_operator_sync_duration_seconds',
          help: 'Time of one full sync of the manifests folder.',
          buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30],
          registers,
        }),
    ),
    syncErrors: make(
      local,
      'ccproxy_operator_sync_errors_total',
      (registers) =>
        new Counter({
          name: 'ccproxy_operator_sync_errors_total',
          help: 'Syncs that failed as a whole (e.g. the folder could not be read).',
          registers,
        }),
    ),
    folderWatchErrors: make(
      local,
      'ccproxy_operator_watch_errors_total',
      (registers) =>
        new Counter({
          name: 'ccproxy_operator_watch_errors_total',
          help: 'Errors of the folder watch (the periodic resync keeps working).',
          registers,
        }),
    ),
  };
}

export type OperatorMetrics = ReturnType<typeof operatorMetrics>;
