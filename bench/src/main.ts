import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { formatDuration, longStep, startThrowawayPostgres, type ThrowawayPostgres } from '@ccproxy/test-harness';
import { measureBedrock, measureOnOff } from './bedrock-scenarios.ts';
import { measureCpuCost, type CpuCostResults } from './cpu-cost.ts';
import { startBifrost } from './peer-bifrost.ts';
import { litellmVersion, startLiteLlm, type PeerStart } from './peer-litellm.ts';
import { repeatRuns, writeDocFromRuns } from './repeat-runs.ts';
import { timeJson } from './drivers.ts';
import { startPeer } from './peer-gateway.ts';
import { lowestPriority, pinnedFor } from './pinning.ts';
import { watchSteal } from './proc-stats.ts';
import { measureOperatorScale } from './operator-scale.ts';
import { measureOpenLoop, measurePlanPath } from './plan-path.ts';
import { benchKey, freePort, governedKey, killChildren, startProxy, startUpstream } from './processes.ts';
import { printMedianTargets } from './median-of-runs.ts';
import { summarizeProfiles } from './profile-summary.ts';
import { printSection } from './report.ts';
import { printResults, type Results } from './results.ts';
import { emptyBedrock, emptyOnOff, emptyPlanPath } from './empty-results.ts';
import { versus } from './report.ts';
import { shippedNodeFlags } from './shipped-node-flags.ts';
import { side, type Side } from './sides.ts';
import { printGovernanceTargets } from './governance-targets.ts';
import { measureStreams } from './stream-scenarios.ts';
import { measureTailAnatomy } from './tail-anatomy.ts';
import { measureThroughput } from './throughput.ts';
import { invokeTranslationCostPerFrame, translationCostPerFrame } from './translation-cost.ts';

/**
 * `npm run bench [-- --quick] [-- --pglite] [-- --profile] [-- --only cpu,plan,…] [-- --no-peers] [-- --sides ccproxy,floor]`:
 * ccproxy against a direct-to-upstream baseline, the floor (a bare node:http + undici
 * pass-through) and the peer gateways (Portkey, LiteLLM, Bifrost: each runs, or is reported with
 * why it cannot), all measured in the same run and interleaved round by round so machine drift
 * hits every side alike. `--profile` runs the main proxy under `--cpu-prof` and prints where its
 * CPU time went. `--only` runs the named steps (see `expected`) and leaves the others out.
 * `npm run bench -- --median <run.json>...` prints the targets on the median of saved runs;
 * `npm run bench -- --runs 3 --write-doc` makes three runs, folds them and writes the table into
 * docs/performance.md.
 */
const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt === -1 ? undefined : new Set((process.argv[onlyAt + 1] ?? '').split(','));
const withPeers = !process.argv.includes('--no-peers');
/** `--sides ccproxy,floor`: the pinned scenarios (rate, streams, CPU) run these sides only (each takes minutes). */
const sidesAt = process.argv.indexOf('--sides');
const onlySides = sidesAt === -1 ? undefined : new Set((process.argv[sidesAt + 1] ?? '').split(','));
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
      cpu: { rounds: 3, concurrency: 8, requests: 600, streams: 24, events: 100, gapMs: 1 },
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
      // The line is 4,096 streams held at 50 events/s each.
      streamLadder: [128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096],
      streamHoldMs: 10_000,
      memoryCounts: [256, 512, 1024, 4096],
      cpu: { rounds: 5, concurrency: 8, requests: 2000, streams: 80, events: 100, gapMs: 1 },
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
  cpu: [120, 40],
} as const satisfies Record<string, readonly [number, number]>;
const runStarted = Date.now();

/** One bench step: a line when it starts, a heartbeat every 30 s, a line when it ends. */
/** `skipped`: what the step yields when `--only` leaves it out. */
function step<T>(name: keyof typeof expected, label: string, work: () => Promise<T>, skipped: T): Promise<T> {
  if (only !== undefined && !only.has(name)) {
    console.log(`[bench] ${label}: left out (--only)`);
    return Promise.resolve(skipped);
  }
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
  if (postgres !== undefined) lowestPriority(await postgres.serverPid());
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
  // The other gateways, installed on demand (pinned, hash-checked) into the bench's cache.
  const notAsked: PeerStart = { cannotRun: 'left out (--no-peers)' };
  const litellm = withPeers ? await startLiteLlm(upstream.url) : notAsked;
  const bifrost = withPeers ? await startBifrost() : notAsked;
  const peerStatus: Record<string, string> = {
    peer: 'runs: @portkey-ai/gateway 1.15.2',
    litellm: 'cannotRun' in litellm ? `cannot run: ${litellm.cannotRun}` : `runs: litellm ${litellmVersion}`,
    bifrost: 'cannotRun' in bifrost ? `cannot run: ${bifrost.cannotRun}` : 'runs',
  };
  for (const [name, status] of Object.entries(peerStatus)) console.log(`[bench] peer ${name}: ${status}`);
  const sides: Side[] = [
    side('direct', upstream.url, '/v1/messages'),
    side('floor', floor.url, '/v1/messages', { pid: floor.pid, inspectPort: inspectPorts.floor }),
    side('ccproxy', proxy.url, planPath, { pid: proxy.pid, inspectPort: inspectPorts.ccproxy }),
    side('peer', peer.url, '/v1/messages', { pid: peer.pid, inspectPort: inspectPorts.peer, headers: peer.headers }),
    ...('cannotRun' in litellm
      ? []
      : [side('litellm', litellm.url, '/v1/messages', { pid: litellm.pid, headers: litellm.headers })]),
    ...('cannotRun' in bifrost
      ? []
      : [side('bifrost', bifrost.url, '/v1/messages', { pid: bifrost.pid, headers: bifrost.headers })]),
  ];
  const proxyClient = new Client(proxy.url, { pipelining: 1 });
  const unmeteredClient = new Client(unmetered.url, { pipelining: 1 });
  const infoClient = new Client(infoLogging.url, { pipelining: 1 });
  console.log(`[bench] every process is up (run time so far ${formatDuration((Date.now() - runStarted) / 1000)})`);

  await step(
    'warmup',
    `warm-up: ${plan.warmup} requests per side`,
    async () => {
      for (const s of sides)
        for (let i = 0; i < plan.warmup; i += 1) await timeJson(s.client, s.path, body, s.headers).catch(() => 0);
    },
    null,
  );
  const planPathResults = await step(
    'planPath',
    'Plan path: latency and TTFB at concurrency 1, interleaved rounds',
    () => measurePlanPath(sides, plan, body, streamBody),
    emptyPlanPath(),
  );
  const openLoop = await step(
    'openLoop',
    `open loop at ${openLoopRate} req/s`,
    () => measureOpenLoop(sides, { rate: openLoopRate, rounds: plan.pairRounds, durationMs: plan.openLoopMs }, body),
    versus([]),
  );
  const upstreamClient = new Client(upstream.url, { pipelining: 1 });
  const bedrock = await step(
    'bedrock',
    'Bedrock path and failover penalty',
    // Judged on the median of per-round figures: more, shorter rounds (quick 4 × 50, full 8 × 600).
    () => measureBedrock(proxyClient, upstreamClient, body, streamBody, quick ? 50 : 600, plan.rounds),
    emptyBedrock(),
  );
  const onOff = { json: quick ? 200 : 1000, streams: quick ? 50 : 150 };
  const metering = await step(
    'metering',
    'metering on vs off',
    () => measureOnOff(unmeteredClient, proxyClient, body, streamBody, onOff, plan.pairRounds),
    emptyOnOff(),
  );
  const logging = await step(
    'logging',
    'info vs warn logging',
    () => measureOnOff(proxyClient, infoClient, body, streamBody, onOff, plan.pairRounds),
    emptyOnOff(),
  );
  const governance = await step(
    'governance',
    'budgets and rate limits off vs on (same process)',
    () => measureGovernance(proxyClient, onOff),
    emptyOnOff(),
  );
  await Promise.all([
    ...sides.map((s) => s.client.close()),
    proxyClient.close(),
    upstreamClient.close(),
    unmeteredClient.close(),
    infoClient.close(),
  ]);
  // Its own processes (with a marking preload), stopped before the pinned scenarios.
  const tailAnatomy = await step(
    'tailAnatomy',
    "tail anatomy (where a request's time goes)",
    () => measureTailAnatomy({ requests: plan.anatomy, warmup: quick ? 100 : 300, body, streamBody, database }),
    undefined,
  );

  const everyPid = [
    upstream.pid,
    bedrockUpstream.pid,
    floor.pid,
    proxy.pid,
    unmetered.pid,
    infoLogging.pid,
    peer.pid,
    ...('cannotRun' in litellm ? [] : [litellm.pid]),
    ...('cannotRun' in bifrost ? [] : [bifrost.pid]),
    ...(postgres === undefined ? [] : [await postgres.serverPid()]),
  ];
  const pin = <T>(pid: number | undefined, work: () => Promise<T>) => pinnedFor(pid, everyPid, work);
  const targets = sides
    .filter((s) => onlySides?.has(s.name) ?? true)
    .map((s) => ({
      name: s.name,
      origin: s.origin,
      path: s.path,
      extraHeaders: s.headers,
      upstreamPid: upstream.pid,
      ...(s.pid === undefined ? {} : { pid: s.pid }),
      ...(s.inspectPort === undefined ? {} : { inspectPort: s.inspectPort }),
      // LiteLLM answers tens of requests a second on one worker: its ladder starts lower.
      ...(s.name === 'litellm' ? { lowerRates: [25, 50, 100, 200] } : {}),
    }));
  const throughput = await step(
    'throughput',
    `max sustained rate per core (${plan.rates.join(', ')} req/s)`,
    () =>
      measureThroughput(targets, {
        rates: plan.rates,
        durationMs: plan.rateMs,
        body: smallBody,
        upstreamDelayMs: 20,
        pin,
      }),
    { body: smallBody.length, upstreamDelayMs: 20, ladders: {} },
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
    { gapMs: 20, holdMs: plan.streamHoldMs, sides: {} },
  );
  // CPU per request and per relayed event, same closed-loop load on every proxy (issue 27).
  const cpuTargets = targets.flatMap((t) => (t.pid === undefined ? [] : [{ ...t, pid: t.pid }]));
  const cpuCost: CpuCostResults | undefined = await step(
    'cpu',
    `CPU per request and per stream event (${plan.cpu.concurrency} concurrent clients)`,
    () => measureCpuCost(cpuTargets, { ...plan.cpu, body: smallBody, streamBody }),
    undefined,
  );
  if (profile) await proxy.stop();
  // Under a second of CPU either way: the quick run measures as many frames as the full one.
  const frames = 200_000;
  const converseTranslation = translationCostPerFrame(frames);
  const invokeTranslation = invokeTranslationCostPerFrame(frames);

  const results: Results = {
    machine: {
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      database: postgres === undefined ? 'pglite' : 'postgresql',
      proxyLogLevel: 'warn',
      peer: '@portkey-ai/gateway 1.15.2',
      peers: JSON.stringify(peerStatus),
      nodeFlags: nodeFlags.join(' '),
      stealPercent: Number((steal.stop() * 100).toFixed(1)),
    },
    mode: quick ? 'quick' : 'full',
    ...(only === undefined ? {} : { only: [...only] }),
    peerStatus,
    ...(cpuCost === undefined ? {} : { cpuCost }),
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
    translationMicrosPerFrame: converseTranslation.wallMicros,
    invokeTranslationMicrosPerFrame: invokeTranslation.wallMicros,
    translationCpuMicrosPerFrame: converseTranslation.cpuMicros,
    invokeTranslationCpuMicrosPerFrame: invokeTranslation.cpuMicros,
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
  printGovernanceTargets(result.latency, result.ttfb);
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
const keysAt = process.argv.indexOf('--keys');
const runsAt = process.argv.indexOf('--runs');
/** `--median a.json b.json … [--write-doc]`: the targets over saved runs (and, asked, the doc section); one run is enough for the doc. */
async function medianRun(): Promise<void> {
  const files = process.argv.slice(medianAt + 1).filter((arg) => !arg.startsWith('--'));
  const writeDoc = process.argv.includes('--write-doc');
  if (files.length >= 2 || !writeDoc) await printMedianTargets(files);
  if (writeDoc) await writeDocFromRuns(files);
}
(process.argv.includes('--only=governance')
  ? governanceOnly()
  : process.argv.includes('operator-scale')
    ? measureOperatorScale(keysAt === -1 ? 5_000 : Number(process.argv[keysAt + 1]))
    : runsAt !== -1
      ? repeatRuns(Number(process.argv[runsAt + 1]), process.argv.slice(2), process.argv.includes('--write-doc'))
      : medianAt === -1
        ? main()
        : medianRun()
)
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(cleanUp);
