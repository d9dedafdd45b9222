import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The Kubernetes operator's Prometheus metrics (bounded labels: kind, result, reason). */
export function operatorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    reconciles: new Counter({
      name: 'ccproxy_operator_reconciles_total',
      help: 'Reconciles, by kind and result.',
      labelNames: ['kind', 'result'] as const,
      registers,
    }),
    errors: new Counter({
      name: 'ccproxy_operator_reconcile_errors_total',
      help: 'Reconciles that failed and were requeued with backoff.',
      labelNames: ['kind'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'ccproxy_operator_reconcile_duration_seconds',
      help: 'Time of one reconcile.',
      labelNames: ['kind'] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    }),
    queueDepth: new Gauge({ name: 'ccproxy_operator_queue_depth', help: 'Keys waiting in the work queue.', registers }),
    watchRestarts: new Counter({
      name: 'ccproxy_operator_watch_restarts_total',
      help: 'List/watch restarts, by kind and reason (error, silent).',
      labelNames: ['kind', 'reason'] as const,
      registers,
    }),
    leader: new Gauge({
      name: 'ccproxy_operator_leader',
      help: 'Whether this replica holds the leader Lease (1) or not (0).',
      registers,
    }),
  };
}

export type OperatorMetrics = ReturnType<typeof operatorMetrics>;
