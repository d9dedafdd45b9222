import {
  createKeyHasher,
  createLogger,
  createMetricsRegistry,
  KmsKeyWrapper,
  migrate,
  PgDatabase,
} from '@ccproxy/core';
import { KubeClient, KubeOperator, LeaderElector } from '@ccproxy/operator/kube';

/**
 * The operator leader for `npm run bench -- operator-scale`, as `ccproxy operator` builds it
 * (Lease, a fresh operator per term, the shipped Node flags), with one difference: its
 * KubeClient is wrapped in a counter, so every API request it makes (list, watch, patch, read,
 * create, event, lease) is counted by method. It says `synced` once its caches synced and answers
 * `counts` with the counts so far (over the IPC channel its parent forks it with).
 */
const logger = createLogger({ level: 'warn' });
const db = new PgDatabase({ url: process.env.DATABASE_URL ?? '', logger });
await migrate(db, logger);
const counts: Record<string, number> = {};
const real = KubeClient.fromEnvironment();
const client = new Proxy(real, {
  get(target, property, receiver) {
    const value: unknown = Reflect.get(target, property, receiver);
    if (typeof value !== 'function') return value;
    return (...args: unknown[]) => {
      counts[String(property)] = (counts[String(property)] ?? 0) + 1;
      return (value as (...a: unknown[]) => unknown).apply(target, args);
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
process.on('message', (message: { type?: string }) => {
  if (message.type === 'counts')
    process.send?.({ type: 'counts', counts: { ...counts, terms }, memory: process.memoryUsage() });
});
process.on('SIGTERM', () => {
  stopping = true;
  void (async () => {
    await operator.stop();
    await elector.stop();
    await db.close();
    process.exit(0);
  })();
});
