import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessKey,
  createTestDatabase,
  documents,
  mountSmallTmpfs,
  proxyUser,
  secret,
  startAnthropicServer,
  startCcproxy,
  startThrowawayPostgres,
  type AnthropicTestServer,
  type CcproxyProcess,
  type SmallTmpfs,
  type ThrowawayPostgres,
  usageRecord,
} from '@ccproxy/test-harness';

const key = 'ak_adversarial_spool_key_0123456789abcdefghij';
const manifests = documents(
  proxyUser('team-d', 'dora'),
  accessKey('team-d', 'dora-key', { user: 'dora', routing: 'PlanOnly' }),
  secret('team-d', 'dora-key', { accessKey: key }),
);
const hasher = 'adversarial-spool-hasher-secret-0123456789';

/** Sends `n` requests at once (every other one streaming); each must be a complete 200. Returns their ids. */
async function sendMany(proxy: CcproxyProcess, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const stream = i % 2 === 1;
      const response = await fetch(`${proxy.url}/ak/${key}/v1/messages`, {
        method: 'POST',
        body: JSON.stringify({
          model: 'claude-test-model',
          max_tokens: 5,
          stream,
          messages: [{ role: 'user', content: 'hi' }],
        }),
        headers: { 'x-api-key': 'sk-ant-x', 'content-type': 'application/json' },
      });
      const body = await response.text();
      expect(response.status, body).toBe(200);
      if (stream) expect(body).toContain('event: message_stop');
      return response.headers.get('x-ccproxy-request-id') as string;
    }),
  );
}

async function metric(proxy: CcproxyProcess, name: string): Promise<number> {
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no metric ${name}`);
  return Number(line.slice(name.length + 1));
}

/** Until every spool file is empty (the stored ones deleted): filling the disk before would let a later deletion free space. */
async function spoolSettled(dir: string): Promise<void> {
  const sizes = async () => {
    const files = (await readdir(dir)).filter((f) => f.startsWith('usage-spool.'));
    return (await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size))).filter((size) => size > 0);
  };
  await expect.poll(sizes, { timeout: 10_000, interval: 100 }).toEqual([]);
}

const logged = (proxy: CcproxyProcess, msg: string) =>
  proxy.output
    .filter((line) => line.includes(`"msg":"${msg}`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

async function storedIds(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ request_id: string }>('SELECT request_id FROM token_usage')).rows
      .map((row) => row.request_id)
      .sort();
  } finally {
    await client.end();
  }
}

describe('01: usage spool on a full disk, torn lines, a spool folder deleted at runtime', () => {
  let dir: string;
  let postgres: ThrowawayPostgres;
  let anthropic: AnthropicTestServer;
  let tmpfs: SmallTmpfs | undefined;
  const running: CcproxyProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-adv01-'));
    await writeFile(join(dir, 'dora.yaml'), manifests);
    postgres = await startThrowawayPostgres();
    anthropic = await startAnthropicServer();
  });
  afterAll(async () => {
    for (const proxy of running) await proxy.stop('SIGKILL');
    // Unmounted even when the test failed half way: a tmpfs must not outlive the run.
    await tmpfs?.unmount();
    await anthropic?.close();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (dataDir: string, databaseUrl: string) => {
    const proxy = await startCcproxy(['local', '--manifests', dir], {
      DATABASE_URL: databaseUrl,
      CCPROXY_DATA_DIR: dataDir,
      CCPROXY_KEY_HASHER_SECRET: hasher,
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
    });
    running.push(proxy);
    return proxy;
  };

  it('serves 200s while the disk is full, keeps every record, and counts exactly the ones it cannot keep', async () => {
    const databaseUrl = await createTestDatabase(postgres.url, 'adv01_full');
    const dataDir = join(dir, 'full');
    tmpfs = await mountSmallTmpfs(join(dataDir, 'usage-spool'));
    const first = await start(dataDir, databaseUrl);
    const ids: string[] = [];

    // Healthy.
    ids.push(...(await sendMany(first, 20)));
    await expect.poll(() => storedIds(databaseUrl), { timeout: 15_000, interval: 200 }).toHaveLength(20);

    // Disk full, Postgres up: every request served, every record still reaches Postgres (from memory).
    await spoolSettled(tmpfs.dir);
    await tmpfs.fill();
    ids.push(...(await sendMany(first, 30)));
    await expect.poll(() => storedIds(databaseUrl), { timeout: 15_000, interval: 200 }).toHaveLength(50);
    expect(logged(first, 'usage spool cannot be written'), 'said once, not per request').toHaveLength(1);

    // Disk full and Postgres down: the records live in memory only, and the metrics say so.
    await postgres.pause();
    let paused = true;
    try {
      const outage = await sendMany(first, 25);
      ids.push(...outage);
      await expect.poll(() => metric(first, 'ccproxy_usage_unspooled_records'), { timeout: 5000 }).toBe(25);
      // Retried every second against the full disk, leaving no trail of empty files behind.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect((await readdir(tmpfs.dir)).filter((f) => f.startsWith('usage-spool.')).length).toBeLessThanOrEqual(2);
      // Space returns: the next flush writes them to a new spool file.
      await tmpfs.free();
      await expect.poll(() => metric(first, 'ccproxy_usage_unspooled_records'), { timeout: 10_000 }).toBe(0);
      expect(logged(first, 'usage spool is writable again').at(-1)).toMatchObject({ records: 25 });
      // A crash now loses nothing: the spool has them.
      await first.stop('SIGKILL');
      await postgres.resume();
      paused = false;
    } finally {
      if (paused) await postgres.resume();
    }

    const second = await start(dataDir, databaseUrl);
    ids.push(...(await sendMany(second, 5)));
    await expect.poll(() => storedIds(databaseUrl), { timeout: 20_000, interval: 200 }).toEqual([...ids].sort());
    // The real partial writes of the full disk were rolled back: no torn line to set aside.
    expect(await metric(second, 'ccproxy_usage_records_dropped_total{reason="spool_corrupt"}')).toBe(0);
    expect((await readdir(tmpfs.dir)).filter((f) => f.startsWith('quarantine-'))).toEqual([]);

    // Disk full and Postgres down, then a graceful stop: those records can be kept nowhere. Each is counted.
    await spoolSettled(tmpfs.dir);
    await tmpfs.fill();
    await postgres.pause();
    let lost: string[];
    try {
      lost = await sendMany(second, 10);
      expect(await metric(second, 'ccproxy_usage_records_dropped_total{reason="spool_write_failed"}')).toBe(0);
      await second.stop('SIGTERM');
    } finally {
      await postgres.resume();
    }
    const drops = logged(second, 'usage records dropped');
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ reason: 'spool_write_failed', records: lost.length });
    const stored = await storedIds(databaseUrl);
    expect(stored).toEqual([...ids].sort());
    expect(lost.filter((id) => stored.includes(id))).toEqual([]);
    await tmpfs.unmount();
  }, 120_000);

  it('starts with torn and corrupt spool lines: sets them aside, replays every whole record, counts and logs once per file', async () => {
    const databaseUrl = await createTestDatabase(postgres.url, 'adv01_torn');
    const dataDir = join(dir, 'torn');
    const spool = join(dataDir, 'usage-spool');
    await mkdir(spool, { recursive: true });
    const line = (id: string) =>
      `${JSON.stringify(
        usageRecord(id, {
          modelRequested: 'm',
          modelServed: 'm',
          inputTokens: 3,
          outputTokens: 5,
          latencyMs: 12.5,
          ttfbMs: 4,
        }),
      )}\n`;
    // What an append cut short by a full disk used to leave: half a line, then the next append glued to it.
    const bad = [
      line('torn-3').slice(0, 40) + line('glued-4'),
      'not json at all\n',
      '{"requestId":"wrong-shape"}\n',
      line('torn-tail-6').slice(0, 50),
    ];
    const fileA = [line('good-1'), line('good-2'), bad[0], line('good-5'), bad[1], bad[2], bad[3]];
    const offsets = [fileA.slice(0, 2), fileA.slice(0, 4), fileA.slice(0, 5), fileA.slice(0, 6)].map((parts) =>
      Buffer.byteLength(parts.join('')),
    );
    await writeFile(join(spool, 'usage-spool.000000000001.jsonl'), fileA.join(''));
    await writeFile(join(spool, 'usage-spool.000000000002.jsonl'), line('good-7') + line('good-8'));
    // A spool file replaced by a folder, and one that cannot be opened: left alone, logged, not fatal.
    await mkdir(join(spool, 'usage-spool.000000000003.jsonl'));
    await symlink(join(dir, 'nowhere'), join(spool, 'usage-spool.000000000004.jsonl'));

    const proxy = await start(dataDir, databaseUrl);
    await expect
      .poll(() => storedIds(databaseUrl), { timeout: 15_000, interval: 200 })
      .toEqual(['good-1', 'good-2', 'good-5', 'good-7', 'good-8']);
    expect(await metric(proxy, 'ccproxy_usage_records_dropped_total{reason="spool_corrupt"}')).toBe(4);
    const warnings = logged(proxy, 'usage spool file has torn or corrupt lines');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ file: join(spool, 'usage-spool.000000000001.jsonl'), lines: 4, offsets });
    expect(logged(proxy, 'usage spool file cannot be read')).toHaveLength(2);
    const quarantine = (await readdir(spool)).filter((f) => f.startsWith('quarantine-'));
    expect(quarantine).toHaveLength(1);
    expect(await readFile(join(spool, quarantine[0] as string), 'utf8')).toBe(
      bad.map((b) => `${b.replace(/\n$/, '')}\n`).join(''),
    );
    // Drained files go; the unreadable ones stay for a human (or a later start) to deal with.
    await expect
      .poll(async () => (await readdir(spool)).filter((f) => /^usage-spool\.00000000000[12]/.test(f)), {
        timeout: 10_000,
      })
      .toEqual([]);
    expect((await stat(join(spool, 'usage-spool.000000000003.jsonl'))).isDirectory()).toBe(true);
    await proxy.stop();
  }, 60_000);

  it('rewrites records whose spool folder was deleted at runtime, so a crash after that loses none', async () => {
    const databaseUrl = await createTestDatabase(postgres.url, 'adv01_gone');
    const dataDir = join(dir, 'gone');
    const first = await start(dataDir, databaseUrl);
    const ids = await sendMany(first, 3);
    await expect.poll(() => storedIds(databaseUrl), { timeout: 15_000, interval: 200 }).toHaveLength(3);
    await postgres.pause();
    try {
      ids.push(...(await sendMany(first, 10)));
      await rm(join(dataDir, 'usage-spool'), { recursive: true, force: true });
      // The next flush notices and writes every record it held there into a new spool file.
      const spooled = async () => {
        const files = await readdir(join(dataDir, 'usage-spool')).catch(() => [] as string[]);
        const text = (await Promise.all(files.map((f) => readFile(join(dataDir, 'usage-spool', f), 'utf8')))).join('');
        return ids.slice(3).filter((id) => !text.includes(id));
      };
      await expect.poll(spooled, { timeout: 20_000, interval: 100 }).toEqual([]);
      expect(logged(first, 'usage spool files were removed').length).toBeGreaterThanOrEqual(1);
      await first.stop('SIGKILL');
    } finally {
      await postgres.resume();
    }
    const second = await start(dataDir, databaseUrl);
    await expect.poll(() => storedIds(databaseUrl), { timeout: 20_000, interval: 200 }).toEqual([...ids].sort());
    await second.stop();
  }, 90_000);
});
