import { ConfigError, createLogger, loadConfig, loadPriceTable, migrate, openDatabase } from '@ccproxy/core';
import {
  buildAdminApp,
  oidcOptionsFrom,
  hashPassword,
  isPasswordHash,
  KubeResourceStore,
  passwordCredentialId,
} from '@ccproxy/admin';
import { loadKubeConnection } from '@ccproxy/operator/kube';
import { commandFields } from './command-fields.ts';
import type { Running } from './running.ts';

const fields = commandFields.admin;

/**
 * `ccproxy admin` in a cluster: the REST facade and web UI writing CRs and Secrets through the
 * Kubernetes API (`KUBECONFIG` or in-cluster), reading usage and breaker state from Postgres.
 */
export async function runAdmin(env: Record<string, string | undefined>): Promise<Running> {
  const config = loadConfig(fields, env);
  const sso = oidcOptionsFrom(config);
  const problems = [
    ...sso.problems,
    config.databaseUrl === undefined ? 'DATABASE_URL is required' : undefined,
    config.adminPasswordHash === undefined && config.adminPassword === undefined
      ? 'CCPROXY_ADMIN_PASSWORD_HASH (or CCPROXY_ADMIN_PASSWORD) is required'
      : undefined,
    config.adminPasswordHash !== undefined && !isPasswordHash(config.adminPasswordHash)
      ? 'CCPROXY_ADMIN_PASSWORD_HASH=(value hidden) is not an argon2id ($argon2id$…) or scrypt$N$r$p$salt$hash hash'
      : undefined,
  ].filter((problem) => problem !== undefined);
  if (problems.length > 0) throw new ConfigError(problems.map((problem) => `\`ccproxy admin\`: ${problem}`));
  const logger = createLogger({ level: config.logLevel });
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: '.', logger });
  await migrate(db, logger);
  const store = new KubeResourceStore(await loadKubeConnection(), config.watchNamespace);
  const passwordHash = config.adminPasswordHash ?? (await hashPassword(config.adminPassword as string));
  if (config.adminSessionSecret === undefined)
    logger.warn('CCPROXY_ADMIN_SESSION_SECRET is not set: sessions are valid on this replica only');
  const app = await buildAdminApp(
    {
      username: config.adminUsername,
      passwordHash,
      sessionSeconds: config.adminSessionSeconds,
      publicUrl: config.publicUrl,
      trustedProxyHops: config.adminTrustedProxyHops,
      ...(config.adminSessionSecret === undefined ? {} : { sessionSecret: config.adminSessionSecret }),
      ...(config.adminPasswordHash === undefined && config.adminPassword !== undefined
        ? { credentialId: passwordCredentialId(config.adminPassword) }
        : {}),
      ...(sso.oidc === undefined ? {} : { oidc: sso.oidc }),
    },
    {
      logger,
      db,
      store,
      breakerOpenMs: config.breakerOpenMs,
      breakerWindowMs: config.breakerWindowMs,
      // The same file the proxy prices with: the admin shows the table the costs came from.
      prices: loadPriceTable(config.priceTableFile),
    },
  );
  const address = await app.listen({ port: config.adminPort, host: config.host });
  logger.info({ address, namespace: config.watchNamespace ?? 'all' }, 'admin listening');
  return {
    logger,
    async stop() {
      await app.close();
      await db.close();
    },
  };
}
