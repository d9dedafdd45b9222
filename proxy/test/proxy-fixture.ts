import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import {
  createKeyHasher, createLogger, createMetricsRegistry, generateAccessKey, keyPrefix, loadConfig, upsertAccessKey, upsertUser,
  type Database, type Routing,
} from '@ccproxy/core';
import { buildApp, KeyResolver, proxyConfigFields } from '@ccproxy/proxy';

export const hasherSecret = 'test-hasher-secret-0123456789abcdef';
export const hashKey = createKeyHasher(hasherSecret);

export interface RunningProxy {
  url: string;
  app: FastifyInstance;
  keys: KeyResolver;
  /** Every log line the proxy wrote. */
  logs: string[];
  close(): Promise<void>;
}

/** The real proxy app on 127.0.0.1:0 with injected deps; logs captured for assertions. */
export async function startProxy(db: Database, env: Record<string, string>): Promise<RunningProxy> {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString().split('\n').filter((line) => line !== ''));
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  const config = loadConfig(proxyConfigFields, env);
  const keys = new KeyResolver({ db, hashKey, logger, ttlMs: config.keyCacheTtlMs });
  await keys.start();
  const app = await buildApp(config, { logger, registry: createMetricsRegistry({ processMetrics: false }), keys });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    app,
    keys,
    logs,
    async close() {
      await app.close();
      await keys.stop();
    },
  };
}

let counter = 0;

/** Inserts a user and an active key straight through the repository; returns the usable key. */
export async function seedKey(db: Database, options: { routing?: Routing; namespace?: string } = {}): Promise<{ key: string; name: string; namespace: string }> {
  counter += 1;
  const namespace = options.namespace ?? 'team-test';
  const name = `key-${process.pid}-${counter}`;
  const userId = await upsertUser(db, { namespace, name: `user-${counter}`, uid: `u-${counter}`, displayName: 'Test', description: '', suspended: false });
  const key = generateAccessKey();
  await upsertAccessKey(
    db,
    { namespace, name, uid: `k-${counter}`, userId, keyHash: hashKey(key), keyPrefix: keyPrefix(key), revoked: false, routing: options.routing ?? 'PlanWithFailover', bedrock: { region: null, api: 'Converse', model: null, modelMap: {} } },
    60,
  );
  return { key, name, namespace };
}
