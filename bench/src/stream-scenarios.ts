import { measureStreamCapacity, type CapacityResult, type StreamTarget } from './stream-capacity.ts';
import type { SideName } from './sides.ts';

export interface StreamResults {
  gapMs: number;
  holdMs: number;
  sides: Partial<Record<SideName, CapacityResult>>;
}

/** Concurrent streams held (protocol S4 and S6) by every side in turn, each proxy alone on CPU 1. */
export async function measureStreams(
  targets: Array<StreamTarget & { name: SideName }>,
  options: { ladder: number[]; holdMs: number; gapMs: number; body: string; pin: <T>(pid: number | undefined, work: () => Promise<T>) => Promise<T> },
): Promise<StreamResults> {
  const sides: StreamResults['sides'] = {};
  for (const target of targets) {
    sides[target.name] = await options.pin(target.pid, () => measureStreamCapacity(target, { ladder: options.ladder, holdMs: options.holdMs, gapMs: options.gapMs, body: options.body }));
  }
  return { gapMs: options.gapMs, holdMs: options.holdMs, sides };
}
