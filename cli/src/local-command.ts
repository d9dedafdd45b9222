import { mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  ConfigError, adminFields, commonFields, createKeyHasher, createLogger, createMetricsRegistry, ensureLocalSecret, loadConfig,
  LocalKeyWrapper, localFields, migrate, openDatabase, type Logger,
} from '@ccproxy/core';
import { BedrockCredentials, buildApp, CircuitBreakers, KeyResolver, proxyConfigFields, UsageRecorder } from '@ccproxy/proxy';
import { buildAdminApp } from '@ccproxy/admin';
import { LocalOperator, type ReadyKey } from '@ccproxy/operator';
import { startCloudWatchMetrics } from './cloudwatch-metrics.ts';
import type { Running } from './running.ts';

const localConfigFields = { ...commonFields, ...proxyConfigFields, ...adminFields, ...localFields } as const;

/** `ccproxy local` (npm start): proxy, local-folder operator and admin in one process on PGlite. */
export async function runLocal(env: Record<string, string | undefined>): Promise<Running> {
  const config = loadConfig(localConfigFields, env);
  const manifestsDir = resolve(config.manifestsDir);
  if (!(await stat(manifestsDir).then((s) => s.isDirectory(), () => false))) {
    throw new ConfigError([`CCPROXY_MANIFESTS_DIR=${config.manifestsDir} is not a directory`]);
  }
  const logger = createLogger({ level: config.logLevel });
  const dataDir = resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const hashKey = createKeyHasher(config.keyHasherSecret ?? (await ensureLocalSecret(dataDir, 'key-hasher-secret')));
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir, logger });
  await migrate(db, logger);

  const publicUrl = config.publicUrl ?? `http://${displayHost(config.host)}:${config.port}`;
  // Local mode's stand-in for KMS: a 256-bit key file in the data dir (0600).
  const wrapper = new LocalKeyWrapper(Buffer.from(await ensureLocalSecret(dataDir, 'envelope-key'), 'base64url'));
  const registry = createMetricsRegistry();
  const operator = new LocalOperator({ registry, manifestsDir, dataDir, db, hashKey, wrapper, logger: logger.child({ component: 'local-operator' }), rotationGraceSeconds: config.rotationGraceSeconds, publicUrl });
  const report = await operator.start();

  const keys = new KeyResolver({ db, hashKey, logger, ttlMs: config.keyCacheTtlMs });
  await keys.start();
  const credentials = new BedrockCredentials({ db, wrapper });
  await credentials.start();
  const breakers = new CircuitBreakers({ db, logger, registry, policy: { failures: config.breakerFailures, windowMs: config.breakerWindowMs, openMs: config.breakerOpenMs } });
  await breakers.start();
  const usage = new UsageRecorder({ db, logger, registry, spoolDir: join(dataDir, 'usage-spool') });
  await usage.start();
  const cloudWatch = startCloudWatchMetrics(config.cloudWatchEmf, breakers);
  const proxy = await buildApp(config, { logger, registry, keys, credentials, breakers, usage, ...(cloudWatch.emf === undefined ? {} : { cloudWatch: cloudWatch.emf }) });
  const admin = await buildAdminApp({ logger: logger.child({ component: 'admin' }) });
  const proxyAddress = await proxy.listen({ port: config.port, host: config.host });
  const adminAddress = await admin.listen({ port: config.adminPort, host: config.host });
  logger.info({ proxyAddress, adminAddress, manifestsDir, dataDir, database: db.kind }, 'ccproxy local is running');
  printBanner(report.readyKeys, manifestsDir, report.problems.length);

  return {
    logger,
    async stop() {
      await operator.stop();
      await Promise.all([proxy.close(), admin.close()]);
      cloudWatch.stop();
      await usage.stop();
      await Promise.all([keys.stop(), credentials.stop(), breakers.stop()]);
      await db.close();
      await flush(logger);
    },
  };
}

function displayHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

/**
 * Printed once to the terminal (not the log): the base URL holds the key, and handing it to
 * the developer who started the process is the point of local mode.
 */
function printBanner(readyKeys: readonly ReadyKey[], manifestsDir: string, problems: number): void {
  const lines = ['', `ccproxy local: serving the resources in ${manifestsDir}`];
  if (readyKeys.length === 0) lines.push('  no ready access keys yet: add a ProxyUser and an AccessKey to the folder.');
  for (const key of readyKeys) {
    lines.push('', `  ${key.namespace}/${key.name} (user ${key.user}):`, `    export ANTHROPIC_BASE_URL=${key.baseUrl}`);
  }
  if (problems > 0) lines.push('', `  ${problems} manifest document(s) were ignored; see the warnings above.`);
  lines.push('', '  then run `claude` as usual: your own Anthropic credential is passed through.', '');
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function flush(logger: Logger): Promise<void> {
  await new Promise<void>((done) => logger.flush(() => done()));
}
