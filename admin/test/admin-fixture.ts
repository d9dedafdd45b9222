import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { inject } from 'vitest';
import { createKeyHasher, createLogger, LocalKeyWrapper, type Database } from '@ccproxy/core';
import { LocalOperator } from '@ccproxy/operator';
import { openMigratedDatabase } from '@ccproxy/test-harness';
import { buildAdminApp, hashPassword, ManifestFolderStore, type AdminConfig, type ResourceStore } from '@ccproxy/admin';

export const password = 'correct horse battery staple';
export const hashKey = createKeyHasher('admin-test-hasher-secret-0123456789abcdef');
export const publicUrl = 'http://proxy.test:8080';
const passwordHash = await hashPassword(password);

export function openTestDatabase(): Promise<Database> {
  return openMigratedDatabase({ adminUrl: inject('postgresUrl'), prefix: 'admin' });
}

export interface LocalAdmin {
  app: FastifyInstance;
  db: Database;
  store: ResourceStore;
  operator: LocalOperator;
  manifestsDir: string;
  dataDir: string;
  /** Every log line the admin wrote (to check that no secret is ever logged). */
  logs: string[];
  /** Authorization header of a fresh session. */
  auth(): Promise<{ authorization: string }>;
  close(): Promise<void>;
}

/**
 * The admin app in local mode, as `ccproxy local` wires it: a real manifests folder and data
 * dir, the real local operator reconciling them into a real Postgres database.
 */
export interface LocalAdminOptions {
  /** Shared with a proxy in browser tests; a fresh database otherwise (closed by `close()`). */
  db?: Database;
  /** The proxy's hasher when a real proxy serves the keys. */
  hashKey?: typeof hashKey;
  /** The proxy's key wrapper when a real proxy decrypts the Bedrock keys the operator encrypts. */
  wrapper?: LocalKeyWrapper;
}

export async function startLocalAdmin(
  overrides: Partial<AdminConfig> = {},
  options: LocalAdminOptions = {},
): Promise<LocalAdmin> {
  const root = await mkdtemp(join(tmpdir(), 'ccproxy-admin-'));
  const manifestsDir = join(root, 'manifests');
  const dataDir = join(root, 'data');
  const db = options.db ?? (await openTestDatabase());
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
  await mkdir(manifestsDir, { recursive: true });
  const operator = new LocalOperator({
    manifestsDir,
    dataDir,
    db,
    hashKey: options.hashKey ?? hashKey,
    wrapper: options.wrapper ?? new LocalKeyWrapper(randomBytes(32)),
    logger: createLogger({ level: 'silent' }),
    rotationGraceSeconds: 60,
    publicUrl: overrides.publicUrl ?? publicUrl,
    resyncMs: 60_000,
  });
  await operator.start();
  const store = new ManifestFolderStore({ manifestsDir, dataDir, operator });
  const app = await buildAdminApp(
    {
      username: 'admin',
      passwordHash,
      sessionSeconds: 600,
      publicUrl,
      sessionSecret: 'admin-test-session-secret-0123456789abcdef',
      ...overrides,
    },
    { logger, db, store },
  );
  await app.ready();
  return {
    app,
    db,
    store,
    operator,
    manifestsDir,
    dataDir,
    logs,
    async auth() {
      const response = await app.inject({
        method: 'POST',
        url: '/admin/auth/login',
        payload: { username: 'admin', password },
      });
      if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`);
      return { authorization: `Bearer ${(response.json() as { token: string }).token}` };
    },
    async close() {
      await app.close();
      await operator.stop();
      if (options.db === undefined) await db.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
