import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { timeJson, timeStream } from './drivers.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@ccproxy/test-harness';
import { bedrockKey, benchKey, failoverKey, killChildren, startProxy, startUpstream } from './processes.ts';
import { translationCostPerFrame } from './translation-cost.ts';
import { fmt, summarize, type Summary } from './stats.ts';

/**
 * `npm run bench [-- --quick]`: the Plan path against a direct-to-upstream baseline, measured in
 * the same run, interleaved round by round so machine drift hits both sides alike.
 */
const quick = process.argv.includes('--quick');
const plan = quick ? { rounds: 5, json: 400, streams: 60, warmup: 500 } : { rounds: 10, json: 2000, streams: 150, warmup: 2000 };
// A Claude Code-sized request body (system prompt, tools, history): ~30 KB.
const body = JSON.stringify({ model: 'claude-bench', max_tokens: 1024, system: 's'.repeat(20_000), messages: [{ role: 'user', content: 'u'.repeat(10_000) }] });
const streamBody = body.replace('"max_tokens"', '"stream":true,"max_tokens"');

let postgres: ThrowawayPostgres | undefined;

interface Side {
  name: 'direct' | 'ccproxy';
  client: Client;
  path: string;
}

async function main(): Promise<void> {
  const upstream = await startUpstream();
  const bedrockUpstream = await startUpstream('bench/src/bedrock-upstream.ts');
  // A 1 ms breaker window: every failover request really tries Plan first (the breaker never opens).
  // As deployed: a real PostgreSQL server (`--pglite` measures the embedded default instead).
  postgres = process.argv.includes('--pglite') ? undefined : await startThrowawayPostgres();
  const database: Record<string, string> = postgres === undefined ? {} : { DATABASE_URL: postgres.url, CCPROXY_KEY_HASHER_SECRET: 'bench-hasher-secret-0123456789abcdefgh' };
  const proxy = await startProxy(upstream.url, { ...database, AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockUpstream.url, CCPROXY_BREAKER_WINDOW_MS: '1' });
  // The same product with Plan usage metering switched off, for the on/off comparison.
  const unmetered = await startProxy(upstream.url, { ...database, CCPROXY_METER_PLAN: 'false' });
  const sides: Side[] = [
    { name: 'direct', client: new Client(upstream.url, { pipelining: 1 }), path: '/v1/messages' },
    { name: 'ccproxy', client: new Client(proxy.url, { pipelining: 1 }), path: `/ak/${benchKey}/v1/messages` },
  ];
  for (const side of sides) for (let i = 0; i < plan.warmup; i += 1) await timeJson(side.client, side.path, body);

  const json = { direct: [] as number[], ccproxy: [] as number[] };
  const ttfb = { direct: [] as number[], ccproxy: [] as number[] };
  const gaps = { direct: [] as number[], ccproxy: [] as number[] };
  const roundAdded: number[] = [];
  for (let round = 0; round < plan.rounds; round += 1) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    const p50 = { direct: 0, ccproxy: 0 };
    for (const side of order) {
      const samples: number[] = [];
      for (let i = 0; i < plan.json; i += 1) samples.push(await timeJson(side.client, side.path, body));
      json[side.name].push(...samples);
      p50[side.name] = summarize(samples).p50;
      for (let i = 0; i < plan.streams; i += 1) {
        const timing = await timeStream(side.client, `${side.path}?events=20&gapMs=2`, streamBody);
        ttfb[side.name].push(timing.ttfb);
        gaps[side.name].push(...timing.gaps.filter((gap) => gap > 0));
      }
    }
    roundAdded.push(p50.ccproxy - p50.direct);
  }
  const bedrockPath = await measureBedrock(sides[1]?.client as Client);
  const unmeteredClient = new Client(unmetered.url, { pipelining: 1 });
  const metering = await measureMetering(sides[1]?.client as Client, unmeteredClient);
  await unmeteredClient.close();
  await Promise.all(sides.map((side) => side.client.close()));

  const results = {
    machine: { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, database: postgres === undefined ? 'pglite' : 'postgresql' },
    plan: { ...plan, bodyBytes: body.length },
    nonStreaming: compare(json),
    nonStreamingAddedP50PerRound: { min: Math.min(...roundAdded), max: Math.max(...roundAdded) },
    streamingTtfb: compare(ttfb),
    streamingInterEventGap: compare(gaps),
    ...bedrockPath,
    ...metering,
    translationMicrosPerFrame: translationCostPerFrame(quick ? 20_000 : 200_000),
  };
  print(results);
  const out = fileURLToPath(new URL('../results/', import.meta.url));
  await mkdir(out, { recursive: true });
  await writeFile(`${out}latest.json`, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nwritten: bench/results/latest.json`);
}

/**
 * Bedrock path through the same proxy: streaming time to first byte against the Plan path, and
 * the failover penalty (Plan answers 529 at once, then Bedrock) against going to Bedrock directly.
 */
async function measureBedrock(client: Client) {
  const plan = `/ak/${benchKey}/v1/messages`;
  const bedrock = `/ak/${bedrockKey}/v1/messages`;
  const failover = `/ak/${failoverKey}/v1/messages`;
  for (let i = 0; i < 300; i += 1) await timeJson(client, bedrock, body);
  const ttfb = { direct: [] as number[], ccproxy: [] as number[] };
  const penalty = { direct: [] as number[], ccproxy: [] as number[] };
  for (let round = 0; round < planRounds(); round += 1) {
    for (let i = 0; i < (quick ? 100 : 400); i += 1) {
      ttfb.direct.push((await timeStream(client, `${plan}?events=20`, streamBody)).ttfb);
      ttfb.ccproxy.push((await timeStream(client, bedrock, streamBody)).ttfb);
      penalty.direct.push(await timeJson(client, bedrock, body));
      penalty.ccproxy.push(await timeJson(client, failover, body, { 'x-bench-fail': '529' }));
    }
  }
  // "direct" here is the comparison baseline: the Plan path for TTFB, Bedrock-only for the penalty.
  return { bedrockTtfbVsPlan: compare(ttfb), failoverPenaltyVsBedrockOnly: compare(penalty) };
}

const planRounds = () => (quick ? 2 : 5);

/** Plan path with metering off ("direct" row) and on ("ccproxy" row), interleaved, same upstream. */
async function measureMetering(metered: Client, unmetered: Client) {
  const path = `/ak/${benchKey}/v1/messages`;
  for (let i = 0; i < 300; i += 1) await timeJson(unmetered, path, body);
  const json = { direct: [] as number[], ccproxy: [] as number[] };
  const ttfb = { direct: [] as number[], ccproxy: [] as number[] };
  for (let round = 0; round < planRounds(); round += 1) {
    for (let i = 0; i < (quick ? 200 : 1000); i += 1) {
      json.direct.push(await timeJson(unmetered, path, body));
      json.ccproxy.push(await timeJson(metered, path, body));
    }
    for (let i = 0; i < (quick ? 50 : 150); i += 1) {
      ttfb.direct.push((await timeStream(unmetered, `${path}?events=20`, streamBody)).ttfb);
      ttfb.ccproxy.push((await timeStream(metered, `${path}?events=20`, streamBody)).ttfb);
    }
  }
  return { meteringOnVsOffLatency: compare(json), meteringOnVsOffTtfb: compare(ttfb) };
}

function compare(samples: { direct: number[]; ccproxy: number[] }) {
  const direct = summarize(samples.direct);
  const ccproxy = summarize(samples.ccproxy);
  return { direct, ccproxy, added: { p50: ccproxy.p50 - direct.p50, p99: ccproxy.p99 - direct.p99 }, ratio: { p50: ccproxy.p50 / direct.p50, p99: ccproxy.p99 / direct.p99 } };
}

type Comparison = ReturnType<typeof compare>;
interface Results {
  machine: object;
  nonStreaming: Comparison;
  nonStreamingAddedP50PerRound: { min: number; max: number };
  streamingTtfb: Comparison;
  streamingInterEventGap: Comparison;
  bedrockTtfbVsPlan: Comparison;
  failoverPenaltyVsBedrockOnly: Comparison;
  translationMicrosPerFrame: number;
  meteringOnVsOffLatency: Comparison;
  meteringOnVsOffTtfb: Comparison;
}

function print(results: Results): void {
  console.log(`\nccproxy bench (${quick ? 'quick' : 'full'}) — ${JSON.stringify(results.machine)}\n`);
  const row = (label: string, s: Summary) => `  ${label.padEnd(10)} p50 ${fmt(s.p50).padStart(10)}  p90 ${fmt(s.p90).padStart(10)}  p99 ${fmt(s.p99).padStart(10)}  max ${fmt(s.max).padStart(10)}  n=${s.n}`;
  const section = (title: string, c: ReturnType<typeof compare>) => {
    console.log(title);
    console.log(row('direct', c.direct));
    console.log(row('ccproxy', c.ccproxy));
    console.log(`  added      p50 ${fmt(c.added.p50).padStart(10)}  p99 ${fmt(c.added.p99).padStart(10)}   ratio p50 ${c.ratio.p50.toFixed(2)}×  p99 ${c.ratio.p99.toFixed(2)}×\n`);
  };
  section('non-streaming latency, concurrency 1', results.nonStreaming);
  console.log(`  added p50 per round: ${fmt(results.nonStreamingAddedP50PerRound.min)} … ${fmt(results.nonStreamingAddedP50PerRound.max)}\n`);
  section('streaming time to first byte, concurrency 1', results.streamingTtfb);
  section('streaming inter-event gap (upstream sends every 2 ms)', results.streamingInterEventGap);
  section('Bedrock path: streaming TTFB through ccproxy, Plan ("direct" row) vs Bedrock ("ccproxy" row)', results.bedrockTtfbVsPlan);
  section('failover penalty: Bedrock-only key ("direct" row) vs Plan 529 then Bedrock ("ccproxy" row)', results.failoverPenaltyVsBedrockOnly);
  section('metering: Plan path non-streaming latency, metering off ("direct" row) vs on ("ccproxy" row)', results.meteringOnVsOffLatency);
  section('metering: Plan path streaming TTFB, off ("direct" row) vs on ("ccproxy" row)', results.meteringOnVsOffTtfb);
  console.log(`Bedrock frame → SSE translation: ${results.translationMicrosPerFrame.toFixed(2)} µs per frame\n`);
}

process.on('SIGINT', () => {
  killChildren();
  void (postgres?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
});
main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    killChildren();
    await postgres?.stop();
  });
