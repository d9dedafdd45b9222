import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  createKeyHasher,
  createLogger,
  createMetricsRegistry,
  KmsKeyWrapper,
  migrate,
  PgliteDatabase,
  type Database,
} from '@ccproxy/core';
import { LocalOperator } from '@ccproxy/operator';
import {
  accessKey,
  bedrockKey,
  documents,
  proxyUser,
  secret,
  startCuttableRelay,
  type CuttableRelay,
} from '@ccproxy/test-harness';

const conditions = (status: { conditions: Array<{ type: string; status: string; reason: string }> } | undefined) =>
  status?.conditions.map((c) => `${c.type}=${c.status}`).join(' ');

/**
 * The local operator's sync given a KMS key wrapper (the reconcile is the Kubernetes one's): a
 * KMS outage is a status of the BedrockKey that needs an envelope — KmsUnavailable, retried —
 * never a failed sync; the user and its access key are served meanwhile, and the next sync
 * after KMS answers again encrypts it. (`ccproxy local` itself wraps with its local key file.)
 */
describe('local operator: KMS outage', () => {
  let dir: string;
  let db: Database;
  let relay: CuttableRelay;
  let operator: LocalOperator;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-local-kms-'));
    await mkdir(join(dir, 'manifests'));
    db = await PgliteDatabase.open();
    await migrate(db, createLogger({ level: 'silent' }));
    relay = await startCuttableRelay(inject('motoUrl'));
  });
  afterAll(async () => {
    await operator?.stop();
    await relay?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports KmsUnavailable and serves the rest while KMS is down, then encrypts on the next sync', async () => {
    const client = new KMSClient({
      region: 'us-east-1',
      endpoint: relay.url,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId ?? '';
    await writeFile(
      join(dir, 'manifests', 'dev.yaml'),
      documents(
        proxyUser('team-a', 'dev'),
        accessKey('team-a', 'laptop', { user: 'dev' }),
        secret('team-a', 'dev-bedrock', { apiKey: 'bedrock-api-key-local-kms-0123456789' }),
        bedrockKey('team-a', 'laptop-bedrock', { accessKey: 'laptop', secretName: 'dev-bedrock' }),
      ),
    );
    operator = new LocalOperator({
      registry: createMetricsRegistry({ processMetrics: false }),
      manifestsDir: join(dir, 'manifests'),
      dataDir: join(dir, 'data'),
      db,
      hashKey: createKeyHasher('s'.repeat(32)),
      wrapper: new KmsKeyWrapper({ keyId, client, timeoutMs: 1_000 }),
      logger: createLogger({ level: 'silent' }),
      rotationGraceSeconds: 60,
      publicUrl: 'http://127.0.0.1:8080',
    });
    await relay.setMode('refuse');
    const down = await operator.start();
    const status = down.statuses.get('BedrockKey/team-a/laptop-bedrock');
    expect(conditions(status)).toBe('Ready=False Reconciling=True Stalled=False');
    expect(status?.conditions[1]).toMatchObject({ reason: 'KmsUnavailable', message: expect.stringContaining('KMS') });
    expect(down.readyKeys.map((k) => k.name)).toEqual(['laptop']);
    expect(conditions(down.statuses.get('ProxyUser/team-a/dev'))).toBe('Ready=True Reconciling=False Stalled=False');

    await relay.setMode('pass');
    const up = await operator.sync();
    expect(up.statuses.get('BedrockKey/team-a/laptop-bedrock')?.conditions[0]).toMatchObject({
      status: 'True',
      reason: 'Encrypted',
    });
  });
});
