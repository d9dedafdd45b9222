import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  ConfigError,
  createKeyHasher,
  createLogger,
  createMetricsRegistry,
  ensureLocalSecret,
  loadConfig,
  loadPriceTable,
  LocalKeyWrapper,
  migrate,
  openDatabase,
  type Logger,
} from '@ccproxy/core';
import { BedrockCredentials, buildApp, CircuitBreakers, KeyResolver, proxyListenBacklog } from '@ccproxy/proxy';
import {
  buildAdminApp,
  oidcOptionsFrom,
  generatePassword,
  hashPassword,
  passwordCredentialId,
  isPasswordHash,
  ManifestFolderStore,
} from '@ccproxy/admin';
import { LocalOperator } from '@ccproxy/operator';
import { startCloudWatchMetrics } from './cloudwatch-metrics.ts';
import { startMetering } from './metering.ts';
import { commandFields } from './command-fields.ts';
import { generatedSecretFiles, keyBannerLines } from './key-banner.ts';
import type { Running } from './running.ts';

const localConfigFields = commandFields.local;

/** `ccproxy local` (npm start): proxy, local-folder operator and admin in one process on PGlite. */
export async function runLocal(env: Record<string, string | undefined>): Promise<Running> {
  const config = loadConfig(localConfigFields, env);
  // A bad price file stops the start with the field named, before anything is opened.
  const prices = loadPriceTable(config.priceTableFile);
  const manifestsDir = resolve(config.manifestsDir);
  if (
    !(await stat(manifestsDir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
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
  const operator = new LocalOperator({
    registry,
    manifestsDir,
    dataDir,
    db,
    hashKey,
    wrapper,
    logger: logger.child({ component: 'local-operator' }),
    rotationGraceSeconds: config.rotationGraceSeconds,
    publicUrl,
  });
  const secretsBefore = await generatedSecretFiles(dataDir);
  const report = await operator.start();

  const keys = new KeyResolver({
    db,
    hashKey,
    logger,
    ttlMs: config.keyCacheTtlMs,
    staleIfErrorMs: config.keyStaleIfErrorMs,
  });
  await keys.start();
  const credentials = new BedrockCredentials({ db, wrapper, staleIfErrorMs: config.keyStaleIfErrorMs, registry });
  await credentials.start();
  const breakers = new CircuitBreakers({
    db,
    logger,
    registry,
    policy: { failures: config.breakerFailures, windowMs: config.breakerWindowMs, openMs: config.breakerOpenMs },
  });
  await breakers.start();
  const { governor, usage } = await startMetering({
    db,
    logger,
    registry,
    prices,
    dataDir: dataDir,
    budgetRefreshMs: config.budgetRefreshMs,
    rateLimitSyncMs: config.rateLimitSyncMs,
    streamSlotLeaseMs: config.streamSlotLeaseMs,
  });
  const cloudWatch = startCloudWatchMetrics(config.cloudWatchEmf, breakers);
  const proxy = await buildApp(config, {
    logger,
    registry,
    keys,
    credentials,
    breakers,
    usage,
    prices,
    governor,
    ...(cloudWatch.emf === undefined ? {} : { cloudWatch: cloudWatch.emf }),
  });
  const login = await adminPassword(config, dataDir);
  const sso = oidcOptionsFrom(config);
  if (sso.problems.length > 0) throw new ConfigError(sso.problems);
  const store = new ManifestFolderStore({ manifestsDir, dataDir, operator });
  const admin = await buildAdminApp(
    {
      username: config.adminUsername,
      passwordHash: login.hash,
      ...(login.credentialId === undefined ? {} : { credentialId: login.credentialId }),
      sessionSeconds: config.adminSessionSeconds,
      publicUrl,
      trustedProxyHops: config.adminTrustedProxyHops,
      ...(config.adminSessionSecret === undefined ? {} : { sessionSecret: config.adminSessionSecret }),
      ...(sso.oidc === undefined ? {} : { oidc: sso.oidc }),
    },
    {
      logger: logger.child({ component: 'admin' }),
      db,
      store,
      breakerOpenMs: config.breakerOpenMs,
      breakerWindowMs: config.breakerWindowMs,
      prices,
    },
  );
  const proxyAddress = await proxy.listen({ port: config.port, host: config.host, backlog: proxyListenBacklog });
  const adminAddress = await admin.listen({ port: config.adminPort, host: config.host });
  logger.info({ proxyAddress, adminAddress, manifestsDir, dataDir, database: db.kind }, 'ccproxy local is running');
  printBanner(await keyBannerLines(report.readyKeys, dataDir, secretsBefore), manifestsDir, report.problems.length);
  printAdminBanner(`http://${displayHost(config.host)}:${config.adminPort}/`, config.adminUsername, login.generated);

  return {
    logger,
    async stop() {
      await operator.stop();
      await Promise.all([proxy.close(), admin.close()]);
      cloudWatch.stop();
      await usage.stop();
      await governor.stop();
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
 * Printed to the terminal (not the log). A generated key appears here once, on the start that
 * generated it (see key-banner.ts); later starts say where it is kept instead.
 */
function printBanner(keyLines: readonly string[], manifestsDir: string, problems: number): void {
  const lines = ['', `ccproxy local: serving the resources in ${manifestsDir}`];
  if (keyLines.length === 0) lines.push('  no ready access keys yet: add a ProxyUser and an AccessKey to the folder.');
  lines.push(...keyLines);
  if (problems > 0) lines.push('', `  ${problems} manifest document(s) were ignored; see the warnings above.`);
  lines.push('', '  then run `claude` as usual: your own Anthropic credential is passed through.', '');
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * The admin password: a hash from the environment, a plain one hashed now, or (local mode's
 * default) one generated on first start, printed once, and kept only as its hash in the data dir.
 */
async function adminPassword(
  config: { adminPasswordHash?: string | undefined; adminPassword?: string | undefined },
  dataDir: string,
): Promise<{ hash: string; generated?: string; credentialId?: string }> {
  if (config.adminPasswordHash !== undefined) {
    // A hash that cannot be read would refuse every login without saying why.
    if (!isPasswordHash(config.adminPasswordHash))
      throw new ConfigError([
        'CCPROXY_ADMIN_PASSWORD_HASH=(value hidden) is not an argon2id ($argon2id$…) or scrypt$N$r$p$salt$hash hash',
      ]);
    return { hash: config.adminPasswordHash };
  }
  if (config.adminPassword !== undefined)
    return { hash: await hashPassword(config.adminPassword), credentialId: passwordCredentialId(config.adminPassword) };
  const file = join(dataDir, 'admin-password-hash');
  const stored = await readFile(file, 'utf8').catch(() => undefined);
  if (stored !== undefined) return { hash: stored.trim() };
  const generated = generatePassword();
  const hash = await hashPassword(generated);
  await writeFile(file, `${hash}\n`, { mode: 0o600, flag: 'wx' });
  return { hash, generated };
}

function printAdminBanner(url: string, username: string, generated: string | undefined): void {
  const lines = [`  admin UI: ${url} (user ${username})`];
  if (generated !== undefined) lines.push(`    generated admin password, shown only now: ${generated}`);
  else
    lines.push(
      "    password: CCPROXY_ADMIN_PASSWORD(_HASH), or the one printed on first start (delete the data dir's admin-password-hash for a new one)",
    );
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

async function flush(logger: Logger): Promise<void> {
  await new Promise<void>((done) => logger.flush(() => done()));
}
