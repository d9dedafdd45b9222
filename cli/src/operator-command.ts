import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import {
  ConfigError,
  createKeyHasher,
  createLogger,
  createMetricsRegistry,
  KmsKeyWrapper,
  loadConfig,
  migrate,
  openDatabase,
} from '@ccproxy/core';
import { buildOperatorApp, KubeClient, KubeOperator, LeaderElector } from '@ccproxy/operator/kube';
import { commandFields } from './command-fields.ts';
import type { Running } from './running.ts';

const fields = commandFields.operator;

const serviceAccountNamespace = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * `ccproxy operator`: the Kubernetes control plane. Migrates the database (advisory lock), then
 * campaigns for the leader Lease; only the leader watches and reconciles. Losing the Lease ends
 * the process (the Deployment restarts it as a standby), as controller-runtime does.
 */
export async function runOperator(env: Record<string, string | undefined>): Promise<Running> {
  const config = loadConfig(fields, env);
  const missing = [
    config.databaseUrl === undefined ? 'DATABASE_URL' : undefined,
    config.keyHasherSecret === undefined ? 'CCPROXY_KEY_HASHER_SECRET' : undefined,
    config.kmsKeyId === undefined ? 'CCPROXY_KMS_KEY_ID' : undefined,
  ].filter((name) => name !== undefined);
  if (missing.length > 0)
    throw new ConfigError([
      `\`ccproxy operator\` needs ${missing.join(', ')} (use \`ccproxy local\` for the embedded default)`,
    ]);
  const logger = createLogger({ level: config.logLevel });
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: '.', logger });
  await migrate(db, logger);
  const registry = createMetricsRegistry();
  const client = KubeClient.fromEnvironment(config.watchNamespace);
  const wrapper = new KmsKeyWrapper({ keyId: config.kmsKeyId as string });
  const operator = new KubeOperator({
    client,
    db,
    wrapper,
    registry,
    logger: logger.child({ component: 'operator' }),
    hashKey: createKeyHasher(config.keyHasherSecret as string),
    rotationGraceSeconds: config.rotationGraceSeconds,
    publicUrl: config.publicUrl,
    breakerOpenMs: config.breakerOpenMs,
    resyncMs: config.resyncSeconds * 1000,
    ...(config.watchNamespace === undefined ? {} : { namespace: config.watchNamespace }),
  });
  const leaseMs = config.leaseDurationSeconds * 1000;
  const elector = new LeaderElector({
    client,
    logger,
    name: 'ccproxy-operator',
    namespace:
      config.leaseNamespace ??
      (await readFile(serviceAccountNamespace, 'utf8').then(
        (ns) => ns.trim(),
        () => 'default',
      )),
    identity: config.podName ?? `${hostname()}-${process.pid}`,
    leaseDurationMs: leaseMs,
    renewDeadlineMs: Math.round((leaseMs * 2) / 3),
    retryPeriodMs: Math.max(500, Math.round(leaseMs / 7)),
  });
  const app = await buildOperatorApp({ logger, registry, ready: () => !elector.isLeader || operator.synced });
  await app.listen({ port: config.operatorPort, host: config.host });

  let stopping = false;
  const campaign = elector.run((lost) => {
    operator.metrics.leader.set(1);
    operator.start().catch((error: unknown) => {
      // A leader that cannot work must not hold the Lease: exit, and let a standby take over.
      logger.error({ err: error }, 'operator failed to start');
      process.exit(1);
    });
    lost.addEventListener('abort', () => {
      operator.metrics.leader.set(0);
      if (stopping) return;
      // A former leader must not keep writing: stop, and let the Deployment start a fresh standby.
      void operator.stop().finally(() => process.exit(1));
    });
  });
  logger.info(
    { port: config.operatorPort, namespace: config.watchNamespace ?? 'all' },
    'operator running; campaigning for leadership',
  );
  return {
    logger,
    async stop() {
      stopping = true;
      await operator.stop();
      await elector.stop();
      await campaign;
      await app.close();
      wrapper.close();
      await db.close();
    },
  };
}
