import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { openInspector, type InspectorSession } from './inspector-session.ts';
import { fitLine } from './stats.ts';
import { openStreams, RungTally, streamDispatch, within, type StreamTarget } from './stream-probe.ts';

/**
 * Memory per stream (perf-anchors §5.5 S6, §5.6): N slow streams held open at once, a forced full
 * GC in the target, then its `process.memoryUsage()`; the least-squares slope over N of RSS and of
 * the live JS heap (+ Buffers) is what one more open stream costs. The capacity ladder's peak-RSS
 * slope cannot say this: peak RSS is mostly garbage not yet collected, and it rises with N for a
 * bare pass-through too.
 */
export interface MemoryPoint {
  streams: number;
  /** Streams that had their first event before the sample; a point short of N is left out of the fit. */
  started: number;
  rssKiB: number;
  heapUsedKiB: number;
  /** Memory outside the JS heap that JS objects own (Buffers, ArrayBuffers). */
  externalKiB: number;
}

export interface StreamMemory {
  gapMs: number;
  points: MemoryPoint[];
  rssKiBPerStream: number;
  rssR2: number;
  /** heapUsed + external per stream: what the process's own objects hold for a stream. */
  liveKiBPerStream: number;
  liveR2: number;
}

export interface MemoryOptions {
  counts: number[];
  gapMs: number;
  body: string;
}

const kib = (bytes: number) => bytes / 1024;

export async function measureStreamMemory(
  target: StreamTarget & { pid: number; inspectPort: number },
  options: MemoryOptions,
): Promise<StreamMemory> {
  const inspector = await openInspector(target.pid, target.inspectPort);
  const points: MemoryPoint[] = [];
  try {
    for (const n of [0, ...options.counts]) points.push(await memoryAt(target, n, options, inspector));
  } finally {
    inspector.close();
  }
  const full = points.filter((p) => p.started === p.streams);
  const rss = fitLine(full.map((p) => ({ x: p.streams, y: p.rssKiB })));
  const live = fitLine(full.map((p) => ({ x: p.streams, y: p.heapUsedKiB + p.externalKiB })));
  return {
    gapMs: options.gapMs,
    points,
    rssKiBPerStream: rss.slope,
    rssR2: rss.r2,
    liveKiBPerStream: live.slope,
    liveR2: live.r2,
  };
}

/** Opens `n` streams long enough to outlast the sample, waits until each has spoken, samples, then drops them. */
async function memoryAt(
  target: StreamTarget,
  n: number,
  options: MemoryOptions,
  inspector: InspectorSession,
): Promise<MemoryPoint> {
  const events = Math.ceil(120_000 / options.gapMs);
  const tally = new RungTally(n, events, options.gapMs);
  const pool = new Pool(target.origin, { connections: Math.max(1, n), pipelining: 1, connect: { noDelay: true } });
  try {
    await openStreams(pool, n, options.gapMs, streamDispatch(target, events, options.gapMs, options.body), tally);
    for (let waited = 0; tally.started + tally.errors < n && waited < 15_000; waited += 50) await sleep(50);
    // One more pace: every stream has passed a delta through, so its per-stream state is all there.
    await sleep(options.gapMs + 200);
    const usage = await inspector.liveMemory();
    return {
      streams: n,
      started: tally.started,
      rssKiB: kib(usage.rss),
      heapUsedKiB: kib(usage.heapUsed),
      externalKiB: kib(usage.external),
    };
  } finally {
    await pool.destroy();
    await within(tally.allDone, 5_000);
    // Let the target see the closes and free the streams before the next count.
    await sleep(1_000);
  }
}
