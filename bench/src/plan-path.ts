import { Pool } from 'undici';
import { streamShape, timeJson, timeStream } from './drivers.ts';
import { openLoop } from './open-loop.ts';
import { versus, type Versus } from './report.ts';
import { isPeer, perSide, type PerSide, type Side, type SideName } from './sides.ts';

export interface PlanPathPlan {
  rounds: number;
  json: number;
  streams: number;
}

export interface PlanPathResults {
  /** Peers that failed a concurrency-1 scenario, with why (the others go on without them). Absent in older runs. */
  planPathFailures?: Partial<Record<SideName, string>>;
  nonStreaming: Versus;
  streamingTtfb: Versus;
  streamingTotal: Versus;
  streamingInterEventGap: Versus;
  /**
   * Each delta from the upstream's write to the driver's read. Unlike the gap, a proxy that
   * coalesces events cannot look faster on it: a held event's wait counts. Absent in older runs.
   */
  streamingEventDelay?: Versus;
}

/**
 * Concurrency 1 on every side: non-streaming latency, streaming time to first byte, total and
 * inter-event gap. Sides take turns round by round, in rotating order, so drift hits all alike;
 * samples stay per round, for the per-round deltas the targets are judged on.
 */
export async function measurePlanPath(
  sides: Side[],
  plan: PlanPathPlan,
  body: string,
  streamBody: string,
): Promise<PlanPathResults> {
  const rounds = {
    json: [] as PerSide[],
    ttfb: [] as PerSide[],
    total: [] as PerSide[],
    gaps: [] as PerSide[],
    delays: [] as PerSide[],
  };
  const shape = streamShape(20, 2, true);
  const failures: Partial<Record<SideName, string>> = {};
  for (let round = 0; round < plan.rounds; round += 1) {
    const order = [...sides.slice(round % sides.length), ...sides.slice(0, round % sides.length)];
    const [json, ttfb, total, gaps, delays] = [perSide(), perSide(), perSide(), perSide(), perSide()];
    for (const side of order) {
      if (failures[side.name] !== undefined) continue;
      const measureSide = async () => {
        for (let i = 0; i < plan.json; i += 1)
          json[side.name].push(await timeJson(side.client, side.path, body, side.headers));
        for (let i = 0; i < plan.streams; i += 1) {
          const timing = await timeStream(side.client, side.path, streamBody, { ...side.headers, ...shape });
          if (timing.events !== 25) throw new Error(`${side.name}: ${timing.events} of 25 stream events arrived`);
          if (timing.delays.length !== 20)
            throw new Error(`${side.name}: ${timing.delays.length} of 20 stamped deltas read`);
          ttfb[side.name].push(timing.ttfb);
          total[side.name].push(timing.total);
          gaps[side.name].push(...timing.gaps.filter((gap) => gap > 0));
          delays[side.name].push(...timing.delays);
        }
      };
      try {
        await measureSide();
      } catch (error) {
        // direct, the floor and ccproxy must run every scenario; a peer that cannot is reported, not fatal.
        if (!isPeer(side.name)) throw error;
        failures[side.name] = `cannot run: ${error instanceof Error ? error.message : String(error)}`;
        for (const list of [json, ttfb, total, gaps, delays]) list[side.name] = [];
      }
    }
    rounds.json.push(json);
    rounds.ttfb.push(ttfb);
    rounds.total.push(total);
    rounds.gaps.push(gaps);
    rounds.delays.push(delays);
  }
  return {
    planPathFailures: failures,
    nonStreaming: versus(rounds.json),
    streamingTtfb: versus(rounds.ttfb),
    streamingTotal: versus(rounds.total),
    streamingInterEventGap: versus(rounds.gaps),
    streamingEventDelay: versus(rounds.delays),
  };
}

/** Open loop at a fixed rate (coordinated omission avoided), every side in turn, rotating per round. */
export async function measureOpenLoop(
  sides: Side[],
  options: { rate: number; rounds: number; durationMs: number },
  body: string,
): Promise<Versus> {
  const rounds: PerSide[] = [];
  let failures = 0;
  for (let round = 0; round < options.rounds; round += 1) {
    const latencies = perSide();
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const pool = new Pool(side.origin, { connections: 64, pipelining: 1 });
      const run = await openLoop({
        pool,
        path: side.path,
        body,
        headers: side.headers,
        ratePerSecond: options.rate,
        durationMs: options.durationMs,
        pacing: 'spin',
      });
      await pool.close();
      latencies[side.name].push(...run.latencies);
      failures += run.failures;
    }
    rounds.push(latencies);
  }
  if (failures > 0) throw new Error(`open-loop: ${failures} requests failed`);
  return versus(rounds);
}
