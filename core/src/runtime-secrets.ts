import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** The SDK is loaded only by a process that was given a secret id; most are given values. */
const secretsManagerSdk = () => import('@aws-sdk/client-secrets-manager');

/**
 * Runtime secrets from AWS Secrets Manager, for processes that are given a secret's name or ARN
 * instead of its value (`<VARIABLE>_SECRET_ID`). Read once at start, before the configuration is
 * validated, so the rest of the process sees ordinary environment variables. Kubernetes Secrets
 * (e.g. from External Secrets) are the alternative: then the variables are set directly.
 */
export const secretSources: Readonly<Record<string, { variable: string; shape: 'string' | 'rds' }>> = {
  CCPROXY_DATABASE_SECRET_ID: { variable: 'DATABASE_URL', shape: 'rds' },
  CCPROXY_KEY_HASHER_SECRET_ID: { variable: 'CCPROXY_KEY_HASHER_SECRET', shape: 'string' },
  CCPROXY_PLAN_API_KEY_SECRET_ID: { variable: 'CCPROXY_PLAN_API_KEY', shape: 'string' },
  // The admin hashes a plain password at start (CCPROXY_ADMIN_PASSWORD); the CDK estate generates both.
  CCPROXY_ADMIN_PASSWORD_SECRET_ID: { variable: 'CCPROXY_ADMIN_PASSWORD', shape: 'string' },
  CCPROXY_ADMIN_SESSION_SECRET_ID: { variable: 'CCPROXY_ADMIN_SESSION_SECRET', shape: 'string' },
  // The identity provider's client secret for admin single sign-on (a confidential client).
  CCPROXY_ADMIN_OIDC_CLIENT_SECRET_ID: { variable: 'CCPROXY_ADMIN_OIDC_CLIENT_SECRET', shape: 'string' },
};

export interface ResolvedSecrets {
  env: Record<string, string | undefined>;
  /** secret id → the version read, to notice rotations. */
  versions: Map<string, string>;
}

/**
 * Fills each variable whose `_SECRET_ID` is set from Secrets Manager. A variable set directly
 * wins (an explicit value is never silently replaced). Fails with every problem at once.
 */
export async function resolveRuntimeSecrets(
  env: Readonly<Record<string, string | undefined>>,
  client?: SecretsManagerClient,
): Promise<ResolvedSecrets> {
  const wanted = Object.entries(secretSources).filter(
    ([idVariable, { variable }]) => env[idVariable] !== undefined && env[variable] === undefined,
  );
  const out: Record<string, string | undefined> = { ...env };
  const versions = new Map<string, string>();
  if (wanted.length === 0) return { env: out, versions };
  const { GetSecretValueCommand, SecretsManagerClient: Client } = await secretsManagerSdk();
  const sm = client ?? new Client({});
  const problems: string[] = [];
  await Promise.all(
    wanted.map(async ([idVariable, { variable, shape }]) => {
      const secretId = env[idVariable] as string;
      try {
        const value = await sm.send(new GetSecretValueCommand({ SecretId: secretId }));
        if (value.SecretString === undefined) throw new Error('it has no SecretString');
        const text = shape === 'rds' ? databaseUrlOf(value.SecretString) : value.SecretString.trim();
        // An empty value is never taken as "unset": a secret made to be filled in, and not yet.
        if (text === '') throw new Error('its value is empty (put one with `aws secretsmanager put-secret-value`)');
        out[variable] = text;
        if (value.VersionId !== undefined) versions.set(secretId, value.VersionId);
      } catch (error) {
        // Never the value: only which secret and why.
        problems.push(`${idVariable}=${secretId}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }),
  );
  if (client === undefined) sm.destroy();
  if (problems.length > 0)
    throw new Error(`cannot read runtime secrets from Secrets Manager:\n  ${problems.join('\n  ')}`);
  return { env: out, versions };
}

/** An RDS/Aurora-managed secret (JSON username/password/host/port/dbname) → a `postgres://` URL with TLS. */
export function databaseUrlOf(secretString: string): string {
  const secret = JSON.parse(secretString) as {
    username?: string;
    password?: string;
    host?: string;
    port?: number | string;
    dbname?: string;
  };
  if (secret.username === undefined || secret.password === undefined || secret.host === undefined) {
    throw new Error('the database secret lacks username, password or host');
  }
  const url = new URL(`postgres://${secret.host}:${String(secret.port ?? 5432)}`);
  url.username = encodeURIComponent(secret.username);
  url.password = encodeURIComponent(secret.password);
  url.pathname = `/${encodeURIComponent(secret.dbname ?? 'postgres')}`;
  url.searchParams.set('sslmode', 'require');
  return url.toString();
}

/**
 * Watches the secrets read at start (DescribeSecret: metadata only, never the value) and calls
 * `onRotated` once when one of them has a new current version. Processes restart on it: a new
 * hasher secret or database password must be taken up whole, not half-way through a request.
 */
export function watchRuntimeSecrets(
  resolved: ResolvedSecrets,
  onRotated: (secretId: string) => void,
  options: { intervalMs?: number; client?: SecretsManagerClient } = {},
): () => void {
  if (resolved.versions.size === 0) return () => undefined;
  let sm = options.client;
  let fired = false;
  let stopped = false;
  const check = async () => {
    const { DescribeSecretCommand, SecretsManagerClient: Client } = await secretsManagerSdk();
    // Stopped while the SDK loaded: a client made now would never be destroyed.
    if (stopped) return;
    sm ??= new Client({});
    for (const [secretId, version] of resolved.versions) {
      const described = await sm.send(new DescribeSecretCommand({ SecretId: secretId })).catch(() => undefined);
      const current = Object.entries(described?.VersionIdsToStages ?? {}).find(([, stages]) =>
        stages.includes('AWSCURRENT'),
      )?.[0];
      if (current !== undefined && current !== version && !fired) {
        fired = true;
        onRotated(secretId);
      }
    }
  };
  const timer = setInterval(() => void check(), options.intervalMs ?? 300_000);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    if (options.client === undefined) sm?.destroy();
  };
}
