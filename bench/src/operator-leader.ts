import { writeHeapSnapshot } from 'node:v8';
import {
  createKeyHasher,
  createLogger,
  createMetricsRegistry,
  KmsKeyWrapper,
  migrate,
  PgDatabase,
} from '@ccproxy/core';
import { AdmissionWebhook, KubeClient, KubeOperator, LeaderElector } from '@ccproxy/operator/kube';

/**
 * The operator leader for `npm run bench -- operator-scale`, as `ccproxy operator` builds it
 * (Lease, a fresh operator per term, the shipped Node flags), with one difference: its
 * KubeClient is wrapped in a counter, so every API request it makes (list, watch, patch, read,
 * create, event, lease) is counted by method. It says `synced` once its caches synced and answers
 * `counts` with the counts so far (over the IPC channel its parent forks it with). With
 * CCPROXY_WEBHOOK_CONFIGURATION it also serves the admission webhook on CCPROXY_WEBHOOK_PORT, as
 * every replica of `ccproxy operator` does, through the same counted client.
 */
const logger = createLogger({ level: 'warn' });
const counts: Record<string, number> = {};
/** Milliseconds spent waiting on each kind of call (API by method, Postgres queries), summed over concurrent calls. */
const busyMs: Record<string, number> = {};
const timed = async <T>(label: string, call: () => Promise<T>): Promise<T> => {
  const started = performance.now();
  try {
    return await call();
  } finally {
    busyMs[label] = (busyMs[label] ?? 0) + performance.now() - started;
  }
};
const real = await KubeClient.fromEnvironment();
const client = new Proxy(real, {
  get(target, property, receiver) {
    const value: unknown = Reflect.get(target, property, receiver);
    if (typeof value !== 'function') return value;
    return (...args: unknown[]) => {
      // By method and the kind it acts on ("patchStatus AccessKey"), so the per-key figure can be checked.
      const [first] = args;
      const label =
        typeof first === 'string' && /^[A-Z]/.test(first) ? `${String(property)} ${first}` : String(property);
      counts[label] = (counts[label] ?? 0) + 1;
      const result = (value as (...a: unknown[]) => unknown).apply(target, args);
      return result instanceof Promise && property !== 'watch'
        ? timed(`api ${String(property)}`, () => result)
        : result;
    };
  },
});
const pg = new PgDatabase({ url: process.env.DATABASE_URL ?? '', logger });
await migrate(pg, logger);
let queries = 0;
const db = new Proxy(pg, {
  get(target, property, receiver) {
    const value: unknown = Reflect.get(target, property, receiver);
    if (typeof value !== 'function') return value;
    if (property !== 'query' && property !== 'transaction') return (value as () => unknown).bind(target);
    return (...args: unknown[]) => {
      queries += 1;
      return timed(`postgres ${String(property)}`, () =>
        (value as (...a: unknown[]) => Promise<unknown>).apply(target, args),
      );
    };
  },
});
// A fresh operator per term of leadership, as `ccproxy operator` does: a loaded machine may
// delay a Lease renewal past the deadline, and the next term must go on with the work.
const newOperator = () =>
  new KubeOperator({
    client,
    db,
    wrapper: new KmsKeyWrapper({ keyId: 'unused-no-bedrock-keys-in-this-scenario' }),
    registry,
    logger,
    hashKey: createKeyHasher('bench-hasher-secret-0123456789abcdefgh'),
    rotationGraceSeconds: 86_400,
    publicUrl: 'https://ccproxy.example.com',
    breakerOpenMs: 30_000,
    resyncMs: 300_000,
  });
const registry = createMetricsRegistry();
let operator = newOperator();
let stopping = false;
let terms = 0;
const elector = new LeaderElector({
  client,
  logger,
  name: 'ccproxy-operator',
  namespace: 'default',
  identity: `bench-${process.pid}`,
});
void (async () => {
  while (!stopping) {
    await elector.run(() => {
      terms += 1;
      operator.start().then(
        () => process.send?.({ type: 'synced' }),
        (error: unknown) => logger.error({ err: error }, 'operator failed to start'),
      );
    });
    await operator.stop();
    if (!stopping) operator = newOperator();
  }
})();
const webhookConfiguration = process.env.CCPROXY_WEBHOOK_CONFIGURATION;
const webhook =
  webhookConfiguration === undefined
    ? undefined
    : new AdmissionWebhook({
        client,
        logger,
        port: Number(process.env.CCPROXY_WEBHOOK_PORT ?? 9443),
        host: '127.0.0.1',
        namespace: 'default',
        serviceName: 'ccproxy-operator',
        secretName: 'ccproxy-operator-webhook-tls',
        // The bench registers it by url (no Service): the API server dials 127.0.0.1.
        extraNames: ['127.0.0.1'],
        configurationName: webhookConfiguration,
      });
webhook?.start();
process.on('message', (message: { type?: string; path?: string }) => {
  // What the heap holds once garbage is gone (the fork adds --expose-gc for this alone).
  if (message.type === 'gc') {
    (globalThis as { gc?: () => void }).gc?.();
    if (message.path !== undefined) writeHeapSnapshot(message.path);
    process.send?.({ type: 'gc', memory: process.memoryUsage() });
  }
  if (message.type === 'counts')
    void reconcileFigures().then((reconciles) =>
      process.send?.({
        type: 'counts',
        counts: { ...counts, terms },
        busyMs,
        queries,
        reconciles,
        memory: process.memoryUsage(),
      }),
    );
});
process.on('SIGTERM', () => {
  stopping = true;
  void (async () => {
    await operator.stop();
    await elector.stop();
    await webhook?.stop();
    await db.close();
    process.exit(0);
  })();
});

/** Reconciles so far and their summed duration (ms), from the operator's own histogram. */
async function reconcileFigures(): Promise<{ count: number; ms: number }> {
  const metric = registry.getSingleMetric('ccproxy_operator_reconcile_duration_seconds');
  // A histogram's values carry metricName (…_sum, …_count, …_bucket), which the base type omits.
  const values = ((await metric?.get())?.values ?? []) as Array<{ metricName?: string; value: number }>;
  const sum = (suffix: string) =>
    values.filter((v) => v.metricName?.endsWith(suffix) === true).reduce((total, v) => total + v.value, 0);
  return { count: sum('_count'), ms: sum('_sum') * 1000 };
}
