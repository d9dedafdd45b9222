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
import { AdmissionWebhook, buildOperatorApp, KubeClient, KubeOperator, LeaderElector } from '@ccproxy/operator/kube';
import { commandFields } from './command-fields.ts';
import type { Running } from './running.ts';

const fields = commandFields.operator;

const serviceAccountNamespace = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * `ccproxy operator`: the Kubernetes control plane. Migrates the database (advisory lock), then
 * campaigns for the leader Lease; only the leader watches and reconciles. A leader that cannot
 * renew (the API server is unreachable past the renew deadline) stops working at once — another
 * replica may take over — but the process stays up: it reports not-ready, campaigns again, and
 * starts a fresh term's watches and reconciles when it wins, so a single replica rides out an
 * API-server outage of any length.
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
  const client = await KubeClient.fromEnvironment(config.watchNamespace);
  const wrapper = new KmsKeyWrapper({ keyId: config.kmsKeyId as string });
  // A fresh operator per term of leadership: a former leader's watches and queue are gone for good.
  const newOperator = () =>
    new KubeOperator({
      client,
      db,
      wrapper,
      registry,
      logger: logger.child({ component: 'operator' }),
      hashKey: createKeyHasher(config.keyHasherSecret as string),
      rotationGraceSeconds: config.rotationGraceSeconds,
      publicUrl: config.publicUrl,
      breakerOpenMs: config.breakerOpenMs,
      breakerWindowMs: config.breakerWindowMs,
      resyncMs: config.resyncSeconds * 1000,
      // A failed reconcile (Postgres or KMS down) is retried within one resync at the latest.
      queue: { maxDelayMs: Math.min(300_000, config.resyncSeconds * 1000) },
      referenceWaitMs: config.referenceWaitSeconds * 1000,
      ...(config.watchNamespace === undefined ? {} : { namespace: config.watchNamespace }),
    });
  let operator = newOperator();
  const leaseMs = config.leaseDurationSeconds * 1000;
  const ownNamespace =
    config.leaseNamespace ??
    (await readFile(serviceAccountNamespace, 'utf8').then(
      (ns) => ns.trim(),
      () => 'default',
    ));
  // Every replica, leader or not: the API server's calls reach whichever pod the Service picks.
  const webhook =
    config.webhookConfiguration === undefined
      ? undefined
      : new AdmissionWebhook({
          client,
          logger: logger.child({ component: 'admission-webhook' }),
          port: config.webhookPort,
          host: config.host,
          namespace: ownNamespace,
          serviceName: config.webhookService,
          secretName: config.webhookTlsSecret ?? `${config.webhookService}-webhook-tls`,
          configurationName: config.webhookConfiguration,
        });
  if (webhook === undefined)
    logger.info(
      'admission webhook off (no CCPROXY_WEBHOOK_CONFIGURATION): the reconcile patches finalizers and owner references',
    );
  webhook?.start();
  const elector = new LeaderElector({
    client,
    logger,
    name: 'ccproxy-operator',
    namespace: ownNamespace,
    identity: config.podName ?? `${hostname()}-${process.pid}`,
    leaseDurationMs: leaseMs,
    renewDeadlineMs: Math.round((leaseMs * 2) / 3),
    retryPeriodMs: Math.max(500, Math.round(leaseMs / 7)),
  });
  // Ready: the API server answers, and a leader has synced and can reach KMS (a standby, which
  // calls neither, is ready to take over). Not ready is never a reason to exit (see the class comment).
  const notReady = () =>
    [
      elector.apiReachable ? undefined : 'API server unreachable: the leader Lease cannot be read or renewed',
      elector.isLeader && !operator.synced ? 'leader: caches not synced yet' : undefined,
      elector.isLeader ? wrapper.unavailable : undefined,
    ].filter((reason) => reason !== undefined);
  const app = await buildOperatorApp({ logger, registry, notReady });
  await app.listen({ port: config.operatorPort, host: config.host });

  let stopping = false;
  const reachable = setInterval(() => {
    operator.metrics.apiReachable.set(elector.apiReachable ? 1 : 0);
    operator.metrics.kmsReachable.set(wrapper.unavailable === undefined ? 1 : 0);
    // A leader that saw KMS down asks again every 10 s, even when no reconcile needs it any more.
    if (elector.isLeader) void wrapper.recheck();
  }, 1_000);
  reachable.unref();
  const term = () =>
    elector.run((lost) => {
      operator.metrics.leader.set(1);
      operator.start().catch((error: unknown) => {
        if (lost.aborted || stopping) return; // this term is over anyway
        // A leader that cannot work must not hold the Lease: exit, and let a standby take over.
        logger.error({ err: error }, 'operator failed to start');
        process.exit(1);
      });
      lost.addEventListener('abort', () => operator.metrics.leader.set(0));
    });
  const campaign = (async () => {
    for (;;) {
      await term();
      if (stopping) return;
      // Lost the Lease: stop writing before anything else, then campaign again as a standby.
      await operator.stop();
      if (stopping) return;
      logger.warn('stepped down (the Lease could not be renewed); campaigning again');
      operator = newOperator();
    }
  })();
  logger.info(
    { port: config.operatorPort, namespace: config.watchNamespace ?? 'all' },
    'operator running; campaigning for leadership',
  );
  return {
    logger,
    async stop() {
      stopping = true;
      clearInterval(reachable);
      await operator.stop();
      await elector.stop();
      await campaign;
      await webhook?.stop();
      await app.close();
      wrapper.close();
      await db.close();
    },
  };
}
