import { describe, expect, it } from 'vitest';
import { governanceTargets } from '../src/governance-targets.ts';
import { compare } from '../src/report.ts';

const samples = (base: number, n = 200) => Array.from({ length: n }, (_, i) => base + (i % 10) * 0.01);

describe('governance targets (issue 28: budgets and rate limits add well under a millisecond)', () => {
  it('met when on − off (the median of the pairs) stays within 0.1 ms, on both lines; the ratio is shown', () => {
    const c = compare({ direct: samples(0.8), ccproxy: samples(0.85) });
    const targets = governanceTargets(c, c);
    expect(targets.map((t) => t.met)).toEqual([true, true]);
    expect(targets[0]?.measured).toMatch(
      /^0\.050 ms \(ratio on\/off p50 1\.0\d\d×; pooled p50 0\.050 ms, p90 0\.050 ms/,
    );
  });

  it('a host stall on one side of a few pairs moves neither gate; a real 0.15 ms does', () => {
    const stalls = samples(0.8).map((v, i) => (i % 25 === 0 ? v + 40 : v));
    expect(
      governanceTargets(
        compare({ direct: samples(0.8), ccproxy: stalls }),
        compare({ direct: stalls, ccproxy: samples(0.8) }),
      ).map((t) => t.met),
    ).toEqual([true, true]);
    const slow = compare({ direct: samples(0.8), ccproxy: samples(0.95) });
    expect(governanceTargets(slow, slow).map((t) => t.met)).toEqual([false, false]);
  });
});
