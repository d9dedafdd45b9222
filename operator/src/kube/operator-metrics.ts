import { Counter, Gauge, Histogram, type Metric, type Registry } from 'prom-client';

/**
 * The Kubernetes operator's Prometheus metrics (bounded labels: kind, result, reason). Each
 * metric is registered once per registry and shared by every operator built on it: a replica
 * builds a fresh operator for each term of leadership, and its counters must go on counting.
 */
export function operatorMetrics(registry: Registry) {
  const registers = [registry];
  const once = <M extends Metric>(name: string, make: (name: string) => M): M =>
    (registry.getSingleMetric(name) as M | undefined) ?? make(name);
  return {
    reconciles: once(
      'ccproxy_operator_reconciles_total',
      (name) =>
        new Counter({
          name,
          help: 'Reconciles, by kind and result.',
          labelNames: ['kind', 'result'] as const,
          registers,
        }),
    ),
    errors: once(
      'ccproxy_operator_reconcile_errors_total',
      (name) =>
        new Counter({
          name,
          help: 'Reconciles that failed and were requeued with backoff.',
          labelNames: ['kind'] as const,
          registers,
        }),
    ),
    duration: once(
      'ccproxy_operator_reconcile_duration_seconds',
      (name) =>
        new Histogram({
          name,
          help: 'Time of one reconcile.',
          labelNames: ['kind'] as const,
          buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
          registers,
        }),
    ),
    queueDepth: once(
      'ccproxy_operator_queue_depth',
      (name) => new Gauge({ name, help: 'Keys waiting in the work queue.', registers }),
    ),
    watchRestarts: once(
      'ccproxy_operator_watch_restarts_total',
      (name) =>
        new Counter({
          name,
          help: 'List/watch restarts, by kind and reason (error, silent).',
          labelNames: ['kind', 'reason'] as const,
          registers,
        }),
    ),
    leader: once(
      'ccproxy_operator_leader',
      (name) => new Gauge({ name, help: 'Whether this replica holds the leader Lease (1) or not (0).', registers }),
    ),
    apiReachable: once(
      'ccproxy_operator_api_server_reachable',
      (name) =>
        new Gauge({
          name,
          help: 'Whether the last read or write of the leader Lease reached the API server (1) or not (0).',
          registers,
        }),
    ),
  };
}

export type OperatorMetrics = ReturnType<typeof operatorMetrics>;
