import { measureStreamCapacity, type CapacityResult } from './stream-capacity.ts';
import { measureStreamMemory, type StreamMemory } from './stream-memory.ts';
import type { StreamTarget } from './stream-probe.ts';
import type { SideName } from './sides.ts';

export interface StreamResults {
  gapMs: number;
  holdMs: number;
  sides: Partial<Record<SideName, CapacityResult>>;
  /** Slow streams (S6) with a forced GC before each sample: what one more open stream holds (absent in runs saved before it existed). */
  memory?: { gapMs: number; counts: number[]; sides: Partial<Record<SideName, StreamMemory>> };
}

export interface StreamScenarioOptions {
  ladder: number[];
  holdMs: number;
  gapMs: number;
  memoryCounts: number[];
  memoryGapMs: number;
  body: string;
  pin: <T>(pid: number | undefined, work: () => Promise<T>) => Promise<T>;
}

/** Concurrent streams held (protocol S4) and memory per stream (S6) by every side in turn, each proxy alone on CPU 1. */
export async function measureStreams(
  targets: Array<StreamTarget & { name: SideName }>,
  options: StreamScenarioOptions,
): Promise<StreamResults> {
  const sides: StreamResults['sides'] = {};
  const memory: NonNullable<StreamResults['memory']> = {
    gapMs: options.memoryGapMs,
    counts: options.memoryCounts,
    sides: {},
  };
  for (const target of targets) {
    console.log(`[bench]   ${target.name}: stream ladder ${options.ladder.join(', ')}, then memory per stream`);
    sides[target.name] = await options.pin(target.pid, () =>
      measureStreamCapacity(target, {
        ladder: options.ladder,
        holdMs: options.holdMs,
        gapMs: options.gapMs,
        body: options.body,
      }),
    );
    const { pid, inspectPort } = target;
    if (pid === undefined || inspectPort === undefined) continue;
    memory.sides[target.name] = await options.pin(pid, () =>
      measureStreamMemory(
        { ...target, pid, inspectPort },
        { counts: options.memoryCounts, gapMs: options.memoryGapMs, body: options.body },
      ),
    );
  }
  return { gapMs: options.gapMs, holdMs: options.holdMs, sides, memory };
}
