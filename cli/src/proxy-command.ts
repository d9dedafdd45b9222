import {
  ConfigError,
  createKeyHasher,
  createLogger,
  createMetricsRegistry,
  KmsKeyWrapper,
  loadConfig,
  loadPriceTable,
  migrate,
  openDatabase,
} from '@ccproxy/core';
import { BedrockCredentials, buildApp, CircuitBreakers, KeyResolver, proxyListenBacklog } from '@ccproxy/proxy';
import { startCloudWatchMetrics } from './cloudwatch-metrics.ts';
import { startMetering } from './metering.ts';
import { commandFields } from './command-fields.ts';
import type { Running } from './running.ts';

/** `ccproxy proxy`: the data plane against a shared Postgres (no local state). */
export async function runProxy(env: Record<string, string | undefined>): Promise<Running> {
  const config = loadConfig(commandFields.proxy, env);
  // A bad price file stops the start with the field named, before anything is opened.
  const prices = loadPriceTable(config.priceTableFile);
  const cluster = config;
  if (cluster.databaseUrl === undefined || cluster.keyHasherSecret === undefined) {
    // Replicas must share one database and one hasher secret; the embedded default is `ccproxy local`.
    throw new ConfigError([
      '`ccproxy proxy` needs DATABASE_URL and CCPROXY_KEY_HASHER_SECRET (use `ccproxy local` for the embedded default)',
    ]);
  }
  const logger = createLogger({ level: config.logLevel });
  const db = await openDatabase({ databaseUrl: cluster.databaseUrl, dataDir: '.', logger });
  await migrate(db, logger);
  const keys = new KeyResolver({
    db,
    hashKey: createKeyHasher(cluster.keyHasherSecret),
    logger,
    ttlMs: config.keyCacheTtlMs,
    staleIfErrorMs: config.keyStaleIfErrorMs,
  });
  await keys.start();
  const registry = createMetricsRegistry();
  const breakers = new CircuitBreakers({
    db,
    logger,
    registry,
    policy: { failures: config.breakerFailures, windowMs: config.breakerWindowMs, openMs: config.breakerOpenMs },
  });
  await breakers.start();
  // Bedrock keys are decrypted through KMS; without CCPROXY_KMS_KEY_ID this replica serves Plan
  // only and Bedrock-bound requests fail with a clear configuration error.
  const wrapper = cluster.kmsKeyId === undefined ? undefined : new KmsKeyWrapper({ keyId: cluster.kmsKeyId });
  const credentials =
    wrapper === undefined
      ? undefined
      : new BedrockCredentials({ db, wrapper, staleIfErrorMs: config.keyStaleIfErrorMs, registry });
  await credentials?.start();
  if (credentials === undefined)
    logger.warn('CCPROXY_KMS_KEY_ID is not set: Bedrock failover is unavailable on this replica');
  const { governor, usage } = await startMetering({
    db,
    logger,
    registry,
    prices,
    dataDir: cluster.dataDir,
    budgetRefreshMs: config.budgetRefreshMs,
    rateLimitSyncMs: config.rateLimitSyncMs,
    streamSlotLeaseMs: config.streamSlotLeaseMs,
  });
  const cloudWatch = startCloudWatchMetrics(config.cloudWatchEmf, breakers);
  const app = await buildApp(config, {
    logger,
    registry,
    keys,
    breakers,
    usage,
    prices,
    governor,
    ...(credentials === undefined ? {} : { credentials }),
    ...(cloudWatch.emf === undefined ? {} : { cloudWatch: cloudWatch.emf }),
  });
  const address = await app.listen({ port: config.port, host: config.host, backlog: proxyListenBacklog });
  logger.info({ address }, 'proxy listening');
  return {
    logger,
    async stop() {
      await app.close();
      cloudWatch.stop();
      await usage.stop();
      await governor.stop();
      await Promise.all([keys.stop(), breakers.stop(), credentials?.stop()]);
      wrapper?.close();
      await db.close();
    },
  };
}
