import { Pool } from 'undici';
import { streamShape, timeJson, timeStream } from './drivers.ts';
import { openLoop } from './open-loop.ts';
import { versus, type Versus } from './report.ts';
import { perSide, type Side } from './sides.ts';
import { summarize } from './stats.ts';

export interface PlanPathPlan {
  rounds: number;
  json: number;
  streams: number;
}

export interface PlanPathResults {
  nonStreaming: Versus;
  streamingTtfb: Versus;
  streamingTotal: Versus;
  streamingInterEventGap: Versus;
  /** min … max over rounds of ccproxy's added p50 (the protocol gates on per-round deltas). */
  nonStreamingAddedP50PerRound: { min: number; max: number };
  streamingTtfbAddedP50PerRound: { min: number; max: number };
}

/**
 * Concurrency 1 on every side: non-streaming latency, streaming time to first byte, total and
 * inter-event gap. Sides take turns round by round, in rotating order, so drift hits all alike.
 */
export async function measurePlanPath(sides: Side[], plan: PlanPathPlan, body: string, streamBody: string): Promise<PlanPathResults> {
  const json = perSide();
  const ttfb = perSide();
  const total = perSide();
  const gaps = perSide();
  const addedJson: number[] = [];
  const addedTtfb: number[] = [];
  const shape = streamShape(20, 2);
  for (let round = 0; round < plan.rounds; round += 1) {
    const order = [...sides.slice(round % sides.length), ...sides.slice(0, round % sides.length)];
    const p50 = { json: new Map<string, number>(), ttfb: new Map<string, number>() };
    for (const side of order) {
      const samples: number[] = [];
      for (let i = 0; i < plan.json; i += 1) samples.push(await timeJson(side.client, side.path, body, side.headers));
      json[side.name].push(...samples);
      p50.json.set(side.name, summarize(samples).p50);
      const firstBytes: number[] = [];
      for (let i = 0; i < plan.streams; i += 1) {
        const timing = await timeStream(side.client, side.path, streamBody, { ...side.headers, ...shape });
        if (timing.events !== 25) throw new Error(`${side.name}: ${timing.events} of 25 stream events arrived`);
        firstBytes.push(timing.ttfb);
        total[side.name].push(timing.total);
        gaps[side.name].push(...timing.gaps.filter((gap) => gap > 0));
      }
      ttfb[side.name].push(...firstBytes);
      p50.ttfb.set(side.name, summarize(firstBytes).p50);
    }
    addedJson.push((p50.json.get('ccproxy') ?? Number.NaN) - (p50.json.get('direct') ?? Number.NaN));
    addedTtfb.push((p50.ttfb.get('ccproxy') ?? Number.NaN) - (p50.ttfb.get('direct') ?? Number.NaN));
  }
  return {
    nonStreaming: versus(json),
    streamingTtfb: versus(ttfb),
    streamingTotal: versus(total),
    streamingInterEventGap: versus(gaps),
    nonStreamingAddedP50PerRound: { min: Math.min(...addedJson), max: Math.max(...addedJson) },
    streamingTtfbAddedP50PerRound: { min: Math.min(...addedTtfb), max: Math.max(...addedTtfb) },
  };
}

/** Open loop at a fixed rate (coordinated omission avoided), every side in turn, rotating per round. */
export async function measureOpenLoop(sides: Side[], options: { rate: number; rounds: number; durationMs: number }, body: string): Promise<Versus> {
  const latencies = perSide();
  let failures = 0;
  for (let round = 0; round < options.rounds; round += 1) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const pool = new Pool(side.origin, { connections: 64, pipelining: 1 });
      const run = await openLoop({ pool, path: side.path, body, headers: side.headers, ratePerSecond: options.rate, durationMs: options.durationMs, pacing: 'spin' });
      await pool.close();
      latencies[side.name].push(...run.latencies);
      failures += run.failures;
    }
  }
  if (failures > 0) throw new Error(`open-loop: ${failures} requests failed`);
  return versus(latencies);
}
