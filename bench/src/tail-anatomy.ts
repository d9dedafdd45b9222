import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { streamShape } from './drivers.ts';
import { benchKey, startProxy, startUpstream } from './processes.ts';
import { marksFileOf, nowUs, type MarksFile, type RequestMarks } from './request-marks.ts';
import { shippedNodeFlags } from './shipped-node-flags.ts';
import { summarize } from './stats.ts';

/**
 * Where the time of a concurrency-1 request goes, slowest 1 % included: a separate upstream,
 * floor and ccproxy run with the `request-marks` preload, and each request's marks from the
 * driver and those processes are laid on one clock. Segments: the driver's send to the proxy's
 * JavaScript seeing the request (`toProxy`), the proxy's code up to its upstream call
 * (`proxyIn`), the request reaching the upstream whole (`toUpstream`), the upstream's own time,
 * its answer reaching the proxy's JavaScript (`backToProxy`), the proxy's code up to its first
 * write (`proxyOut`), and that write reaching the driver (`toClient`, first byte for streams,
 * whole body otherwise). The delivery segments include every wake-up of a sleeping process.
 */
const preload = ['--import', fileURLToPath(new URL('./request-marks.ts', import.meta.url))];
const proxySegments = ['toProxy', 'proxyIn', 'toUpstream', 'upstream', 'backToProxy', 'proxyOut', 'toClient'] as const;
type Segment = (typeof proxySegments)[number];
const inProxyCode: readonly Segment[] = ['proxyIn', 'proxyOut'];
const betweenProcesses: readonly Segment[] = ['toProxy', 'toUpstream', 'backToProxy', 'toClient'];

export interface SideAnatomy {
  /** ms, the whole request as the driver saw it. */
  total: { p50: number; p99: number };
  /** µs per segment. */
  segments: Partial<Record<Segment, { p50: number; p99: number }>>;
  /** The slowest 1 %: how their time splits, and how many overlapped one of the proxy's GC pauses. */
  slowest: {
    count: number;
    inProxyCodeShare: number;
    betweenProcessesShare: number;
    upstreamShare: number;
    overlappingGc: number;
  };
}

export interface ModeAnatomy {
  direct: SideAnatomy;
  floor: SideAnatomy;
  ccproxy: SideAnatomy;
}

export interface TailAnatomy {
  requests: number;
  streamingTtfb: ModeAnatomy;
  nonStreaming: ModeAnatomy;
}

interface Sample {
  seq: string;
  sent: number;
  received: number;
}

type Sides = Record<keyof ModeAnatomy, { client: Client; path: string }>;

export async function measureTailAnatomy(options: {
  requests: number;
  warmup: number;
  body: string;
  streamBody: string;
  database: Record<string, string>;
}): Promise<TailAnatomy> {
  const dir = await mkdtemp(join(tmpdir(), 'ccproxy-bench-marks-'));
  const env = { BENCH_MARKS_DIR: dir };
  const upstream = await startUpstream('bench/src/upstream-server.ts', [], preload, env);
  const floor = await startUpstream(
    'bench/src/floor-proxy.ts',
    [upstream.url],
    [...shippedNodeFlags(), ...preload],
    env,
  );
  const proxy = await startProxy(upstream.url, { ...options.database, ...env }, preload);
  const sides: Sides = {
    direct: { client: new Client(upstream.url, { pipelining: 1 }), path: '/v1/messages' },
    floor: { client: new Client(floor.url, { pipelining: 1 }), path: '/v1/messages' },
    ccproxy: { client: new Client(proxy.url, { pipelining: 1 }), path: `/ak/${benchKey}/v1/messages` },
  };
  try {
    const streams = await drive(sides, options.streamBody, true, options);
    const json = await drive(sides, options.body, false, options);
    const files = await collect([upstream.pid, floor.pid, proxy.pid], dir);
    const mode = (samples: Record<keyof ModeAnatomy, Sample[]>): ModeAnatomy => ({
      direct: anatomy(samples.direct, files.get(upstream.pid), undefined),
      floor: anatomy(samples.floor, files.get(upstream.pid), files.get(floor.pid)),
      ccproxy: anatomy(samples.ccproxy, files.get(upstream.pid), files.get(proxy.pid)),
    });
    return { requests: options.requests, streamingTtfb: mode(streams), nonStreaming: mode(json) };
  } finally {
    await Promise.all(Object.values(sides).map((s) => s.client.close()));
    await proxy.stop();
    for (const pid of [upstream.pid, floor.pid]) process.kill(pid, 'SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

let nextSeq = 0;

/** Requests at concurrency 1, sides taking turns in rotating order. */
async function drive(
  sides: Sides,
  body: string,
  stream: boolean,
  options: { requests: number; warmup: number },
): Promise<Record<keyof ModeAnatomy, Sample[]>> {
  const names = Object.keys(sides) as Array<keyof ModeAnatomy>;
  const samples: Record<keyof ModeAnatomy, Sample[]> = { direct: [], floor: [], ccproxy: [] };
  const headers = {
    'content-type': 'application/json',
    'x-api-key': 'sk-ant-bench',
    'anthropic-version': '2023-06-01',
    ...streamShape(20, 2),
  };
  for (let i = 0; i < options.warmup + options.requests; i += 1) {
    for (let k = 0; k < names.length; k += 1) {
      const name = names[(i + k) % names.length] as keyof ModeAnatomy;
      const seq = String(nextSeq++);
      const sent = nowUs();
      const response = await sides[name].client.request({
        path: sides[name].path,
        method: 'POST',
        body,
        headers: { ...headers, 'x-bench-seq': seq },
      });
      let received = Number.NaN;
      for await (const chunk of response.body as AsyncIterable<Buffer>)
        if (Number.isNaN(received) && chunk.length > 0) received = nowUs();
      if (!stream) received = nowUs();
      if (response.statusCode !== 200) throw new Error(`tail anatomy: ${name} answered HTTP ${response.statusCode}`);
      if (i >= options.warmup) samples[name].push({ seq, sent, received });
    }
  }
  return samples;
}

async function collect(pids: number[], dir: string): Promise<Map<number, MarksFile>> {
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  const files = new Map<number, MarksFile>();
  for (let attempt = 0; attempt < 100 && files.size < pids.length; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const pid of pids) {
      if (files.has(pid)) continue;
      const text = await readFile(marksFileOf(dir, pid), 'utf8').catch(() => undefined);
      if (text !== undefined) files.set(pid, JSON.parse(text) as MarksFile);
    }
  }
  if (files.size < pids.length) throw new Error('tail anatomy: a process did not write its marks');
  return files;
}

/** One side's segments; `proxy` undefined for direct, whose two hops are `toUpstream` and `toClient`. */
function anatomy(samples: Sample[], upstream: MarksFile | undefined, proxy: MarksFile | undefined): SideAnatomy {
  const rows = samples.map((sample) => {
    const u = upstream?.marks[sample.seq];
    const p = proxy?.marks[sample.seq];
    return { total: sample.received - sample.sent, segments: segmentsOf(sample, u, p), sample };
  });
  const segments: SideAnatomy['segments'] = {};
  for (const segment of proxySegments) {
    const values = rows
      .map((row) => row.segments[segment])
      .filter((x): x is number => x !== undefined && Number.isFinite(x));
    if (values.length > 0) {
      const { p50, p99 } = summarize(values);
      segments[segment] = { p50, p99 };
    }
  }
  const totals = summarize(rows.map((row) => row.total));
  const cut = totals.p99;
  const slowest = rows.filter((row) => row.total >= cut);
  const share = (names: readonly Segment[]) =>
    sum(slowest.map((row) => sum(names.map((n) => row.segments[n] ?? 0)))) / sum(slowest.map((row) => row.total));
  const gcs = proxy?.gcs ?? [];
  return {
    total: { p50: totals.p50 / 1000, p99: cut / 1000 },
    segments,
    slowest: {
      count: slowest.length,
      inProxyCodeShare: share(inProxyCode),
      betweenProcessesShare: share(betweenProcesses),
      upstreamShare: share(['upstream']),
      overlappingGc: slowest.filter(({ sample }) =>
        gcs.some(([start, duration]) => start < sample.received && start + duration > sample.sent),
      ).length,
    },
  };
}

function segmentsOf(
  sample: Sample,
  u: RequestMarks | undefined,
  p: RequestMarks | undefined,
): Partial<Record<Segment, number>> {
  if (u?.bodyEnd === undefined || u.firstWrite === undefined) return {};
  const upstream = u.firstWrite - u.bodyEnd;
  if (p === undefined)
    return { toUpstream: u.bodyEnd - sample.sent, upstream, toClient: sample.received - u.firstWrite };
  if (p.create === undefined || p.headers === undefined || p.firstWrite === undefined) return {};
  return {
    toProxy: p.start - sample.sent,
    proxyIn: p.create - p.start,
    toUpstream: u.bodyEnd - p.create,
    upstream,
    backToProxy: p.headers - u.firstWrite,
    proxyOut: p.firstWrite - p.headers,
    toClient: sample.received - p.firstWrite,
  };
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

export function printTailAnatomy(t: TailAnatomy): void {
  console.log(
    `where a concurrency-1 request's time goes (${t.requests} per side, separate processes with bench/src/request-marks.ts; µs p50 / p99 per segment; slowest 1 %: share of their time in the proxy's code, between processes, in the upstream)`,
  );
  for (const [title, mode] of [
    ['streaming TTFB', t.streamingTtfb],
    ['non-streaming', t.nonStreaming],
  ] as const) {
    console.log(`  ${title}`);
    for (const name of ['direct', 'floor', 'ccproxy'] as const) {
      const a = mode[name];
      const segments = proxySegments.flatMap((s) =>
        a.segments[s] === undefined ? [] : [`${s} ${a.segments[s].p50.toFixed(0)}/${a.segments[s].p99.toFixed(0)}`],
      );
      const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
      console.log(
        `    ${name.padEnd(8)} total ${a.total.p50.toFixed(3)}/${a.total.p99.toFixed(3)} ms   ${segments.join('  ')}`,
      );
      console.log(
        `    ${''.padEnd(8)} slowest ${a.slowest.count}: proxy code ${pct(a.slowest.inProxyCodeShare)}, between processes ${pct(a.slowest.betweenProcessesShare)}, upstream ${pct(a.slowest.upstreamShare)}; ${a.slowest.overlappingGc} overlapped a GC pause`,
      );
    }
  }
  console.log('');
}
