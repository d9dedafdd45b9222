import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToIo, setTimeout as sleep } from 'node:timers/promises';
import { Pool, type Dispatcher } from 'undici';
import { rerunFailed, watchWindow, type WindowUsage } from './proc-stats.ts';

/**
 * Concurrent-stream capacity (perf-anchors §5.5 S4, with S6's memory fit): a ladder of rungs, each
 * holding N paced SSE streams open at once, and the highest rung the target carried without
 * losing an event, failing a stream or stalling one past 10× its pace. Each stream has its own
 * connection, as each Claude Code session would.
 */
export interface StreamTarget {
  name: string;
  origin: string;
  path: string;
  extraHeaders?: Record<string, string>;
  /** The process whose RSS and CPU are charged to the target; undefined for `direct`. */
  pid?: number;
}

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
  /** (peak − before) / N: RSS seldom falls between rungs, so this undercounts; prefer the slope. */
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
  /** §5.6: per-stream memory is the least-squares slope of peak RSS over N, with its R². */
  rssSlopeKiBPerStream: number;
  rssR2: number;
}

const separator = Buffer.from('\n\n');
const newline = 0x0a;
const baseHeaders = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-bench', 'anthropic-version': '2023-06-01' };
const rigErrorCodes = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL']);

/**
 * A rung's shared books: gaps go to one preallocated array so the per-event path never allocates,
 * and `allDone` settles once every stream has ended, however it ended.
 */
class RungTally {
  readonly gaps: Float64Array;
  readonly expected: number;
  readonly allDone: Promise<void>;
  readonly queueAfterMs: number;
  gapCount = 0;
  maxFirstEvent = 0;
  queued = 0;
  received = 0;
  lost = 0;
  errors = 0;
  rigErrors = 0;
  firstError: string | undefined;
  private pending: number;
  private resolve: () => void = () => undefined;

  constructor(streams: number, events: number, gapMs: number) {
    this.gaps = new Float64Array(streams * events);
    this.expected = events + 5;
    this.queueAfterMs = (events * gapMs) / 2;
    this.pending = streams;
    this.allDone = new Promise((resolve) => (this.resolve = resolve));
  }

  fail(error: Error | string): void {
    this.errors += 1;
    const code = typeof error === 'string' ? undefined : (error as NodeJS.ErrnoException).code;
    if (code !== undefined && rigErrorCodes.has(code)) this.rigErrors += 1;
    this.firstError ??= typeof error === 'string' ? error : `${code ?? error.name}: ${error.message}`;
  }

  firstEvent(waitedMs: number): void {
    if (waitedMs > this.maxFirstEvent) this.maxFirstEvent = waitedMs;
    if (waitedMs > this.queueAfterMs) this.queued += 1;
  }

  ended(seen: number): void {
    this.received += seen;
    this.lost += Math.max(0, this.expected - seen);
    if (--this.pending === 0) this.resolve();
  }
}

/**
 * One stream's handler: counts events by their "\n\n" terminator (no SSE parsing) and records the
 * gap before every delta but the first — head, first delta and tail ride with other writes, so
 * only delta-to-delta gaps measure pacing.
 */
class StreamProbe implements Dispatcher.DispatchHandler {
  private readonly tally: RungTally;
  private readonly sent = performance.now();
  private seen = 0;
  private last = 0;
  /** The previous chunk ended with the first "\n" of a terminator, the next begins with the second. */
  private carry = false;
  private ok = false;
  private finished = false;

  constructor(tally: RungTally) {
    this.tally = tally;
  }

  /** Nothing to do here, but undici tells the new handler API from the legacy one by its presence. */
  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.ok = statusCode === 200;
    if (!this.ok) this.tally.fail(`HTTP ${statusCode}`);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.ok) return;
    const at = performance.now();
    let end = 0;
    if (this.carry && chunk[0] === newline) {
      this.event(at);
      end = 1;
    }
    for (let i = chunk.indexOf(separator, end); i !== -1; i = chunk.indexOf(separator, end)) {
      this.event(at);
      end = i + 2;
    }
    this.carry = chunk.length > end && chunk[chunk.length - 1] === newline;
  }

  onResponseEnd(): void {
    this.finish();
  }

  /** The stream failed (or never started): one error, and whatever did not arrive is lost. */
  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (!this.finished) this.tally.fail(error);
    this.finish();
  }

  private event(at: number): void {
    const { tally, seen } = this;
    // Events 0 and 1 are the head, the first delta is 2, the last is expected - 4.
    if (seen >= 3 && seen <= tally.expected - 4 && tally.gapCount < tally.gaps.length) tally.gaps[tally.gapCount++] = at - this.last;
    else if (seen === 0) tally.firstEvent(at - this.sent);
    this.seen = seen + 1;
    this.last = at;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.tally.ended(this.seen);
  }
}

/**
 * Starts `n` streams spread evenly over whole gap periods, so their ticks are out of phase, and
 * over as many periods as keep the starts near 3,200/s (64 per 20 ms) so connects don't burst.
 */
async function openStreams(pool: Pool, n: number, gapMs: number, dispatch: Dispatcher.DispatchOptions, tally: RungTally): Promise<void> {
  const spreadMs = gapMs * Math.ceil(n / (3.2 * gapMs));
  const start = performance.now();
  for (let i = 0; i < n; i += 1) {
    const wait = start + (i * spreadMs) / n - performance.now();
    // Behind schedule, still yield every 16 starts: a tight dispatch loop would starve the sockets
    // already open (connects, heads, events), inflating first-event times and gaps with N.
    if (wait >= 1) await sleep(wait);
    else if (i % 16 === 15) await yieldToIo();
    const probe = new StreamProbe(tally);
    try {
      pool.dispatch(dispatch, probe);
    } catch (error) {
      probe.onResponseError(undefined, error as Error);
    }
  }
}

/** Resolves after `promise` or `ms`, whichever is first, leaving no timer behind. */
async function within(promise: Promise<void>, ms: number): Promise<void> {
  const abort = new AbortController();
  await Promise.race([promise, sleep(ms, undefined, { signal: abort.signal }).catch(() => undefined)]);
  abort.abort();
}

async function runRung(target: StreamTarget, n: number, options: CapacityOptions): Promise<CapacityRung> {
  const events = Math.round(options.holdMs / options.gapMs);
  const tally = new RungTally(n, events, options.gapMs);
  const headers = { ...baseHeaders, 'x-bench-events': String(events), 'x-bench-gap-ms': String(options.gapMs), ...target.extraHeaders };
  const dispatch: Dispatcher.DispatchOptions = { path: target.path, method: 'POST', headers, body: options.body };
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

/** Least-squares slope of y over x and its R² (NaN with fewer than two distinct x). */
function fitLine(points: readonly { x: number; y: number }[]): { slope: number; r2: number } {
  const usable = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const sum = (f: (p: { x: number; y: number }) => number) => usable.reduce((total, p) => total + f(p), 0);
  const mx = sum((p) => p.x) / usable.length;
  const my = sum((p) => p.y) / usable.length;
  const sxx = sum((p) => (p.x - mx) ** 2);
  const syy = sum((p) => (p.y - my) ** 2);
  const sxy = sum((p) => (p.x - mx) * (p.y - my));
  if (usable.length < 2 || sxx === 0) return { slope: Number.NaN, r2: Number.NaN };
  return { slope: sxy / sxx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/** Climbs the ladder until the first rung the target does not hold. */
export async function measureStreamCapacity(target: StreamTarget, options: CapacityOptions): Promise<CapacityResult> {
  const rungs: CapacityRung[] = [];
  const warmupMs = options.warmupMs ?? 2_000;
  const first = options.ladder[0];
  if (warmupMs > 0 && first !== undefined) await runRung(target, first, { ...options, holdMs: warmupMs });
  for (const n of options.ladder) {
    const rung = await rerunFailed(() => runRung(target, n, options), (r) => !r.held);
    rungs.push(rung);
    options.onRung?.(rung);
    if (!rung.held) break;
    // Let the rung's sockets close (and the target free them) before the next one opens.
    await sleep(1_000);
  }
  // Only held rungs carried N streams at once; a failed one may have queued half of them.
  const fit = fitLine(rungs.filter((r) => r.held).map((r) => ({ x: r.streams, y: r.rssPeakKiB })));
  return { rungs, maxHeld: Math.max(0, ...rungs.filter((r) => r.held).map((r) => r.streams)), rssSlopeKiBPerStream: fit.slope, rssR2: fit.r2 };
}
