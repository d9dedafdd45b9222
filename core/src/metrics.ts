import { Registry, collectDefaultMetrics } from 'prom-client';

/** A fresh registry per process (or per test); nothing registers on prom-client's global one. */
export function createMetricsRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}
