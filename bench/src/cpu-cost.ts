import { readdirSync, readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { streamShape } from './drivers.ts';
import { median } from './stats.ts';

/**
 * CPU per unit of work (issue 27): each proxy process's own CPU time (every thread's, from the
 * scheduler's nanosecond books, not /proc's 10 ms ticks) divided by the work it relayed, under
 * the same closed-loop load for every side: `concurrency` clients, the same requests. Sides take
 * turns round by round, rotating order, and the figure is the median of the per-round figures,
 * so a host stall spoils one round, not the verdict. Logging, metering and auth stay on: the
 * product needs them, so they are part of what a request costs.
 */
export interface CpuTarget {
  name: string;
  origin: string;
  path: string;
  extraHeaders?: Record<string, string>;
  pid: number;
}

export interface CpuCostOptions {
  rounds: number;
  concurrency: number;
  /** Non-streaming requests per side per round. */
  requests: number;
  /** Streams per side per round, each `events` deltas `gapMs` apart (one event per upstream write). */
  streams: number;
  events: number;
  gapMs: number;
  body: string;
  streamBody: string;
}

export interface CpuSide {
  /** µs of the process's CPU per answered non-streaming request; one figure per round, then their median. */
  microsPerRequest: number;
  requestRounds: number[];
  /** µs of the process's CPU per SSE event the client received. */
  microsPerEvent: number;
  eventRounds: number[];
  /** Why this side could not be measured, when it could not. */
  failed?: string;
}

export interface CpuCostResults {
  concurrency: number;
  requests: number;
  streams: number;
  events: number;
  bodyBytes: number;
  sides: Record<string, CpuSide>;
}

const baseHeaders = {
  'content-type': 'application/json',
  'x-api-key': 'sk-ant-bench',
  'anthropic-version': '2023-06-01',
};

/** CPU ns a process has used so far, all its threads (`/proc/<pid>/task/<tid>/schedstat`, field 1). */
export function cpuNanos(pid: number): number {
  let total = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // A thread that ended between the listing and the read: its time is in no file any more.
      }
    }
  } catch {
    return Number.NaN;
  }
  return total;
}

/** `count` requests through `pool` with `concurrency` in flight; resolves with what each yielded. */
async function closedLoop(
  count: number,
  concurrency: number,
  one: () => Promise<number>,
): Promise<{ units: number; failures: number }> {
  let next = 0;
  let units = 0;
  let failures = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      try {
        units += await one();
      } catch {
        failures += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { units, failures };
}

async function jsonRequest(pool: Pool, target: CpuTarget, body: string): Promise<number> {
  const res = await pool.request({
    path: target.path,
    method: 'POST',
    body,
    headers: { ...baseHeaders, ...target.extraHeaders },
  });
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
  return 1;
}

/** One stream; resolves with the number of SSE events the client received. */
async function streamRequest(pool: Pool, target: CpuTarget, body: string, shape: Record<string, string>) {
  const res = await pool.request({
    path: target.path,
    method: 'POST',
    body,
    headers: { ...baseHeaders, ...target.extraHeaders, ...shape },
  });
  if (res.statusCode !== 200) {
    await res.body.arrayBuffer();
    throw new Error(`HTTP ${res.statusCode}`);
  }
  let events = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>)
    for (let i = chunk.indexOf('\n\n'); i !== -1; i = chunk.indexOf('\n\n', i + 2)) events += 1;
  return events;
}

/** The process's CPU µs per unit of `work`'s output; throws when more than 1 % of the work failed. */
async function measured(pid: number, attempts: number, work: () => Promise<{ units: number; failures: number }>) {
  const before = cpuNanos(pid);
  const { units, failures } = await work();
  const spent = cpuNanos(pid) - before;
  if (failures > attempts * 0.01) throw new Error(`${failures} of ${attempts} failed`);
  return spent / 1000 / Math.max(1, units);
}

export async function measureCpuCost(targets: CpuTarget[], options: CpuCostOptions): Promise<CpuCostResults> {
  const shape = streamShape(options.events, options.gapMs);
  const sides: Record<string, CpuSide> = Object.fromEntries(
    targets.map((t) => [
      t.name,
      { microsPerRequest: Number.NaN, requestRounds: [], microsPerEvent: Number.NaN, eventRounds: [] },
    ]),
  );
  const pools = new Map(
    targets.map((t) => [t.name, new Pool(t.origin, { connections: options.concurrency, pipelining: 1 })]),
  );
  try {
    // Warm-up: connections open, code optimised; not measured.
    for (const t of targets) {
      const pool = pools.get(t.name) as Pool;
      await closedLoop(options.concurrency * 20, options.concurrency, () => jsonRequest(pool, t, options.body)).catch(
        () => undefined,
      );
    }
    for (let round = 0; round < options.rounds; round += 1) {
      const order = [...targets.slice(round % targets.length), ...targets.slice(0, round % targets.length)];
      for (const t of order) {
        const side = sides[t.name] as CpuSide;
        if (side.failed !== undefined) continue;
        const pool = pools.get(t.name) as Pool;
        try {
          side.requestRounds.push(
            await measured(t.pid, options.requests, () =>
              closedLoop(options.requests, options.concurrency, () => jsonRequest(pool, t, options.body)),
            ),
          );
          side.eventRounds.push(
            await measured(t.pid, options.streams, () =>
              closedLoop(options.streams, options.concurrency, () => streamRequest(pool, t, options.streamBody, shape)),
            ),
          );
        } catch (error) {
          side.failed = `cannot run: ${error instanceof Error ? error.message : String(error)}`;
        }
      }
    }
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool.close()));
  }
  for (const side of Object.values(sides)) {
    side.microsPerRequest = median(side.requestRounds);
    side.microsPerEvent = median(side.eventRounds);
  }
  return {
    concurrency: options.concurrency,
    requests: options.requests,
    streams: options.streams,
    events: options.events,
    bodyBytes: options.body.length,
    sides,
  };
}
