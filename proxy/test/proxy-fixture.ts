import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import { inject } from 'vitest';
import { openMigratedDatabase } from '@ccproxy/test-harness';
import {
  buildPriceTable,
  createKeyHasher,
  createLogger,
  createMetricsRegistry,
  encryptSecret,
  generateAccessKey,
  keyPrefix,
  loadConfig,
  LocalKeyWrapper,
  secretFingerprint,
  upsertAccessKey,
  upsertBedrockKey,
  upsertUser,
  type BedrockApi,
  type Database,
  type Limits,
  type PriceTable,
  type Routing,
} from '@ccproxy/core';
import {
  BedrockCredentials,
  buildApp,
  CircuitBreakers,
  Governor,
  KeyResolver,
  proxyConfigFields,
  UsageRecorder,
  type CloudWatchEmf,
} from '@ccproxy/proxy';

export const hasherSecret = 'test-hasher-secret-0123456789abcdef';
export const hashKey = createKeyHasher(hasherSecret);
/** The tests' stand-in for KMS. */
export const wrapper = new LocalKeyWrapper(randomBytes(32));

/** A fresh, migrated database on the run's PostgreSQL cluster (real server, not PGlite). */
export function openTestDatabase(): Promise<Database> {
  return openMigratedDatabase({ adminUrl: inject('postgresUrl') });
}

export interface RunningProxy {
  url: string;
  app: FastifyInstance;
  keys: KeyResolver;
  registry: Registry;
  usage: UsageRecorder | undefined;
  /** Every log line the proxy wrote. */
  logs: string[];
  close(): Promise<void>;
}

/** The real proxy app on 127.0.0.1:0 with injected deps; logs captured for assertions. */
export async function startProxy(
  db: Database,
  env: Record<string, string>,
  options: { spoolDir?: string; cloudWatch?: CloudWatchEmf; governor?: boolean; prices?: PriceTable } = {},
): Promise<RunningProxy> {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((line) => line !== ''),
      );
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  const config = loadConfig(proxyConfigFields, env);
  const keys = new KeyResolver({
    db,
    hashKey,
    logger,
    ttlMs: config.keyCacheTtlMs,
    staleIfErrorMs: config.keyStaleIfErrorMs,
  });
  await keys.start();
  const credentials = new BedrockCredentials({ db, wrapper });
  await credentials.start();
  const registry = createMetricsRegistry({ processMetrics: false });
  const breakers = new CircuitBreakers({
    db,
    logger,
    registry,
    policy: { failures: config.breakerFailures, windowMs: config.breakerWindowMs, openMs: config.breakerOpenMs },
  });
  await breakers.start();
  const usage =
    options.spoolDir === undefined
      ? undefined
      : new UsageRecorder({
          db,
          logger,
          registry,
          spoolDir: options.spoolDir,
          flushIntervalMs: 100,
          ...(options.prices === undefined ? {} : { prices: options.prices }),
        });
  await usage?.start();
  const governor =
    options.governor === true
      ? new Governor({
          db,
          logger,
          registry,
          prices: buildPriceTable(),
          budgetRefreshMs: config.budgetRefreshMs,
          rateSyncMs: config.rateLimitSyncMs,
          slotLeaseMs: config.streamSlotLeaseMs,
        })
      : undefined;
  await governor?.start();
  const app = await buildApp(config, {
    logger,
    registry,
    keys,
    credentials,
    breakers,
    ...(usage === undefined ? {} : { usage }),
    ...(governor === undefined ? {} : { governor }),
    ...(options.cloudWatch === undefined ? {} : { cloudWatch: options.cloudWatch }),
    ...(options.prices === undefined ? {} : { prices: options.prices }),
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    app,
    keys,
    registry,
    usage,
    logs,
    async close() {
      await app.close();
      await usage?.stop();
      await governor?.stop();
      await Promise.all([keys.stop(), credentials.stop(), breakers.stop()]);
    },
  };
}

let counter = 0;

/** Inserts a user and an active key straight through the repository; returns the usable key. */
export interface SeedOptions {
  routing?: Routing;
  namespace?: string;
  /** Binds a Bedrock API key (stored envelope-encrypted) and model to the access key. */
  /** `api`: the AccessKey's (absent: Converse; null: not set); `keyApi`: the BedrockKey's `spec.api`. */
  bedrock?: {
    apiKey: string;
    model: string;
    modelMap?: Record<string, string>;
    api?: BedrockApi | null;
    keyApi?: BedrockApi;
  };
  /** The key's budget and rate limits. */
  keyLimits?: Limits;
}

export async function seedKey(
  db: Database,
  options: SeedOptions = {},
): Promise<{ key: string; name: string; namespace: string }> {
  counter += 1;
  const namespace = options.namespace ?? 'team-test';
  const name = `key-${process.pid}-${counter}`;
  const userId = await upsertUser(db, {
    namespace,
    name: `user-${counter}`,
    uid: `u-${counter}`,
    displayName: 'Test',
    description: '',
    suspended: false,
  });
  const key = generateAccessKey();
  await upsertAccessKey(
    db,
    {
      namespace,
      name,
      uid: `k-${counter}`,
      userId,
      keyHash: hashKey(key),
      keyPrefix: keyPrefix(key),
      revoked: false,
      routing: options.routing ?? 'PlanWithFailover',
      bedrock: {
        region: 'us-east-1',
        api: options.bedrock?.api === undefined ? 'Converse' : options.bedrock.api,
        model: options.bedrock?.model ?? null,
        modelMap: options.bedrock?.modelMap ?? {},
      },
      ...(options.keyLimits === undefined ? {} : { limits: options.keyLimits }),
    },
    60,
  );
  if (options.bedrock !== undefined) {
    const [row] = await db.query<{ id: string }>(
      'SELECT id::text FROM access_keys WHERE namespace = $1 AND name = $2',
      [namespace, name],
    );
    const apiKey = options.bedrock.apiKey;
    await upsertBedrockKey(db, {
      namespace,
      name: `${name}-bedrock`,
      uid: `b-${counter}`,
      accessKeyId: row?.id ?? '',
      ciphertext: await encryptSecret(apiKey, wrapper),
      fingerprint: secretFingerprint(apiKey),
      api: options.bedrock.keyApi ?? null,
    });
  }
  return { key, name, namespace };
}
