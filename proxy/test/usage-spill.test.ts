import { mkdir, mkdtemp, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLogger,
  createMetricsRegistry,
  migrate,
  PgDatabase,
  type Database,
  type Logger,
  type UsageRecord,
} from '@ccproxy/core';
import { freePort, startThrowawayPostgres, usageRecord, type ThrowawayPostgres } from '@ccproxy/test-harness';
import { UsageRecorder, type UsageRecorderOptions } from '@ccproxy/proxy';

const usage = (requestId: string): UsageRecord => usageRecord(requestId);

const turn = () => new Promise((resolve) => setImmediate(resolve));

function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const found = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  if (found === undefined) throw new Error(`no ${name} ${JSON.stringify(labels)}`);
  return found.value;
}

const dropped = async (registry: Registry) =>
  Object.fromEntries(
    await Promise.all(
      ['queue_full', 'spool_write_failed', 'spool_corrupt', 'spool_lost'].map(
        async (reason) => [reason, await value(registry, 'ccproxy_usage_records_dropped_total', { reason })] as const,
      ),
    ),
  );
const noDrops = { queue_full: 0, spool_write_failed: 0, spool_corrupt: 0, spool_lost: 0 };

/** Records in memory: waiting minus those on disk only. */
const inMemory = async (registry: Registry) =>
  (await value(registry, 'ccproxy_usage_spool_records')) - (await value(registry, 'ccproxy_usage_disk_only_records'));

const spoolFiles = async (dir: string) =>
  (await readdir(dir)).filter((f) => /^usage-spool\.\d+\.jsonl$/.test(f)).sort();

async function idsIn(dir: string, files: string[]): Promise<string[]> {
  const texts = await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
  return texts.flatMap((t) =>
    t
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as UsageRecord).requestId),
  );
}

/**
 * Past its memory bound the recorder keeps records on disk only and reads them back as Postgres
 * drains the queue: an outage of any length costs disk, not memory, and no record. Real
 * PostgreSQL (paused and resumed), real files.
 */
describe('usage records past the memory bound', () => {
  let postgres: ThrowawayPostgres;
  let db: Database;
  let dir: string;
  const recorders: UsageRecorder[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-spill-'));
    postgres = await startThrowawayPostgres();
    db = new PgDatabase({ url: postgres.url, logger: createLogger({ level: 'silent' }), reconnectDelayMs: 100 });
    await migrate(db, createLogger({ level: 'silent' }));
  }, 60_000);
  afterAll(async () => {
    for (const recorder of recorders) await recorder.stop(100);
    await db?.close();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const recorder = (options: Partial<UsageRecorderOptions> & { spoolDir: string; db: Database }) => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const { logger, lines } = capturingLogger();
    const made = new UsageRecorder({ logger, registry, flushIntervalMs: 50, ...options });
    recorders.push(made);
    return { recorder: made, registry, lines };
  };

  const storedCount = async (prefix: string) =>
    Number(
      (
        await db.query<{ n: string }>(
          'SELECT count(DISTINCT request_id) AS n FROM token_usage WHERE request_id LIKE $1',
          [`${prefix}%`],
        )
      )[0]?.n,
    );

  it('through an outage: memory stays at the bound, the rest waits on disk, and every record is stored once it ends', async () => {
    const spoolDir = join(dir, 'outage');
    const { recorder: r, registry } = recorder({ db, spoolDir, maxQueued: 100 });
    await r.start();
    await postgres.pause();
    try {
      for (let i = 0; i < 2_000; i += 50) {
        for (let j = i; j < i + 50; j += 1) r.record(usage(`outage-${j}`));
        await turn();
        expect(await inMemory(registry)).toBeLessThanOrEqual(100);
      }
      expect(await value(registry, 'ccproxy_usage_spool_records')).toBe(2_000);
      expect(await value(registry, 'ccproxy_usage_disk_only_records')).toBe(1_900);
      // Every record is in some spool file, exactly once.
      const ids = await idsIn(spoolDir, await spoolFiles(spoolDir));
      expect(new Set(ids).size).toBe(2_000);
    } finally {
      await postgres.resume();
    }
    await expect.poll(() => storedCount('outage-'), { timeout: 30_000, interval: 100 }).toBe(2_000);
    await expect.poll(() => r.pending, { timeout: 5_000 }).toBe(0);
    expect(await dropped(registry)).toEqual(noDrops);
    await expect.poll(() => spoolFiles(spoolDir), { timeout: 5_000 }).toHaveLength(1); // the open one, empty
  }, 90_000);

  it('after a restart with more on disk than the bound: loads up to the bound, reads the rest back as it drains', async () => {
    const spoolDir = join(dir, 'restart');
    const unreachable = new PgDatabase({
      url: `postgres://postgres@127.0.0.1:${await freePort()}/none`,
      logger: createLogger({ level: 'silent' }),
    });
    const first = recorder({ db: unreachable, spoolDir, maxQueued: 10 });
    await first.recorder.start();
    for (let i = 0; i < 100; i += 1) first.recorder.record(usage(`restart-${i}`));
    await turn();
    await first.recorder.stop(100);
    await unreachable.close();
    expect(await dropped(first.registry)).toEqual(noDrops);
    expect(first.lines.filter((line) => line.includes('dropped'))).toEqual([]);
    expect(new Set(await idsIn(spoolDir, await spoolFiles(spoolDir))).size).toBe(100);

    // No periodic flush: what `start` loaded is what memory holds.
    const second = recorder({ db, spoolDir, maxQueued: 10, flushIntervalMs: 3_600_000 });
    await second.recorder.start();
    expect(second.recorder.pending).toBe(100);
    expect(await inMemory(second.registry)).toBeLessThanOrEqual(10);
    await second.recorder.flush();
    expect(await storedCount('restart-')).toBe(100);
    expect(second.recorder.pending).toBe(0);
    expect(await dropped(second.registry)).toEqual(noDrops);
    expect(await spoolFiles(spoolDir)).toHaveLength(1);
  }, 60_000);

  it('a file of disk-only records deleted before they were stored is counted spool_lost and logged, never silent', async () => {
    const spoolDir = join(dir, 'lost');
    const { recorder: r, registry, lines } = recorder({ db, spoolDir, maxQueued: 4 });
    await r.start();
    await postgres.pause();
    try {
      for (let i = 0; i < 7; i += 1) r.record(usage(`lost-${i}`));
      await turn();
      // maxQueued 4: one record per disk-only file; remove the files holding lost-4 … lost-6.
      for (const file of await spoolFiles(spoolDir)) {
        const ids = await idsIn(spoolDir, [file]);
        if (ids.length > 0 && ids.every((id) => Number(id.slice('lost-'.length)) >= 4))
          await unlink(join(spoolDir, file));
      }
    } finally {
      await postgres.resume();
    }
    await expect.poll(() => storedCount('lost-'), { timeout: 30_000, interval: 100 }).toBe(4);
    await expect.poll(async () => (await dropped(registry)).spool_lost, { timeout: 5_000 }).toBe(3);
    expect(lines.some((line) => line.includes('"reason":"spool_lost"') && line.includes('"records":1'))).toBe(true);
    expect(r.pending).toBe(0);
  }, 60_000);

  it('records past the bound that the disk refuses are counted queue_full, logged once, and the next turn writes again', async () => {
    const spoolDir = join(dir, 'refused');
    const unreachable = new PgDatabase({
      url: `postgres://postgres@127.0.0.1:${await freePort()}/none`,
      logger: createLogger({ level: 'silent' }),
    });
    const {
      recorder: r,
      registry,
      lines,
    } = recorder({
      db: unreachable,
      spoolDir,
      maxQueued: 5,
      flushIntervalMs: 3_600_000,
    });
    await r.start();
    // The spool is file 0; the first disk-only file would be file 1: a folder in its place refuses it.
    await mkdir(join(spoolDir, 'usage-spool.000000000001.jsonl'));
    for (let i = 0; i < 8; i += 1) r.record(usage(`refused-${i}`));
    await turn();
    expect(await dropped(registry)).toEqual({ ...noDrops, queue_full: 3 });
    for (let i = 8; i < 10; i += 1) r.record(usage(`refused-${i}`));
    await turn();
    expect(await dropped(registry)).toEqual({ ...noDrops, queue_full: 3 });
    expect(await value(registry, 'ccproxy_usage_disk_only_records')).toBe(2);
    expect(lines.filter((line) => line.includes('cannot be written to disk'))).toHaveLength(1);
    expect(lines.filter((line) => line.includes('written to disk again'))).toHaveLength(1);
    await r.stop(100);
    await unreachable.close();
  });
});
