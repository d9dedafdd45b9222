import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, PgDatabase, type UsageRecord } from '@ccproxy/core';
import { freePort } from '@ccproxy/test-harness';
import { UsageRecorder } from '@ccproxy/proxy';

const usage = (requestId: string): UsageRecord => ({
  requestId,
  occurredAt: Date.now(),
  userId: null,
  accessKeyId: null,
  provider: 'plan',
  failover: false,
  modelRequested: 'm',
  modelServed: 'm',
  inputTokens: 1,
  outputTokens: 1,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  latencyMs: 1,
  ttfbMs: 1,
  status: 200,
  complete: true,
});

/** Postgres unreachable (a real refused connection): past the queue's bound, records wait on disk only. */
describe('usage recorder back-pressure', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-recorder-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps records past maxQueued on disk only: none dropped, every one in the spool for the next start', async () => {
    const logs: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logs.push(...chunk.toString().split('\n').filter(Boolean));
          done();
        },
      }),
    });
    const db = new PgDatabase({ url: `postgres://postgres@127.0.0.1:${await freePort()}/none`, logger });
    const registry = createMetricsRegistry({ processMetrics: false });
    const spoolDir = join(dir, 'spool');
    const recorder = new UsageRecorder({ db, logger, registry, spoolDir, maxQueued: 5, flushIntervalMs: 50 });
    await recorder.start();
    for (let i = 0; i < 8; i += 1) recorder.record(usage(`r-${i}`));
    await new Promise((resolve) => setImmediate(resolve));
    const metrics = await registry.getSingleMetricAsString('ccproxy_usage_records_dropped_total');
    expect(metrics).toContain('ccproxy_usage_records_dropped_total{reason="queue_full"} 0');
    expect(metrics).toContain('ccproxy_usage_records_dropped_total{reason="spool_write_failed"} 0');
    expect(await registry.getSingleMetricAsString('ccproxy_usage_disk_only_records')).toContain(
      'ccproxy_usage_disk_only_records 3',
    );
    expect(logs.filter((line) => line.includes('dropped'))).toEqual([]);
    await recorder.stop(300);
    await db.close();
    // Spooled, so not dropped: the next start stores them.
    expect(await registry.getSingleMetricAsString('ccproxy_usage_records_dropped_total')).toContain(
      'reason="spool_write_failed"} 0',
    );
    const text = (await Promise.all((await readdir(spoolDir)).map((f) => readFile(join(spoolDir, f), 'utf8')))).join(
      '',
    );
    expect(
      text
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as UsageRecord).requestId)
        .sort(),
    ).toEqual(['r-0', 'r-1', 'r-2', 'r-3', 'r-4', 'r-5', 'r-6', 'r-7']);
  });
});
