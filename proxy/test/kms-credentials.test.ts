import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { createMetricsRegistry, encryptSecret, KmsKeyWrapper, ProxyError, type Database } from '@ccproxy/core';
import { startCuttableRelay, type CuttableRelay } from '@ccproxy/test-harness';
import { BedrockCredentials } from '@ccproxy/proxy';
import { openTestDatabase, seedKey } from './proxy-fixture.ts';

const probe = { method: 'POST', host: 'bedrock.test', path: '/model/m/converse', headers: {}, body: '{}' };

/**
 * Bedrock credentials through KMS outages and refusals (moto's KMS behind a relay the test cuts;
 * real Postgres): an outage serves a key decrypted from the same envelope and refuses, as 503
 * PRX_BEDROCK_KEY_UNAVAILABLE, one never decrypted or whose envelope changed; a refusal by KMS
 * (access denied) is PRX_BEDROCK_MISCONFIGURED and never falls back to memory. Each is counted.
 */
describe('Bedrock credentials: KMS outages and refusals', () => {
  let db: Database;
  let relay: CuttableRelay;
  let client: KMSClient;
  let keyId: string;

  beforeAll(async () => {
    db = await openTestDatabase();
    relay = await startCuttableRelay(inject('motoUrl'));
    client = new KMSClient({
      region: 'us-east-1',
      endpoint: relay.url,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata?.KeyId ?? '';
  });
  afterAll(async () => {
    await relay?.close();
    await db?.close();
  });

  /** An access key whose BedrockKey envelope is made by KMS; returns the access key's row id. */
  const seedKmsKey = async (wrapper: KmsKeyWrapper, apiKey: string) => {
    const seeded = await seedKey(db, { bedrock: { apiKey, model: 'm' } });
    const [row] = await db.query<{ id: string }>(
      'SELECT id::text FROM access_keys WHERE namespace = $1 AND name = $2',
      [seeded.namespace, seeded.name],
    );
    const id = row?.id ?? '';
    await reseal(wrapper, id, apiKey);
    return id;
  };
  const reseal = async (wrapper: KmsKeyWrapper, id: string, apiKey: string) =>
    db.query('UPDATE bedrock_keys SET ciphertext = $1 WHERE access_key_id = $2', [
      await encryptSecret(apiKey, wrapper),
      id,
    ]);
  const codeOf = (error: unknown) => (error instanceof ProxyError ? `${error.status} ${error.code}` : String(error));
  const counted = async (registry: ReturnType<typeof createMetricsRegistry>) =>
    Object.fromEntries(
      (await registry.getSingleMetricAsString('ccproxy_bedrock_key_decrypt_failures_total'))
        .split('\n')
        .filter((line) => !line.startsWith('#') && line !== '')
        .map((line) => line.split(' ') as [string, string]),
    );

  it('an outage: the held key serves its own envelope only; others get a clear 503; all counted', async () => {
    const wrapper = new KmsKeyWrapper({ keyId, client, timeoutMs: 1_000 });
    const registry = createMetricsRegistry({ processMetrics: false });
    // A plaintext TTL of 10 ms: every use during the outage has to decrypt again.
    const credentials = new BedrockCredentials({ db, wrapper, ttlMs: 10, registry });
    await credentials.start();
    try {
      const warm = await seedKmsKey(wrapper, 'bedrock-api-key-warm-0123456789');
      const cold = await seedKmsKey(wrapper, 'bedrock-api-key-cold-0123456789');
      const changed = await seedKmsKey(wrapper, 'bedrock-api-key-old-0123456789');
      expect((await credentials.authHeaders(warm, null, probe)).authorization).toBe(
        'Bearer bedrock-api-key-warm-0123456789',
      );
      expect((await credentials.authHeaders(changed, null, probe)).authorization).toBe(
        'Bearer bedrock-api-key-old-0123456789',
      );
      // Rotated while KMS still answered: Postgres now holds another envelope.
      await reseal(wrapper, changed, 'bedrock-api-key-new-0123456789');
      for (const mode of ['refuse', 'hang', 'error500', 'throttle'] as const) {
        await relay.setMode(mode);
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect((await credentials.authHeaders(warm, null, probe)).authorization, mode).toBe(
          'Bearer bedrock-api-key-warm-0123456789',
        );
        await expect(credentials.authHeaders(cold, null, probe).catch(codeOf), mode).resolves.toBe(
          '503 PRX_BEDROCK_KEY_UNAVAILABLE',
        );
        // The old key is not served for a new envelope.
        await expect(credentials.authHeaders(changed, null, probe).catch(codeOf), mode).resolves.toBe(
          '503 PRX_BEDROCK_KEY_UNAVAILABLE',
        );
        expect(wrapper.unavailable, mode).toMatch(/^KMS Decrypt unavailable: /);
      }
      expect(await counted(registry)).toEqual({
        'ccproxy_bedrock_key_decrypt_failures_total{cause="kms_unavailable",answer="held_key"}': '4',
        'ccproxy_bedrock_key_decrypt_failures_total{cause="kms_unavailable",answer="error"}': '8',
      });
      await relay.setMode('pass');
      expect((await credentials.authHeaders(changed, null, probe)).authorization).toBe(
        'Bearer bedrock-api-key-new-0123456789',
      );
      expect(wrapper.unavailable).toBeUndefined();
    } finally {
      await relay.setMode('pass');
      await credentials.stop();
    }
  });

  it('a refusal (access denied) is MISCONFIGURED and never falls back to the held key', async () => {
    const wrapper = new KmsKeyWrapper({ keyId, client, timeoutMs: 1_000 });
    const registry = createMetricsRegistry({ processMetrics: false });
    const credentials = new BedrockCredentials({ db, wrapper, ttlMs: 10, registry });
    await credentials.start();
    try {
      const id = await seedKmsKey(wrapper, 'bedrock-api-key-refused-0123456789');
      expect((await credentials.authHeaders(id, null, probe)).authorization).toBe(
        'Bearer bedrock-api-key-refused-0123456789',
      );
      await relay.setMode('deny');
      await new Promise((resolve) => setTimeout(resolve, 20));
      await expect(credentials.authHeaders(id, null, probe).catch(codeOf)).resolves.toBe(
        '500 PRX_BEDROCK_MISCONFIGURED',
      );
      expect(wrapper.unavailable).toBeUndefined();
      expect(await counted(registry)).toEqual({
        'ccproxy_bedrock_key_decrypt_failures_total{cause="kms_refused",answer="error"}': '1',
      });
    } finally {
      await relay.setMode('pass');
      await credentials.stop();
    }
  });

  it('concurrent misses share one KMS Decrypt; a key changed meanwhile is loaded afresh, never the stale one cached', async () => {
    const decrypts: string[] = [];
    const counting = new KMSClient({
      region: 'us-east-1',
      endpoint: relay.url,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    counting.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DecryptCommand') decrypts.push(context.commandName);
        return next(args);
      },
      { step: 'initialize', name: 'countDecrypts' },
    );
    const wrapper = new KmsKeyWrapper({ keyId, client: counting, timeoutMs: 5_000 });
    const credentials = new BedrockCredentials({ db, wrapper, ttlMs: 60_000 });
    await credentials.start();
    try {
      const id = await seedKmsKey(wrapper, 'bedrock-api-key-burst-0123456789');
      decrypts.length = 0;
      // A breaker opening sends a burst over to Bedrock at once.
      const burst = await Promise.all(Array.from({ length: 50 }, () => credentials.authHeaders(id, null, probe)));
      expect(new Set(burst.map((headers) => headers.authorization))).toEqual(
        new Set(['Bearer bedrock-api-key-burst-0123456789']),
      );
      expect(decrypts).toHaveLength(1);

      // Changed (new envelope, NOTIFY) while a load of the old one is in flight: that load's
      // answer goes to who asked before the change, and is not what later requests get.
      const inFlight = credentials.authHeaders(id, null, probe);
      await reseal(wrapper, id, 'bedrock-api-key-changed-0123456789');
      await db.query(`NOTIFY ccproxy_keys, 'changed'`);
      await inFlight;
      await expect
        .poll(async () => (await credentials.authHeaders(id, null, probe)).authorization, { timeout: 5_000 })
        .toBe('Bearer bedrock-api-key-changed-0123456789');
    } finally {
      await credentials.stop();
      counting.destroy();
    }
  });
});
