import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'undici';

const baseHeaders = {
  'content-type': 'application/json',
  'x-api-key': 'sk-ant-bench',
  'anthropic-version': '2023-06-01',
};
const now = () => Number(process.hrtime.bigint()) / 1e6;

export interface OpenLoopOptions {
  pool: Pool;
  path: string;
  body: string;
  headers?: Record<string, string>;
  ratePerSecond: number;
  durationMs: number;
  /**
   * `spin`: each request leaves on its due time to the microsecond (a timer to within half a
   * millisecond, then a spin), for latency at modest rates. `tick`: everything due goes out per
   * timer tick, for high rates where the driver shares its core with the mock upstream and a
   * spin would take that core from it. Either way latency counts from the due time, so a timer's
   * lateness is charged to every target alike.
   */
  pacing: 'spin' | 'tick';
}

export interface OpenLoopRun {
  /** One per request answered 200, ms from when it was due, in the order they were answered. */
  latencies: number[];
  /** Request i's latency at index i, in due order (NaN: it failed), for per-window figures. */
  byDue: Float64Array;
  failures: number;
  /** From the first due time until the last answer. */
  elapsedMs: number;
  /** From the first due time until the last request was sent, plus one interval: `durationMs` when the driver kept pace. */
  sendingMs: number;
}

/**
 * Open-loop load at a fixed rate: request i is due at `start + i / rate` whatever happened to
 * the ones before, and its latency counts from when it was due, not from when it was sent — so a
 * stall shows up in every request it delayed (no coordinated omission, as wrk2 measures).
 */
export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopRun> {
  const headers = { ...baseHeaders, ...options.headers };
  const total = Math.round((options.ratePerSecond * options.durationMs) / 1000);
  const dueAt = (i: number) => start + (i * 1000) / options.ratePerSecond;
  const latencies: number[] = [];
  const byDue = new Float64Array(total).fill(Number.NaN);
  let failures = 0;
  const inFlight: Promise<void>[] = [];
  let lastFired = 0;
  const fire = (i: number) => {
    lastFired = now();
    inFlight.push(
      send(options.pool, options.path, options.body, headers, dueAt(i)).then((ms) => {
        if (ms === undefined) return void (failures += 1);
        latencies.push(ms);
        byDue[i] = ms;
      }),
    );
  };
  const start = now() + 5;
  for (let i = 0; i < total;) {
    if (options.pacing === 'spin') {
      const due = dueAt(i);
      // Read the clock once: under steal, a second read can already be past the due time.
      const ahead = due - now();
      if (ahead > 1) await sleep(ahead - 0.5);
      while (now() < due) {
        // The last half millisecond: timers are too coarse for sub-ms schedules.
      }
      fire(i);
      i += 1;
    } else {
      for (; i < total && dueAt(i) <= now(); i += 1) fire(i);
      await sleep(Math.max(0, dueAt(i) - now()));
    }
  }
  await Promise.all(inFlight);
  return {
    latencies,
    byDue,
    failures,
    elapsedMs: now() - start,
    sendingMs: lastFired - start + 1000 / options.ratePerSecond,
  };
}

async function send(
  pool: Pool,
  path: string,
  body: string,
  headers: Record<string, string>,
  due: number,
): Promise<number | undefined> {
  try {
    const response = await pool.request({ path, method: 'POST', body, headers });
    await response.body.dump({ limit: Number.POSITIVE_INFINITY });
    return response.statusCode === 200 ? now() - due : undefined;
  } catch {
    return undefined;
  }
}
