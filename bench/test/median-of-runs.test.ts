import { describe, expect, it } from 'vitest';
import { medianOfRuns } from '../src/median-of-runs.ts';

describe('medianOfRuns', () => {
  it('takes the median of every number at the same place in each run', () => {
    const runs = [
      { mode: 'full', throughput: { maxSustained: 1000 }, latency: { p50: 0.4, p99: 5 } },
      { mode: 'full', throughput: { maxSustained: 2000 }, latency: { p50: 0.3, p99: 3 } },
      { mode: 'full', throughput: { maxSustained: 1500 }, latency: { p50: 0.5, p99: 4 } },
    ];
    expect(medianOfRuns(runs)).toEqual({
      mode: 'full',
      throughput: { maxSustained: 1500 },
      latency: { p50: 0.4, p99: 4 },
    });
  });

  it('leaves out a figure a run could not take (NaN, saved by JSON as null) instead of counting it', () => {
    const runs = [{ rss: 40 }, { rss: null }, { rss: 50 }, {}];
    expect(medianOfRuns(JSON.parse(JSON.stringify(runs)) as unknown[])).toEqual({ rss: 45 });
    expect(medianOfRuns([{ rss: null }, { rss: null }])).toEqual({ rss: null });
  });

  it('lines arrays up element by element only when every run has the same length', () => {
    expect(medianOfRuns([{ rounds: [1, 10] }, { rounds: [3, 30] }, { rounds: [2, 20] }])).toEqual({ rounds: [2, 20] });
    // Ladders that stopped at different rungs do not line up: the first run's is kept as it was.
    expect(medianOfRuns([{ rungs: [1, 2, 3] }, { rungs: [5] }])).toEqual({ rungs: [1, 2, 3] });
  });
});
