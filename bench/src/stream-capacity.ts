import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { rerunFailed, watchWindow, type WindowUsage } from './proc-stats.ts';
import { fitLine } from './stats.ts';
import { openStreams, RungTally, streamDispatch, within, type StreamTarget } from './stream-probe.ts';

/**
 * Concurrent-stream capacity (perf-anchors §5.5 S4): a ladder of rungs, each
 * holding N paced SSE streams open at once, and the highest rung the target carried without
 * losing an event, failing a stream or stalling one past 10× its pace. Each stream has its own
 * connection, as each Claude Code session would.
 */
export interface CapacityOptions {
  ladder: number[];
  holdMs: number;
  gapMs: number;
  body: string;
  /** Quiet time before each rung's baseline RSS sample (default 500 ms). */
  settleMs?: number;
  /** The core the driver and the mock upstream share, watched for the rig guard (default 0). */
  rigCpu?: number;
  /** An unrecorded first rung of this many ms (default 2 000, 0 for none): §5.7 discards JIT warm-up. */
  warmupMs?: number;
  onRung?: (rung: CapacityRung) => void;
}

export interface CapacityRung {
  streams: number;
  held: boolean;
  lostEvents: number;
  errors: number;
  /** Errors the driver's own box caused (EMFILE, EADDRNOTAVAIL): a rig ceiling, not the target's. */
  rigErrors: number;
  firstError?: string;
  maxGapMs: number;
  gapP99Ms: number;
  /** Longest wait from sending a request to its first event (connection ramp, SYN retransmits). */
  maxFirstEventMs: number;
  /** Streams whose first event took over half a stream's life: queued behind others (a capped pool), not concurrent. */
  queued: number;
  eventsPerSecond: number;
  rssBeforeKiB: number;
  rssPeakKiB: number;
  /** (peak − before) / N: RSS seldom falls between rungs, so this undercounts; memory per stream is `stream-memory.ts`'s. */
  rssPerStreamKiB: number;
  cpuMicrosPerEvent: number;
  /** The driver process's CPU over the rung, % of one core. */
  driverCpuPercent: number;
  /** The rig core's utilisation (driver + mock upstream + anything else on it). */
  rigCpuPercent: number;
  /** §5.7: over 90 % on the rig side, so this rung bounds the rig, not the target. */
  rigLimited: boolean;
  /** Box-wide SYNs dropped on a full accept queue (target's or mock's): explains a slow first event. */
  listenDrops: number;
  /** Share of the machine's CPU time the hypervisor stole during the rung, 0–1. */
  steal: number;
  /** Earlier failed runs of this rung, discarded (see `rerunFailed`). */
  reruns?: number;
}

export interface CapacityResult {
  rungs: CapacityRung[];
  maxHeld: number;
  /** Least-squares slope of peak RSS over the held rungs, with its R² (kept for the record; peak RSS counts uncollected garbage, so memory per stream is `stream-memory.ts`'s). */
  rssSlopeKiBPerStream: number;
  rssR2: number;
}

async function runRung(target: StreamTarget, n: number, options: CapacityOptions): Promise<CapacityRung> {
  const events = Math.round(options.holdMs / options.gapMs);
  const tally = new RungTally(n, events, options.gapMs);
  const dispatch = streamDispatch(target, events, options.gapMs, options.body);
  const pool = new Pool(target.origin, { connections: n, pipelining: 1, connect: { noDelay: true } });
  await sleep(options.settleMs ?? 500);
  const window = watchWindow(target.pid, options.rigCpu ?? 0);
  let usage: WindowUsage;
  try {
    await openStreams(pool, n, options.gapMs, dispatch, tally);
    // A stream still open this long after it should have ended is stalled: abort it, count it.
    await within(tally.allDone, options.holdMs * 2 + 10_000);
  } finally {
    usage = window.stop();
    await pool.destroy();
    await within(tally.allDone, 5_000);
  }
  return summarize(n, options.gapMs, tally, usage);
}

function summarize(n: number, gapMs: number, tally: RungTally, usage: WindowUsage): CapacityRung {
  const sorted = tally.gaps.subarray(0, tally.gapCount).sort();
  const maxGapMs = sorted.at(-1) ?? Number.NaN;
  const { wallMs, rssBeforeKiB, rssPeakKiB, driverCpuPercent, rigCpuPercent } = usage;
  return {
    streams: n,
    held: tally.lost === 0 && tally.errors === 0 && tally.queued === 0 && maxGapMs <= 10 * gapMs,
    lostEvents: tally.lost,
    errors: tally.errors,
    rigErrors: tally.rigErrors,
    ...(tally.firstError === undefined ? {} : { firstError: tally.firstError }),
    maxGapMs,
    gapP99Ms: sorted.length === 0 ? Number.NaN : (sorted[Math.floor(0.99 * sorted.length)] ?? Number.NaN),
    maxFirstEventMs: tally.maxFirstEvent,
    queued: tally.queued,
    eventsPerSecond: tally.received / (wallMs / 1000),
    rssBeforeKiB,
    rssPeakKiB,
    rssPerStreamKiB: (rssPeakKiB - rssBeforeKiB) / n,
    cpuMicrosPerEvent: usage.targetCpuMicros / tally.received,
    driverCpuPercent,
    rigCpuPercent,
    rigLimited: driverCpuPercent > 90 || rigCpuPercent > 90,
    listenDrops: usage.listenDrops,
    steal: usage.steal,
  };
}

/** Climbs the ladder until the first rung the target does not hold. */
export async function measureStreamCapacity(target: StreamTarget, options: CapacityOptions): Promise<CapacityResult> {
  const rungs: CapacityRung[] = [];
  const warmupMs = options.warmupMs ?? 2_000;
  const first = options.ladder[0];
  if (warmupMs > 0 && first !== undefined) await runRung(target, first, { ...options, holdMs: warmupMs });
  for (const n of options.ladder) {
    const rung = await rerunFailed(
      () => runRung(target, n, options),
      (r) => !r.held,
    );
    rungs.push(rung);
    options.onRung?.(rung);
    if (!rung.held) break;
    // Let the rung's sockets close (and the target free them) before the next one opens.
    await sleep(1_000);
  }
  // Only held rungs carried N streams at once; a failed one may have queued half of them.
  const fit = fitLine(rungs.filter((r) => r.held).map((r) => ({ x: r.streams, y: r.rssPeakKiB })));
  return {
    rungs,
    maxHeld: Math.max(0, ...rungs.filter((r) => r.held).map((r) => r.streams)),
    rssSlopeKiBPerStream: fit.slope,
    rssR2: fit.r2,
  };
}
