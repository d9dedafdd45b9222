import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToIo, setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher, Pool } from 'undici';

/**
 * The stream side of the load driver, shared by the capacity ladder and the memory pass: paced
 * SSE streams opened out of phase, each counted by a probe that never parses and never allocates
 * per event, into one tally per rung.
 */
const separator = Buffer.from('\n\n');
const newline = 0x0a;
const baseHeaders = {
  'content-type': 'application/json',
  'x-api-key': 'sk-ant-bench',
  'anthropic-version': '2023-06-01',
};
const rigErrorCodes = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL']);

/** Where a stream goes and who is charged for it. */
export interface StreamTarget {
  name: string;
  origin: string;
  path: string;
  extraHeaders?: Record<string, string>;
  /** The process whose RSS and CPU are charged to the target; undefined for `direct`. */
  pid?: number;
  /** Where the target's inspector listens once SIGUSR1 wakes it (the memory pass's forced GC). */
  inspectPort?: number;
}

/** One stream's request: `events` deltas, one every `gapMs`, from the bench upstream. */
export function streamDispatch(
  target: StreamTarget,
  events: number,
  gapMs: number,
  body: string,
): Dispatcher.DispatchOptions {
  const headers = {
    ...baseHeaders,
    'x-bench-events': String(events),
    'x-bench-gap-ms': String(gapMs),
    ...target.extraHeaders,
  };
  return { path: target.path, method: 'POST', headers, body };
}

/**
 * A rung's shared books: gaps go to one preallocated array so the per-event path never allocates,
 * and `allDone` settles once every stream has ended, however it ended.
 */
export class RungTally {
  readonly gaps: Float64Array;
  readonly expected: number;
  readonly allDone: Promise<void>;
  readonly queueAfterMs: number;
  gapCount = 0;
  /** Streams that have had their first event. */
  started = 0;
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
    if (streams === 0) this.resolve();
  }

  fail(error: Error | string): void {
    this.errors += 1;
    const code = typeof error === 'string' ? undefined : (error as NodeJS.ErrnoException).code;
    if (code !== undefined && rigErrorCodes.has(code)) this.rigErrors += 1;
    this.firstError ??= typeof error === 'string' ? error : `${code ?? error.name}: ${error.message}`;
  }

  firstEvent(waitedMs: number): void {
    this.started += 1;
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
    if (seen >= 3 && seen <= tally.expected - 4 && tally.gapCount < tally.gaps.length)
      tally.gaps[tally.gapCount++] = at - this.last;
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
export async function openStreams(
  pool: Pool,
  n: number,
  gapMs: number,
  dispatch: Dispatcher.DispatchOptions,
  tally: RungTally,
): Promise<void> {
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
export async function within(promise: Promise<void>, ms: number): Promise<void> {
  const abort = new AbortController();
  await Promise.race([promise, sleep(ms, undefined, { signal: abort.signal }).catch(() => undefined)]);
  abort.abort();
}
