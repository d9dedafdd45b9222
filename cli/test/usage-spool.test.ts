import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessKey,
  documents,
  proxyUser,
  secret,
  startAnthropicServer,
  startCcproxy,
  startThrowawayPostgres,
  type AnthropicTestServer,
  type ThrowawayPostgres,
} from '@ccproxy/test-harness';

const key = 'ak_usage_spool_key_0123456789abcdefghijklm';
const manifests = documents(
  proxyUser('team-s', 'gus'),
  accessKey('team-s', 'gus-key', { user: 'gus', routing: 'PlanOnly' }),
  secret('team-s', 'gus-key', { accessKey: key }),
);

/** kill -9 while Postgres is down and records sit in the spool; the next start stores them, once. */
describe('usage spool across a crash', () => {
  let dir: string;
  let postgres: ThrowawayPostgres;
  let anthropic: AnthropicTestServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-spool-'));
    await writeFile(join(dir, 'gus.yaml'), manifests);
    postgres = await startThrowawayPostgres();
    anthropic = await startAnthropicServer();
  });
  afterAll(async () => {
    await anthropic?.close();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('replays the spool after kill -9 with zero lost and zero duplicated records', async () => {
    const env = {
      DATABASE_URL: postgres.url,
      CCPROXY_DATA_DIR: join(dir, '.data'),
      CCPROXY_KEY_HASHER_SECRET: 'spool-test-hasher-secret-0123456789ab',
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
    };
    const send = async (url: string) => {
      const response = await fetch(`${url}/ak/${key}/v1/messages`, {
        method: 'POST',
        body: '{"model":"claude-test-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
        headers: { 'x-api-key': 'sk-ant-x' },
      });
      await response.arrayBuffer();
      expect(response.status).toBe(200);
      return response.headers.get('x-ccproxy-request-id') as string;
    };
    const first = await startCcproxy(['local', '--manifests', dir], env);
    const ids: string[] = [];
    let paused = false;
    try {
      ids.push(await send(first.url));
      await postgres.pause();
      paused = true;
      for (let i = 0; i < 10; i += 1) ids.push(await send(first.url));
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      first.child.kill('SIGKILL');
      await first.stop();
      if (paused) await postgres.resume();
    }
    // A crash mid-append leaves a line cut short at the end of the newest spool file: it is skipped, not fatal.
    const spool = join(dir, '.data', 'usage-spool');
    const newest = (await readdir(spool)).sort().at(-1);
    expect(newest).toBeDefined();
    await appendFile(join(spool, newest as string), '{"requestId":"cut-short","occurredAt":17');

    const second = await startCcproxy(['local', '--manifests', dir], env);
    try {
      const client = new pg.Client({ connectionString: postgres.url });
      await client.connect();
      try {
        await expect
          .poll(async () => (await client.query('SELECT count(*)::int AS n FROM token_usage')).rows[0]?.n, {
            timeout: 15_000,
            interval: 200,
          })
          .toBe(ids.length);
        const rows = await client.query<{ request_id: string }>('SELECT request_id FROM token_usage');
        expect(rows.rows.map((r) => r.request_id).sort()).toEqual([...ids].sort());
        const sums = await client.query<{ requests: string }>(
          "SELECT sum(requests)::text AS requests FROM usage_aggregates WHERE bucket = 'day'",
        );
        expect(sums.rows[0]?.requests).toBe(String(ids.length));
      } finally {
        await client.end();
      }
    } finally {
      await second.stop();
    }
  });
});
