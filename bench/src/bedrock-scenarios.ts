import type { Client } from 'undici';
import { streamShape, timeJson, timeStream } from './drivers.ts';
import { bedrockKey, benchKey, failoverKey, invokeKey } from './processes.ts';
import { compare, emptyPair, type Comparison, type Pair, type Percentiles } from './report.ts';
import { median, summarize, type Summary } from './stats.ts';

const planPath = `/ak/${benchKey}/v1/messages`;
const shape = streamShape(20);

export interface BedrockResults {
  bedrockTtfbVsPlan: Comparison;
  /** Streaming TTFB through the InvokeModel backend against the Converse one (same upstream, same deltas). */
  invokeTtfbVsConverse?: Comparison;
  /** Non-streaming latency, InvokeModel against Converse. */
  invokeLatencyVsConverse?: Comparison;
  failoverPenaltyVsBedrockOnly: Comparison;
  /** The Plan upstream's own 529, straight from it: the protocol's `primary_error_time`. */
  primaryErrorTime: Summary;
  /** Failover − Bedrock-only − the primary's error time (perf-anchors S8), p50 / p99. */
  failoverPenalty: { p50: number; p99: number };
  /**
   * Streaming TTFB added over the Plan path, Converse and InvokeModel: the median over rounds of
   * each round's added p50 / p99 (perf-anchors §5.7, as the Plan lines are judged), so a host
   * stall landing in one round moves that round, not the verdict. Absent in older runs.
   */
  bedrockAddedRoundMedian?: { converse: Percentiles; invoke: Percentiles };
}

/** Each round's added p50 / p99 of `measured` over `baseline`, and their medians over rounds. */
function roundMedian(rounds: Array<{ baseline: number[]; measured: number[] }>): Percentiles {
  const added = rounds.map(({ baseline, measured }) => compare({ direct: baseline, ccproxy: measured }).added);
  return { p50: median(added.map((a) => a.p50)), p99: median(added.map((a) => a.p99)) };
}

/**
 * Bedrock path through the same proxy: streaming time to first byte against the Plan path, and
 * the failover penalty (Plan answers 529 at once, then Bedrock) against going to Bedrock directly.
 * "direct" in each pair is the comparison's baseline: the Plan path, and the Bedrock-only key.
 */
export async function measureBedrock(
  proxy: Client,
  upstream: Client,
  body: string,
  streamBody: string,
  perRound: number,
  rounds: number,
): Promise<BedrockResults> {
  const bedrock = `/ak/${bedrockKey}/v1/messages`;
  const failover = `/ak/${failoverKey}/v1/messages`;
  const invoke = `/ak/${invokeKey}/v1/messages`;
  for (let i = 0; i < 300; i += 1) await timeJson(proxy, bedrock, body);
  for (let i = 0; i < 300; i += 1) await timeJson(proxy, invoke, body);
  for (let i = 0; i < 100; i += 1) await timeJson(proxy, failover, body, { 'x-bench-fail': '529' });
  const ttfb = emptyPair();
  const penalty = emptyPair();
  const invokeTtfb = emptyPair();
  const invokeLatency = emptyPair();
  const primary: number[] = [];
  const perRoundTtfb: Array<{ plan: number[]; converse: number[]; invoke: number[] }> = [];
  for (let round = 0; round < rounds; round += 1) {
    const thisRound = { plan: [] as number[], converse: [] as number[], invoke: [] as number[] };
    perRoundTtfb.push(thisRound);
    for (let i = 0; i < perRound; i += 1) {
      const planTtfb = (await timeStream(proxy, planPath, streamBody, shape)).ttfb;
      ttfb.direct.push(planTtfb);
      thisRound.plan.push(planTtfb);
      const converseTtfb = (await timeStream(proxy, bedrock, streamBody)).ttfb;
      ttfb.ccproxy.push(converseTtfb);
      thisRound.converse.push(converseTtfb);
      invokeTtfb.direct.push(converseTtfb);
      const invokeTtfbNow = (await timeStream(proxy, invoke, streamBody)).ttfb;
      invokeTtfb.ccproxy.push(invokeTtfbNow);
      thisRound.invoke.push(invokeTtfbNow);
      const converseLatency = await timeJson(proxy, bedrock, body);
      penalty.direct.push(converseLatency);
      invokeLatency.direct.push(converseLatency);
      invokeLatency.ccproxy.push(await timeJson(proxy, invoke, body));
      penalty.ccproxy.push(await timeJson(proxy, failover, body, { 'x-bench-fail': '529' }));
      primary.push(await timeJson(upstream, '/v1/messages', body, { 'x-bench-fail': '529' }, 529));
    }
  }
  const failoverPenaltyVsBedrockOnly = compare(penalty);
  const primaryErrorTime = summarize(primary);
  return {
    bedrockTtfbVsPlan: compare(ttfb),
    invokeTtfbVsConverse: compare(invokeTtfb),
    invokeLatencyVsConverse: compare(invokeLatency),
    failoverPenaltyVsBedrockOnly,
    primaryErrorTime,
    failoverPenalty: {
      p50: failoverPenaltyVsBedrockOnly.added.p50 - primaryErrorTime.p50,
      p99: failoverPenaltyVsBedrockOnly.added.p99 - primaryErrorTime.p99,
    },
    bedrockAddedRoundMedian: {
      converse: roundMedian(perRoundTtfb.map((r) => ({ baseline: r.plan, measured: r.converse }))),
      invoke: roundMedian(perRoundTtfb.map((r) => ({ baseline: r.plan, measured: r.invoke }))),
    },
  };
}

/** The Plan path on two proxy processes that differ in one setting ("direct" row: off, "ccproxy" row: on), interleaved. */
export async function measureOnOff(
  off: Client,
  on: Client,
  body: string,
  streamBody: string,
  perRound: { json: number; streams: number },
  rounds: number,
  /** The paths of the two sides (default: the bench key's Plan path on both). */
  paths: { off: string; on: string } = { off: planPath, on: planPath },
): Promise<{ latency: Comparison; ttfb: Comparison }> {
  for (let i = 0; i < 300; i += 1) await timeJson(off, paths.off, body);
  for (let i = 0; i < 300; i += 1) await timeJson(on, paths.on, body);
  const json: Pair = emptyPair();
  const ttfb: Pair = emptyPair();
  for (let round = 0; round < rounds; round += 1) {
    for (let i = 0; i < perRound.json; i += 1) {
      json.direct.push(await timeJson(off, paths.off, body));
      json.ccproxy.push(await timeJson(on, paths.on, body));
    }
    for (let i = 0; i < perRound.streams; i += 1) {
      ttfb.direct.push((await timeStream(off, paths.off, streamBody, shape)).ttfb);
      ttfb.ccproxy.push((await timeStream(on, paths.on, streamBody, shape)).ttfb);
    }
  }
  return { latency: compare(json), ttfb: compare(ttfb) };
}
