import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  accessKey,
  createTestDatabase,
  documents,
  proxyUser,
  secret,
  startAnthropicServer,
  startCcproxy,
  type AnthropicTestServer,
  type CcproxyProcess,
} from '@ccproxy/test-harness';

const key = 'ak_replica_test_key_0123456789abcdefghijk';
const manifest = (revoked: boolean) =>
  documents(
    proxyUser('team-r', 'dana', '{ displayName: Dana }'),
    accessKey('team-r', 'dana-key', { user: 'dana', revoked }),
    secret('team-r', 'dana-key', { accessKey: key }),
  );

/**
 * Two real processes on one real Postgres: `ccproxy local` (reading the folder) and a second
 * `ccproxy proxy` replica. A change in the folder must reach both within a second.
 */
describe('revocation across replicas', () => {
  let dir: string;
  let upstream: AnthropicTestServer;
  let local: CcproxyProcess;
  let replica: CcproxyProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-replicas-'));
    await writeFile(join(dir, 'dana.yaml'), manifest(false));
    upstream = await startAnthropicServer();
    const env = {
      DATABASE_URL: await createTestDatabase(inject('postgresUrl')),
      CCPROXY_KEY_HASHER_SECRET: 'replica-test-hasher-secret-0123456789',
      ANTHROPIC_UPSTREAM_URL: upstream.url,
    };
    local = await startCcproxy(['local', '--manifests', dir], { ...env, CCPROXY_DATA_DIR: join(dir, '.data') });
    replica = await startCcproxy(['proxy'], env);
  });
  afterAll(async () => {
    await replica?.stop();
    await local?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const status = async (proxy: CcproxyProcess) => {
    const response = await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
      method: 'POST',
      body: '{"model":"m","messages":[]}',
      headers: { 'x-api-key': 'sk-ant-x' },
    });
    await response.arrayBuffer();
    return response.status;
  };
  const within1s = { timeout: 1000, interval: 10 };

  it('serves the key on both processes', async () => {
    expect(await status(local)).toBe(200);
    expect(await status(replica)).toBe(200);
  });

  it('revoking in the folder refuses the key on both within a second', async () => {
    await writeFile(join(dir, 'dana.yaml'), manifest(true));
    await expect.poll(() => status(local), within1s).toBe(404);
    await expect.poll(() => status(replica), within1s).toBe(404);
  });

  it('un-revoking brings it back; deleting the file refuses it on both within a second', async () => {
    await writeFile(join(dir, 'dana.yaml'), manifest(false));
    await expect.poll(() => status(replica), within1s).toBe(200);
    await rm(join(dir, 'dana.yaml'));
    await expect.poll(() => status(local), within1s).toBe(404);
    await expect.poll(() => status(replica), within1s).toBe(404);
  });

  it('never wrote the key anywhere: a bring-your-own key is not even in the start banner', () => {
    const logLines = [...local.output, ...replica.output].filter((line) => line.startsWith('{'));
    for (const line of logLines) expect(line).not.toContain(key);
    expect([...local.output, ...replica.output].filter((line) => line.includes(key))).toEqual([]);
    expect(replica.output.some((line) => line.includes('"msg":"request completed"'))).toBe(true);
  });
});
