import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { formatDuration, longStep, startThrowawayPostgres, type ThrowawayPostgres } from '@ccproxy/test-harness';
import { measureBedrock, measureOnOff } from './bedrock-scenarios.ts';
import { timeJson } from './drivers.ts';
import { startPeer } from './peer-gateway.ts';
import { pinnedFor } from './pinning.ts';
import { watchSteal } from './proc-stats.ts';
import { measureOpenLoop, measurePlanPath } from './plan-path.ts';
import { benchKey, freePort, governedKey, killChildren, startProxy, startUpstream } from './processes.ts';
import { printMedianTargets } from './median-of-runs.ts';
import { summarizeProfiles } from './profile-summary.ts';
import { printSection } from './report.ts';
import { printResults, type Results } from './results.ts';
import { shippedNodeFlags } from './shipped-node-flags.ts';
import { side, type Side } from './sides.ts';
import { measureStreams } from './stream-scenarios.ts';
import { measureTailAnatomy } from './tail-anatomy.ts';
import { measureThroughput } from './throughput.ts';
import { invokeTranslationCostPerFrame, translationCostPerFrame } from './translation-cost.ts';

/**
 * `npm run bench [-- --quick] [-- --pglite] [-- --profile]`: ccproxy against a direct-to-upstream
 * baseline, the floor (a bare node:http + undici pass-through) and a peer gateway (Portkey), all
 * measured in the same run and interleaved round by round so machine drift hits every side
 * alike. `--profile` runs the main proxy under `--cpu-prof` and prints where its CPU time went.
 * `npm run bench -- --median <run.json>...` prints the targets on the median of saved runs.
 */
const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const plan = quick
  ? {
      rounds: 4,
      json: 400,
      streams: 60,
      warmup: 500,
      anatomy: 200,
      pairRounds: 2,
      openLoopMs: 3_000,
      rateMs: 3_000,
      rates: [1000, 2000, 2500, 3000],
      streamLadder: [128, 256, 512, 1024],
      streamHoldMs: 4_000,
      memoryCounts: [128, 256],
    }
  : {
      rounds: 8,
      json: 2000,
      streams: 150,
      warmup: 2000,
      anatomy: 1000,
      pairRounds: 5,
      openLoopMs: 10_000,
      rateMs: 10_000,
      rates: [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000],
      streamLadder: [128, 256, 512, 768, 1024, 1536, 2048],
      streamHoldMs: 10_000,
      memoryCounts: [256, 512, 1024],
    };
// A Claude Code-sized request body (system prompt, tools, history): ~30 KB.
const body = JSON.stringify({
  model: 'claude-bench',
  max_tokens: 1024,
  system: 's'.repeat(20_000),
  messages: [{ role: 'user', content: 'u'.repeat(10_000) }],
});
const streamBody = body.replace('"max_tokens"', '"stream":true,"max_tokens"');
// The capacity scenarios use the protocol's 4 KiB body (S2): at thousands of requests per second a 30 KB one measures loopback copies.
const smallBody = JSON.stringify({
  model: 'claude-bench',
  max_tokens: 1024,
  messages: [{ role: 'user', content: 'u'.repeat(4_000) }],
});
const planPath = `/ak/${benchKey}/v1/messages`;
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
const profileDir = `${resultsDir}profile/`;
const openLoopRate = 200;

let postgres: ThrowawayPostgres | undefined;

/** Seconds each step usually takes on this machine kind (full run, quick run), for the progress lines. */
const expected = {
  start: [20, 15],
  warmup: [40, 10],
  planPath: [200, 50],
  openLoop: [210, 60],
  bedrock: [60, 15],
  metering: [60, 15],
  logging: [60, 15],
  governance: [60, 15],
  tailAnatomy: [60, 20],
  throughput: [420, 90],
  streams: [420, 90],
} as const satisfies Record<string, readonly [number, number]>;
const runStarted = Date.now();

/** One bench step: a line when it starts, a heartbeat every 30 s, a line when it ends. */
function step<T>(name: keyof typeof expected, label: string, work: () => Promise<T>): Promise<T> {
  const [full, short] = expected[name];
  const whole = formatDuration((Date.now() - runStarted) / 1000);
  return longStep(
    `${label} (run time so far ${whole})`,
    { expectedSeconds: quick ? short : full, prefix: 'bench' },
    work,
  );
}

async function main(): Promise<void> {
  const total = Object.values(expected).reduce((sum, [full, short]) => sum + (quick ? short : full), 0);
  console.log(
    `[bench] ${quick ? 'quick' : 'full'} run: ${Object.keys(expected).length} steps, usually about ${formatDuration(total)} in all`,
  );
  const steal = watchSteal();
  console.log('[bench] starting the upstreams, the floor, PostgreSQL, ccproxy (three variants) and the peer');
  const upstream = await startUpstream();
  // Each proxy's inspector sleeps until the memory pass wakes it (SIGUSR1) for a forced GC.
  const inspectPorts = { floor: await freePort(), ccproxy: await freePort(), peer: await freePort() };
  const inspectArg = (port: number) => `--inspect-port=127.0.0.1:${port}`;
  // The floor runs on the product's own Node flags (the image's ENTRYPOINT), as ccproxy does.
  const nodeFlags = shippedNodeFlags();
  const floor = await startUpstream(
    'bench/src/floor-proxy.ts',
    [upstream.url],
    [...nodeFlags, inspectArg(inspectPorts.floor)],
  );
  const bedrockUpstream = await startUpstream('bench/src/bedrock-upstream.ts');
  // As deployed: a real PostgreSQL server (`--pglite` measures the embedded default instead).
  postgres = process.argv.includes('--pglite') ? undefined : await startThrowawayPostgres();
  const database: Record<string, string> =
    postgres === undefined
      ? {}
      : { DATABASE_URL: postgres.url, CCPROXY_KEY_HASHER_SECRET: 'bench-hasher-secret-0123456789abcdefgh' };
  // A 1 ms breaker window: every failover request really tries Plan first (the breaker never opens).
  const proxy = await startProxy(
    upstream.url,
    { ...database, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockUpstream.url, CCPROXY_BREAKER_WINDOW_MS: '1' },
    [inspectArg(inspectPorts.ccproxy), ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
  );
  // The same product with Plan usage metering off, and with the default `info` log level, for on/off comparisons.
  const unmetered = await startProxy(upstream.url, { ...database, CCPROXY_METER_PLAN: 'false' });
  const infoLogging = await startProxy(upstream.url, { ...database, CCPROXY_LOG_LEVEL: 'info' });
  const peer = await startPeer(upstream.url, [inspectArg(inspectPorts.peer)]);
  const sides: Side[] = [
    side('direct', upstream.url, '/v1/messages'),
    side('floor', floor.url, '/v1/messages', { pid: floor.pid, inspectPort: inspectPorts.floor }),
    side('ccproxy', proxy.url, planPath, { pid: proxy.pid, inspectPort: inspectPorts.ccproxy }),
    side('peer', peer.url, '/v1/messages', { pid: peer.pid, inspectPort: inspectPorts.peer, headers: peer.headers }),
  ];
  const proxyClient = new Client(proxy.url, { pipelining: 1 });
  const unmeteredClient = new Client(unmetered.url, { pipelining: 1 });
  const infoClient = new Client(infoLogging.url, { pipelining: 1 });
  console.log(`[bench] every process is up (run time so far ${formatDuration((Date.now() - runStarted) / 1000)})`);

  await step('warmup', `warm-up: ${plan.warmup} requests per side`, async () => {
    for (const s of sides) for (let i = 0; i < plan.warmup; i += 1) await timeJson(s.client, s.path, body, s.headers);
  });
  const planPathResults = await step(
    'planPath',
    'Plan path: latency and TTFB at concurrency 1, interleaved rounds',
    () => measurePlanPath(sides, plan, body, streamBody),
  );
  const openLoop = await step('openLoop', `open loop at ${openLoopRate} req/s`, () =>
    measureOpenLoop(sides, { rate: openLoopRate, rounds: plan.pairRounds, durationMs: plan.openLoopMs }, body),
  );
  const upstreamClient = new Client(upstream.url, { pipelining: 1 });
  const bedrock = await step('bedrock', 'Bedrock path and failover penalty', () =>
    measureBedrock(proxyClient, upstreamClient, body, streamBody, quick ? 100 : 1000, plan.pairRounds),
  );
  const onOff = { json: quick ? 200 : 1000, streams: quick ? 50 : 150 };
  const metering = await step('metering', 'metering on vs off', () =>
    measureOnOff(unmeteredClient, proxyClient, body, streamBody, onOff, plan.pairRounds),
  );
  const logging = await step('logging', 'info vs warn logging', () =>
    measureOnOff(proxyClient, infoClient, body, streamBody, onOff, plan.pairRounds),
  );
  const governance = await step('governance', 'budgets and rate limits off vs on (same process)', () =>
    measureGovernance(proxyClient, onOff),
  );
  await Promise.all([
    ...sides.map((s) => s.client.close()),
    proxyClient.close(),
    upstreamClient.close(),
    unmeteredClient.close(),
    infoClient.close(),
  ]);
  // Its own processes (with a marking preload), stopped before the pinned scenarios.
  const tailAnatomy = await step('tailAnatomy', "tail anatomy (where a request's time goes)", () =>
    measureTailAnatomy({ requests: plan.anatomy, warmup: quick ? 100 : 300, body, streamBody, database }),
  );

  const everyPid = [
    upstream.pid,
    bedrockUpstream.pid,
    floor.pid,
    proxy.pid,
    unmetered.pid,
    infoLogging.pid,
    peer.pid,
    ...(postgres === undefined ? [] : [await postgres.serverPid()]),
  ];
  const pin = <T>(pid: number | undefined, work: () => Promise<T>) => pinnedFor(pid, everyPid, work);
  const targets = sides.map((s) => ({
    name: s.name,
    origin: s.origin,
    path: s.path,
    extraHeaders: s.headers,
    upstreamPid: upstream.pid,
    ...(s.pid === undefined ? {} : { pid: s.pid }),
    ...(s.inspectPort === undefined ? {} : { inspectPort: s.inspectPort }),
  }));
  const throughput = await step('throughput', `max sustained rate per core (${plan.rates.join(', ')} req/s)`, () =>
    measureThroughput(targets, {
      rates: plan.rates,
      durationMs: plan.rateMs,
      body: smallBody,
      upstreamDelayMs: 20,
      pin,
    }),
  );
  const streams = await step(
    'streams',
    `concurrent streams (${plan.streamLadder.join(', ')}) and memory per stream`,
    () =>
      measureStreams(targets, {
        ladder: plan.streamLadder,
        holdMs: plan.streamHoldMs,
        gapMs: 20,
        memoryCounts: plan.memoryCounts,
        memoryGapMs: 1_000,
        body: streamBody,
        pin,
      }),
  );
  if (profile) await proxy.stop();

  const results: Results = {
    machine: {
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      database: postgres === undefined ? 'pglite' : 'postgresql',
      proxyLogLevel: 'warn',
      peer: '@portkey-ai/gateway 1.15.2',
      nodeFlags: nodeFlags.join(' '),
      stealPercent: Number((steal.stop() * 100).toFixed(1)),
    },
    mode: quick ? 'quick' : 'full',
    plan: { ...plan, bodyBytes: body.length, smallBodyBytes: smallBody.length, openLoopRate },
    ...planPathResults,
    openLoop,
    ...bedrock,
    meteringOnVsOffLatency: metering.latency,
    meteringOnVsOffTtfb: metering.ttfb,
    logInfoVsWarnLatency: logging.latency,
    logInfoVsWarnTtfb: logging.ttfb,
    governanceOnVsOffLatency: governance.latency,
    governanceOnVsOffTtfb: governance.ttfb,
    tailAnatomy,
    throughput,
    streams,
    translationMicrosPerFrame: translationCostPerFrame(quick ? 20_000 : 200_000),
    invokeTranslationMicrosPerFrame: invokeTranslationCostPerFrame(quick ? 20_000 : 200_000),
  };
  printResults(results);
  await mkdir(resultsDir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  // Every run is kept beside latest.json, for `--median` over several.
  const saved = `run-${new Date().toISOString().replaceAll(':', '').replace(/\..*/, '')}-${results.mode}.json`;
  await writeFile(`${resultsDir}latest.json`, json);
  await writeFile(`${resultsDir}${saved}`, json);
  console.log(`written: bench/results/latest.json and bench/results/${saved}`);
  if (profile) await summarizeProfiles(profileDir);
}

/**
 * The same process, two keys: `bench` (no limits) and `governed` (budgets on user and key, rate
 * limits, never reached), interleaved, so the difference is what the checks add per request.
 */
function measureGovernance(client: Client, onOff: { json: number; streams: number }) {
  return measureOnOff(client, client, body, streamBody, onOff, plan.pairRounds, {
    off: planPath,
    on: `/ak/${governedKey}/v1/messages`,
  });
}

/** `npm run bench -- --only=governance`: that scenario alone, on a real PostgreSQL. */
async function governanceOnly(): Promise<void> {
  const upstream = await startUpstream();
  postgres = await startThrowawayPostgres();
  const proxy = await startProxy(upstream.url, {
    DATABASE_URL: postgres.url,
    CCPROXY_KEY_HASHER_SECRET: 'bench-hasher-secret-0123456789abcdefgh',
  });
  const client = new Client(proxy.url, { pipelining: 1 });
  const result = await measureGovernance(client, { json: quick ? 200 : 1000, streams: quick ? 50 : 150 });
  printSection({
    title: 'governance: Plan path latency, limits off vs on',
    comparison: result.latency,
    labels: ['off', 'on'],
  });
  printSection({
    title: 'governance: Plan path streaming TTFB, limits off vs on',
    comparison: result.ttfb,
    labels: ['off', 'on'],
  });
  await client.close();
}

async function cleanUp(): Promise<void> {
  killChildren();
  await postgres?.stop();
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => void cleanUp().finally(() => process.exit(130)));
}
const medianAt = process.argv.indexOf('--median');
(medianAt !== -1
  ? printMedianTargets(process.argv.slice(medianAt + 1))
  : process.argv.includes('--only=governance')
    ? governanceOnly()
    : main()
)
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(cleanUp);
