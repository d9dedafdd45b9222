import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, generateAccessKey, migrate, PgDatabase, revokeAccessKey, type Database } from '@ccproxy/core';
import {
  startAnthropicServer,
  startThrowawayPostgres,
  type AnthropicTestServer,
  type ThrowawayPostgres,
} from '@ccproxy/test-harness';
import { BedrockCredentials, KeyResolver } from '@ccproxy/proxy';
import { hashKey, seedKey, startProxy, wrapper, type RunningProxy } from './proxy-fixture.ts';

/** Postgres going away and coming back, on a cluster of this file's own. */
describe('key store outage', () => {
  let postgres: ThrowawayPostgres;
  let db: Database;
  let writer: Database;
  let upstream: AnthropicTestServer;
  let proxy: RunningProxy;

  beforeAll(async () => {
    postgres = await startThrowawayPostgres();
    const logger = createLogger({ level: 'silent' });
    db = new PgDatabase({ url: postgres.url, logger, reconnectDelayMs: 100 });
    writer = new PgDatabase({ url: postgres.url, logger });
    await migrate(db, logger);
    upstream = await startAnthropicServer();
    proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: upstream.url });
  });
  afterAll(async () => {
    await proxy?.close();
    await upstream?.close();
    await Promise.all([db?.close(), writer?.close()]);
    await postgres?.stop();
  });

  const status = async (key: string) => {
    const response = await request(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: '{"model":"m","messages":[]}',
      headers: { 'x-api-key': 'k' },
    });
    const body = await response.body.text();
    return { status: response.statusCode, body };
  };

  it('serves cached keys while Postgres is down, answers 503 for uncached ones, and resumes invalidation after', async () => {
    const cached = await seedKey(writer);
    const uncached = await seedKey(writer);
    expect((await status(cached.key)).status).toBe(200);

    await postgres.pause();
    expect((await status(cached.key)).status, 'cached key keeps working').toBe(200);
    const refused = await status(uncached.key);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });

    await postgres.resume();
    // The LISTEN connection comes back by itself and drops the cache on reconnect.
    await expect.poll(async () => (await status(uncached.key)).status, { timeout: 5000, interval: 50 }).toBe(200);
    await expect.poll(() => proxy.keys.listening && db.kind, { timeout: 5000 }).toBe('postgres');
    await revokeAccessKey(writer, cached.namespace, cached.name);
    await expect.poll(async () => (await status(cached.key)).status, { timeout: 1000, interval: 20 }).toBe(404);
  });

  it('serves a confirmed key past many cache expiries but only within the stale-if-error bound; never vouches for an unknown one', async () => {
    const known = await seedKey(writer);
    const unknownKey = generateAccessKey();
    const resolver = new KeyResolver({
      db,
      hashKey,
      logger: createLogger({ level: 'silent' }),
      ttlMs: 20,
      staleIfErrorMs: 600,
    });
    await resolver.start();
    try {
      expect((await resolver.resolve(known.key))?.name).toBe(known.name);
      expect(await resolver.resolve(unknownKey)).toBeUndefined();
      await postgres.pause();
      try {
        // Thirty TTL expiries later, still the last known state.
        await new Promise((resolve) => setTimeout(resolve, 300));
        for (let i = 0; i < 5; i += 1) expect((await resolver.resolve(known.key))?.name).toBe(known.name);
        // "No such key" is not claimed without Postgres: the caller answers 503.
        await expect(resolver.resolve(unknownKey)).rejects.toThrow();
        await new Promise((resolve) => setTimeout(resolve, 400));
        await expect(resolver.resolve(known.key), 'past the bound').rejects.toThrow();
      } finally {
        await postgres.resume();
      }
      await expect.poll(async () => (await resolver.resolve(known.key))?.name, { timeout: 5000 }).toBe(known.name);
    } finally {
      await resolver.stop();
    }
  });

  it('decrypts a Bedrock key read before the outage again while Postgres is down (ciphertext kept, plaintext not)', async () => {
    const seeded = await seedKey(writer, { bedrock: { apiKey: 'bedrock-api-key-outage-0123', model: 'm' } });
    const [row] = await writer.query<{ id: string }>(
      'SELECT id::text FROM access_keys WHERE namespace = $1 AND name = $2',
      [seeded.namespace, seeded.name],
    );
    const other = await seedKey(writer, { bedrock: { apiKey: 'bedrock-api-key-unseen-0123', model: 'm' } });
    const [otherRow] = await writer.query<{ id: string }>(
      'SELECT id::text FROM access_keys WHERE namespace = $1 AND name = $2',
      [other.namespace, other.name],
    );
    // A plaintext TTL of 20 ms: every use during the outage has to go back to the stored ciphertext.
    const credentials = new BedrockCredentials({ db, wrapper, ttlMs: 20 });
    const probe = { method: 'POST', host: 'bedrock.test', path: '/model/m/converse', headers: {}, body: '{}' };
    await credentials.start();
    try {
      expect((await credentials.authHeaders(row?.id as string, null, probe)).authorization).toBe(
        'Bearer bedrock-api-key-outage-0123',
      );
      await postgres.pause();
      try {
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect((await credentials.authHeaders(row?.id as string, null, probe)).authorization).toBe(
          'Bearer bedrock-api-key-outage-0123',
        );
        // Never read before: nothing to fall back on, so the error surfaces.
        await expect(credentials.authHeaders(otherRow?.id as string, null, probe)).rejects.toThrow();
      } finally {
        await postgres.resume();
      }
    } finally {
      await credentials.stop();
    }
  });
});
