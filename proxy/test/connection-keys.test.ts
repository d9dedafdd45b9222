import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAccessKey, keyPrefix, revokeAccessKey, upsertAccessKey, type Database } from '@ccproxy/core';
import { startAnthropicServer, type AnthropicTestServer } from '@ccproxy/test-harness';
import { hashKey, openTestDatabase, seedKey, startProxy, type RunningProxy } from './proxy-fixture.ts';

/**
 * A keep-alive connection remembers the key it last proved (skipping the HMAC and cache probe);
 * these pin down that the shortcut never outlives what the key store says, on one connection.
 */
describe('access keys on one keep-alive connection', () => {
  let db: Database;
  let upstream: AnthropicTestServer;
  let proxy: RunningProxy;
  let client: Client;
  let connections = 0;

  beforeAll(async () => {
    db = await openTestDatabase();
    upstream = await startAnthropicServer();
    proxy = await startProxy(db, { ANTHROPIC_UPSTREAM_URL: upstream.url });
    client = new Client(proxy.url, { pipelining: 1 });
    client.on('connect', () => (connections += 1));
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.close();
    await upstream?.close();
    await db?.close();
  });

  const post = async (key: string) => {
    const response = await client.request({
      path: `/ak/${key}/v1/messages`,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-client' },
      body: '{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
    });
    const text = await response.body.text();
    return { status: response.statusCode, id: String(response.headers['x-ccproxy-request-id']), text };
  };
  /** The user the proxy's log line for that request names. */
  const userOf = (requestId: string) =>
    proxy.logs
      .map((line) => JSON.parse(line) as { requestId?: string; msg: string; user?: string })
      .find((line) => line.requestId === requestId && line.msg === 'request completed')?.user;

  it('keys of different users interleaved on one connection each get their own user; a near-miss of a proven key is refused', async () => {
    const a = await seedKey(db, { routing: 'PlanOnly', namespace: 'team-a' });
    const b = await seedKey(db, { routing: 'PlanOnly', namespace: 'team-b' });
    const answers = [await post(a.key)];
    const before = connections;
    for (const key of [a.key, b.key, a.key, b.key, b.key]) answers.push(await post(key));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 200]);
    await expect
      .poll(() => answers.map((answer) => userOf(answer.id)?.split('/')[0]))
      .toEqual(['team-a', 'team-a', 'team-b', 'team-a', 'team-b', 'team-b']);
    // The last character changed: what a timing attacker on a shared connection would try.
    const last = b.key.at(-1) === 'A' ? 'B' : 'A';
    expect((await post(`${b.key.slice(0, -1)}${last}`)).status).toBe(404);
    expect((await post(b.key)).status).toBe(200);
    expect(connections - before).toBe(0);
  });

  it('a key revoked while its connection stays open is refused on that connection', async () => {
    const revoked = await seedKey(db, { routing: 'PlanOnly' });
    const kept = await seedKey(db, { routing: 'PlanOnly' });
    expect((await post(revoked.key)).status).toBe(200);
    expect((await post(revoked.key)).status).toBe(200);
    const before = connections;
    await revokeAccessKey(db, revoked.namespace, revoked.name);
    await expect.poll(async () => (await post(revoked.key)).status, { timeout: 2000, interval: 20 }).toBe(404);
    expect((await post(kept.key)).status).toBe(200);
    expect((await post(revoked.key)).status).toBe(404);
    expect(connections - before).toBe(0);
  });

  it('a rotated-out key works on its connection through the grace period and not after', async () => {
    const seeded = await seedKey(db, { routing: 'PlanOnly' });
    expect((await post(seeded.key)).status).toBe(200);
    const [row] = await db.query<{ uid: string; user_id: string }>(
      'SELECT uid, user_id::text FROM access_keys WHERE namespace = $1 AND name = $2',
      [seeded.namespace, seeded.name],
    );
    const next = generateAccessKey();
    await upsertAccessKey(
      db,
      {
        namespace: seeded.namespace,
        name: seeded.name,
        uid: row?.uid ?? '',
        userId: row?.user_id ?? '',
        keyHash: hashKey(next),
        keyPrefix: keyPrefix(next),
        revoked: false,
        routing: 'PlanOnly',
        bedrock: { region: 'us-east-1', api: 'Converse', model: null, modelMap: {} },
      },
      1,
    );
    const rotatedAt = Date.now();
    expect((await post(next)).status).toBe(200);
    expect((await post(seeded.key)).status).toBe(200);
    await expect.poll(async () => (await post(seeded.key)).status, { timeout: 4000, interval: 50 }).toBe(404);
    // Refused only once the grace period (1 s) had run out, and the new key still works.
    expect(Date.now() - rotatedAt).toBeGreaterThanOrEqual(900);
    expect((await post(next)).status).toBe(200);
  });
});
