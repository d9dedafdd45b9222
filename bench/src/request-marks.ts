import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { ServerResponse, type IncomingMessage } from 'node:http';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { monotonicMs } from './drivers.ts';

/**
 * Preload (`--import`) for the tail-anatomy pass: in the upstream, the floor and ccproxy it marks,
 * per request tagged `x-bench-seq`, when the process's JavaScript saw the request, finished
 * reading its body, called the upstream, got the upstream's head and made its first write; and
 * every GC pause. All on the monotonic clock every process on the machine shares (µs), so the
 * driver can lay one request's marks from three processes on one line. SIGUSR2 writes them to
 * `$BENCH_MARKS_DIR/marks-<pid>.json`. Without `BENCH_MARKS_DIR` it does nothing.
 */
export interface RequestMarks {
  start: number;
  bodyEnd?: number;
  /** The proxy created its upstream request (undici). */
  create?: number;
  /** The proxy got the upstream's response head. */
  headers?: number;
  firstWrite?: number;
}

export interface MarksFile {
  marks: Record<string, RequestMarks>;
  /** [start, duration] of every GC pause, µs. */
  gcs: Array<[number, number]>;
}

export const marksFileOf = (dir: string, pid: number): string => `${dir}/marks-${pid}.json`;

/** µs on the monotonic clock every process on the machine shares (the drivers' clock). */
export const nowUs = (): number => monotonicMs() * 1e3;

function install(dir: string): void {
  const marks = new Map<string, RequestMarks>();
  const byRequest = new WeakMap<object, RequestMarks>();
  const gcs: MarksFile['gcs'] = [];
  // Concurrency 1: the upstream request a proxy creates belongs to the request it is serving.
  let serving: RequestMarks | undefined;
  subscribe('http.server.request.start', (message) => {
    const request = (message as { request: IncomingMessage }).request;
    const seq = request.headers['x-bench-seq'];
    if (typeof seq !== 'string') return;
    const entry: RequestMarks = { start: nowUs() };
    marks.set(seq, entry);
    byRequest.set(request, entry);
    serving = entry;
    request.once('end', () => (entry.bodyEnd = nowUs()));
  });
  subscribe('undici:request:create', (message) => {
    if (serving === undefined || serving.create !== undefined) return;
    serving.create = nowUs();
    byRequest.set((message as { request: object }).request, serving);
  });
  subscribe('undici:request:headers', (message) => {
    const entry = byRequest.get((message as { request: object }).request);
    if (entry !== undefined) entry.headers ??= nowUs();
  });
  for (const method of ['write', 'end'] as const) {
    const original = ServerResponse.prototype[method] as (...args: unknown[]) => unknown;
    ServerResponse.prototype[method] = function (this: ServerResponse, ...args: unknown[]) {
      const entry = byRequest.get(this.req);
      if (entry !== undefined) entry.firstWrite ??= nowUs();
      return original.apply(this, args);
    } as never;
  }
  const originUs = nowUs() - performance.now() * 1e3;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcs.push([originUs + entry.startTime * 1e3, entry.duration * 1e3]);
  }).observe({ entryTypes: ['gc'] });
  process.on('SIGUSR2', () => {
    const file: MarksFile = { marks: Object.fromEntries(marks), gcs };
    writeFileSync(marksFileOf(dir, process.pid), JSON.stringify(file));
  });
}

const dir = process.env.BENCH_MARKS_DIR;
if (dir !== undefined) install(dir);
