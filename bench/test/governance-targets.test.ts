import { describe, expect, it } from 'vitest';
import { governanceTargets } from '../src/governance-targets.ts';
import { compare } from '../src/report.ts';

const samples = (base: number, n = 200) => Array.from({ length: n }, (_, i) => base + (i % 10) * 0.01);

describe('governance targets (issue 28: budgets and rate limits add well under a millisecond)', () => {
  it('met when on − off stays within p50 0.1 ms and p90 0.5 ms, on both lines; the ratio is shown', () => {
    const c = compare({ direct: samples(0.8), ccproxy: samples(0.85) });
    const targets = governanceTargets(c, c);
    expect(targets.map((t) => t.met)).toEqual([true, true]);
    expect(targets[0]?.measured).toMatch(/^0\.050 ms \/ 0\.050 ms \(p99 0\.050 ms; on\/off p50 1\.0\d\d×\)$/);
  });

  it('NOT MET when the p50 or the p90 added is over its bound', () => {
    const slowP50 = compare({ direct: samples(0.8), ccproxy: samples(0.95) });
    const slowTail = compare({
      direct: samples(0.8),
      ccproxy: samples(0.8).map((v, i) => (i % 10 >= 8 ? v + 0.6 : v)),
    });
    expect(governanceTargets(slowP50, slowTail).map((t) => t.met)).toEqual([false, false]);
  });
});
