import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { LocalKeyWrapper, type Database } from '@ccproxy/core';
import { LocalOperator } from '@ccproxy/operator';
import { createTestDatabase } from '@ccproxy/test-harness';
import { hashKey, openTestDatabase, silent } from './kube-fixture.ts';

export interface LocalSetup {
  manifests: string;
  db: Database;
  operator: LocalOperator;
  stop(): Promise<void>;
}

/** A started local operator on its own manifests folder, data dir and Postgres database (no rotation grace). */
export async function startLocalOperator(name: string): Promise<LocalSetup> {
  const dir = await mkdtemp(join(tmpdir(), `ccproxy-${name}-`));
  const manifests = join(dir, 'manifests');
  await mkdir(manifests);
  const db = await openTestDatabase(await createTestDatabase(inject('postgresUrl'), name));
  const operator = new LocalOperator({
    manifestsDir: manifests,
    dataDir: join(dir, 'data'),
    db,
    hashKey,
    wrapper: new LocalKeyWrapper(randomBytes(32)),
    logger: silent,
    rotationGraceSeconds: 0,
    publicUrl: 'http://127.0.0.1:8080',
  });
  await operator.start();
  return {
    manifests,
    db,
    operator,
    async stop() {
      await operator.stop();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
