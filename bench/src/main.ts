import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@ccproxy/test-harness';
import { timeJson, timeStream } from './drivers.ts';
import { openLoop } from './open-loop.ts';
import { bedrockKey, benchKey, failoverKey, killChildren, startProxy, startUpstream } from './processes.ts';
import { summarizeProfiles } from './profile-summary.ts';
import { compare, emptyPair, printSection, spread, type Comparison, type Pair } from './report.ts';
import { translationCostPerFrame } from './translation-cost.ts';
import { summarize } from './stats.ts';

/**
 * `npm run bench [-- --quick] [-- --pglite] [-- --profile]`: the Plan path against a
 * direct-to-upstream baseline, measured in the same run, interleaved round by round so machine
 * drift hits both sides alike. `--profile` runs the main proxy under `--cpu-prof` and prints
 * where its CPU time went.
 */
const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const plan = quick ? { rounds: 5, json: 400, streams: 60, warmup: 500 } : { rounds: 10, json: 2000, streams: 150, warmup: 2000 };
const pairRounds = quick ? 2 : 5;
// A Claude Code-sized request body (system prompt, tools, history): ~30 KB.
const body = JSON.stringify({ model: 'claude-bench', max_tokens: 1024, system: 's'.repeat(20_000), messages: [{ role: 'user', content: 'u'.repeat(10_000) }] });
const streamBody = body.replace('"max_tokens"', '"stream":true,"max_tokens"');
const planPath = `/ak/${benchKey}/v1/messages`;
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
const profileDir = `${resultsDir}profile/`;

let postgres: ThrowawayPostgres | undefined;

type SideName = 'direct' | 'floor' | 'ccproxy';

interface Side {
  name: SideName;
  client: Client;
  path: string;
}

const client = (url: string) => new Client(url, { pipelining: 1 });

async function main(): Promise<void> {
  const upstream = await startUpstream();
  // The floor: a bare node:http + undici pass-through to the same upstream.
  const floor = await startUpstream('bench/src/floor-proxy.ts', [upstream.url]);
  const bedrockUpstream = await startUpstream('bench/src/bedrock-upstream.ts');
  // As deployed: a real PostgreSQL server (`--pglite` measures the embedded default instead).
  postgres = process.argv.includes('--pglite') ? undefined : await startThrowawayPostgres();
  const database: Record<string, string> = postgres === undefined ? {} : { DATABASE_URL: postgres.url, CCPROXY_KEY_HASHER_SECRET: 'bench-hasher-secret-0123456789abcdefgh' };
  // A 1 ms breaker window: every failover request really tries Plan first (the breaker never opens).
  const proxy = await startProxy(upstream.url, { ...database, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockUpstream.url, CCPROXY_BREAKER_WINDOW_MS: '1' }, profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
  // The same product with Plan usage metering off, and with the default `info` log level, for on/off comparisons.
  const unmetered = await startProxy(upstream.url, { ...database, CCPROXY_METER_PLAN: 'false' });
  const infoLogging = await startProxy(upstream.url, { ...database, CCPROXY_LOG_LEVEL: 'info' });
  const sides: Side[] = [
    { name: 'direct', client: client(upstream.url), path: '/v1/messages' },
    { name: 'floor', client: client(floor.url), path: '/v1/messages' },
    { name: 'ccproxy', client: client(proxy.url), path: planPath },
  ];
  const proxyClient = sides[2]?.client as Client;
  const unmeteredClient = client(unmetered.url);
  const infoClient = client(infoLogging.url);

  for (const side of sides) for (let i = 0; i < plan.warmup; i += 1) await timeJson(side.client, side.path, body);
  const plain = await measurePlanPath(sides);
  const fixedRate = await measureOpenLoop([{ name: 'direct', origin: upstream.url, path: '/v1/messages' }, { name: 'floor', origin: floor.url, path: '/v1/messages' }, { name: 'ccproxy', origin: proxy.url, path: planPath }]);
  const bedrock = await measureBedrock(proxyClient);
  const metering = await measureOnOff(unmeteredClient, proxyClient);
  const logging = await measureOnOff(proxyClient, infoClient);
  await Promise.all([...sides.map((side) => side.client.close()), unmeteredClient.close(), infoClient.close()]);
  if (profile) await proxy.stop();

  const results = {
    machine: { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, database: postgres === undefined ? 'pglite' : 'postgresql', proxyLogLevel: 'warn' },
    plan: { ...plan, pairRounds, bodyBytes: body.length },
    ...plain,
    ...fixedRate,
    ...bedrock,
    meteringOnVsOffLatency: metering.latency,
    meteringOnVsOffTtfb: metering.ttfb,
    logInfoVsWarnLatency: logging.latency,
    logInfoVsWarnTtfb: logging.ttfb,
    translationMicrosPerFrame: translationCostPerFrame(quick ? 20_000 : 200_000),
  };
  print(results);
  await mkdir(resultsDir, { recursive: true });
  await writeFile(`${resultsDir}latest.json`, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`written: bench/results/latest.json`);
  if (profile) await summarizeProfiles(profileDir);
}

/** Direct, floor and ccproxy on the Plan path: non-streaming latency, streaming TTFB, total and inter-event gap. */
async function measurePlanPath(sides: Side[]) {
  const three = () => ({ direct: [] as number[], floor: [] as number[], ccproxy: [] as number[] });
  const json = three();
  const ttfb = three();
  const total = three();
  const gaps = three();
  const addedJson: number[] = [];
  const addedTtfb: number[] = [];
  for (let round = 0; round < plan.rounds; round += 1) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    const p50 = { json: { direct: 0, floor: 0, ccproxy: 0 }, ttfb: { direct: 0, floor: 0, ccproxy: 0 } };
    for (const side of order) {
      const samples: number[] = [];
      for (let i = 0; i < plan.json; i += 1) samples.push(await timeJson(side.client, side.path, body));
      json[side.name].push(...samples);
      p50.json[side.name] = summarize(samples).p50;
      const firstBytes: number[] = [];
      for (let i = 0; i < plan.streams; i += 1) {
        const timing = await timeStream(side.client, `${side.path}?events=20&gapMs=2`, streamBody);
        firstBytes.push(timing.ttfb);
        total[side.name].push(timing.total);
        gaps[side.name].push(...timing.gaps.filter((gap) => gap > 0));
      }
      ttfb[side.name].push(...firstBytes);
      p50.ttfb[side.name] = summarize(firstBytes).p50;
    }
    addedJson.push(p50.json.ccproxy - p50.json.direct);
    addedTtfb.push(p50.ttfb.ccproxy - p50.ttfb.direct);
  }
  // "direct" rows are the baseline of each comparison: direct for ccproxy and floor, floor for ccproxy-vs-floor.
  const versus = (samples: { direct: number[]; floor: number[]; ccproxy: number[] }) => ({
    vsDirect: compare({ direct: samples.direct, ccproxy: samples.ccproxy }),
    floorVsDirect: compare({ direct: samples.direct, ccproxy: samples.floor }),
    vsFloor: compare({ direct: samples.floor, ccproxy: samples.ccproxy }),
  });
  const nonStreaming = versus(json);
  const streamingTtfb = versus(ttfb);
  const gap = versus(gaps);
  return {
    nonStreaming: nonStreaming.vsDirect,
    nonStreamingFloor: nonStreaming.floorVsDirect,
    nonStreamingVsFloor: nonStreaming.vsFloor,
    nonStreamingAddedP50PerRound: { min: Math.min(...addedJson), max: Math.max(...addedJson) },
    streamingTtfb: streamingTtfb.vsDirect,
    streamingTtfbFloor: streamingTtfb.floorVsDirect,
    streamingTtfbVsFloor: streamingTtfb.vsFloor,
    streamingTtfbAddedP50PerRound: { min: Math.min(...addedTtfb), max: Math.max(...addedTtfb) },
    streamingTotal: versus(total).vsDirect,
    streamingInterEventGap: gap.vsDirect,
    streamingInterEventGapVsFloor: gap.vsFloor,
  };
}

const openLoopRate = 200;

/** Open-loop at a fixed rate (coordinated omission avoided): direct, floor and ccproxy, one after another, alternating order per round. */
async function measureOpenLoop(targets: Array<{ name: SideName; origin: string; path: string }>) {
  const latencies = { direct: [] as number[], floor: [] as number[], ccproxy: [] as number[] };
  let failures = 0;
  for (let round = 0; round < pairRounds; round += 1) {
    for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
      const run = await openLoop(target.origin, target.path, body, openLoopRate, quick ? 3_000 : 10_000);
      latencies[target.name].push(...run.latencies);
      failures += run.failures;
    }
  }
  if (failures > 0) throw new Error(`open-loop: ${failures} requests failed`);
  return {
    openLoop: compare({ direct: latencies.direct, ccproxy: latencies.ccproxy }),
    openLoopFloor: compare({ direct: latencies.direct, ccproxy: latencies.floor }),
    openLoopVsFloor: compare({ direct: latencies.floor, ccproxy: latencies.ccproxy }),
  };
}

/**
 * Bedrock path through the same proxy: streaming time to first byte against the Plan path, and
 * the failover penalty (Plan answers 529 at once, then Bedrock) against going to Bedrock directly.
 */
async function measureBedrock(proxy: Client) {
  const bedrock = `/ak/${bedrockKey}/v1/messages`;
  const failover = `/ak/${failoverKey}/v1/messages`;
  for (let i = 0; i < 300; i += 1) await timeJson(proxy, bedrock, body);
  const ttfb = emptyPair();
  const penalty = emptyPair();
  for (let round = 0; round < pairRounds; round += 1) {
    for (let i = 0; i < (quick ? 100 : 400); i += 1) {
      ttfb.direct.push((await timeStream(proxy, `${planPath}?events=20`, streamBody)).ttfb);
      ttfb.ccproxy.push((await timeStream(proxy, bedrock, streamBody)).ttfb);
      penalty.direct.push(await timeJson(proxy, bedrock, body));
      penalty.ccproxy.push(await timeJson(proxy, failover, body, { 'x-bench-fail': '529' }));
    }
  }
  // "direct" here is the comparison baseline: the Plan path for TTFB, Bedrock-only for the penalty.
  return { bedrockTtfbVsPlan: compare(ttfb), failoverPenaltyVsBedrockOnly: compare(penalty) };
}

/** The Plan path on two proxy processes that differ in one setting ("direct" row: off, "ccproxy" row: on), interleaved. */
async function measureOnOff(off: Client, on: Client): Promise<{ latency: Comparison; ttfb: Comparison }> {
  for (let i = 0; i < 300; i += 1) await timeJson(off, planPath, body);
  for (let i = 0; i < 300; i += 1) await timeJson(on, planPath, body);
  const json: Pair = emptyPair();
  const ttfb: Pair = emptyPair();
  for (let round = 0; round < pairRounds; round += 1) {
    for (let i = 0; i < (quick ? 200 : 1000); i += 1) {
      json.direct.push(await timeJson(off, planPath, body));
      json.ccproxy.push(await timeJson(on, planPath, body));
    }
    for (let i = 0; i < (quick ? 50 : 150); i += 1) {
      ttfb.direct.push((await timeStream(off, `${planPath}?events=20`, streamBody)).ttfb);
      ttfb.ccproxy.push((await timeStream(on, `${planPath}?events=20`, streamBody)).ttfb);
    }
  }
  return { latency: compare(json), ttfb: compare(ttfb) };
}

type Results = { machine: object; translationMicrosPerFrame: number; nonStreamingAddedP50PerRound: { min: number; max: number }; streamingTtfbAddedP50PerRound: { min: number; max: number } } & Record<
  | 'nonStreaming' | 'streamingTtfb' | 'streamingTotal' | 'streamingInterEventGap' | 'bedrockTtfbVsPlan' | 'failoverPenaltyVsBedrockOnly'
  | 'openLoop' | 'openLoopFloor' | 'openLoopVsFloor'
  | 'nonStreamingFloor' | 'nonStreamingVsFloor' | 'streamingTtfbFloor' | 'streamingTtfbVsFloor' | 'streamingInterEventGapVsFloor'
  | 'meteringOnVsOffLatency' | 'meteringOnVsOffTtfb' | 'logInfoVsWarnLatency' | 'logInfoVsWarnTtfb',
  Comparison
>;

function print(r: Results): void {
  console.log(`\nccproxy bench (${quick ? 'quick' : 'full'}) — ${JSON.stringify(r.machine)}\n`);
  const perRound = (range: { min: number; max: number }) => `added p50 per round: ${spread([range.min, range.max])}`;
  printSection({ title: 'non-streaming latency, concurrency 1 (~30 KB request, ~1 KB answer)', comparison: r.nonStreaming, note: perRound(r.nonStreamingAddedP50PerRound) });
  printSection({ title: 'non-streaming latency: the floor (bare node:http + undici pass-through) vs direct', comparison: r.nonStreamingFloor, labels: ['direct', 'floor'] });
  printSection({ title: 'non-streaming latency: ccproxy vs the floor', comparison: r.nonStreamingVsFloor, labels: ['floor', 'ccproxy'] });
  printSection({ title: `non-streaming latency, open loop at ${openLoopRate} req/s (from when each request was due)`, comparison: r.openLoop });
  printSection({ title: 'open loop: the floor vs direct', comparison: r.openLoopFloor, labels: ['direct', 'floor'] });
  printSection({ title: 'open loop: ccproxy vs the floor', comparison: r.openLoopVsFloor, labels: ['floor', 'ccproxy'] });
  printSection({ title: 'streaming time to first byte, concurrency 1', comparison: r.streamingTtfb, note: perRound(r.streamingTtfbAddedP50PerRound) });
  printSection({ title: 'streaming time to first byte: the floor vs direct', comparison: r.streamingTtfbFloor, labels: ['direct', 'floor'] });
  printSection({ title: 'streaming time to first byte: ccproxy vs the floor', comparison: r.streamingTtfbVsFloor, labels: ['floor', 'ccproxy'] });
  printSection({ title: 'streaming total time (20 deltas, upstream sends every 2 ms)', comparison: r.streamingTotal });
  printSection({ title: 'streaming inter-event gap (upstream sends every 2 ms)', comparison: r.streamingInterEventGap });
  printSection({ title: 'streaming inter-event gap: ccproxy vs the floor', comparison: r.streamingInterEventGapVsFloor, labels: ['floor', 'ccproxy'] });
  printSection({ title: 'Bedrock path: streaming TTFB through ccproxy, Plan vs Bedrock', comparison: r.bedrockTtfbVsPlan, labels: ['plan', 'bedrock'] });
  printSection({ title: 'failover penalty: Bedrock-only key vs Plan 529 then Bedrock', comparison: r.failoverPenaltyVsBedrockOnly, labels: ['bedrock-only', 'failover'] });
  printSection({ title: 'metering: Plan path non-streaming latency, metering off vs on', comparison: r.meteringOnVsOffLatency, labels: ['meter off', 'meter on'] });
  printSection({ title: 'metering: Plan path streaming TTFB, off vs on', comparison: r.meteringOnVsOffTtfb, labels: ['meter off', 'meter on'] });
  printSection({ title: 'logging: Plan path non-streaming latency, log level warn vs info (to /dev/null)', comparison: r.logInfoVsWarnLatency, labels: ['log warn', 'log info'] });
  printSection({ title: 'logging: Plan path streaming TTFB, warn vs info', comparison: r.logInfoVsWarnTtfb, labels: ['log warn', 'log info'] });
  console.log(`Bedrock frame → SSE translation: ${r.translationMicrosPerFrame.toFixed(2)} µs per frame\n`);
}

async function cleanUp(): Promise<void> {
  killChildren();
  await postgres?.stop();
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => void cleanUp().finally(() => process.exit(130)));
}
main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(cleanUp);
