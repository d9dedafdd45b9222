import { fmt, summarize, type Summary } from './stats.ts';

/** Two sides measured in the same run: `direct` is the baseline, `ccproxy` the measured side. */
export interface Pair {
  direct: number[];
  ccproxy: number[];
}

export const emptyPair = (): Pair => ({ direct: [], ccproxy: [] });

export function compare(samples: Pair) {
  const direct = summarize(samples.direct);
  const ccproxy = summarize(samples.ccproxy);
  return {
    direct,
    ccproxy,
    added: { p50: ccproxy.p50 - direct.p50, p99: ccproxy.p99 - direct.p99 },
    ratio: { p50: ccproxy.p50 / direct.p50, p99: ccproxy.p99 / direct.p99 },
  };
}

export type Comparison = ReturnType<typeof compare>;

/** A titled comparison; `labels` name the baseline and the measured row when they are not direct/ccproxy. */
export interface Section {
  title: string;
  comparison: Comparison;
  labels?: [string, string];
  note?: string;
}

const row = (label: string, s: Summary) =>
  `  ${label.padEnd(12)} p50 ${fmt(s.p50).padStart(10)}  p90 ${fmt(s.p90).padStart(10)}  p99 ${fmt(s.p99).padStart(10)}  max ${fmt(s.max).padStart(10)}  n=${s.n}`;

export function printSection({ title, comparison: c, labels = ['direct', 'ccproxy'], note }: Section): void {
  console.log(title);
  console.log(row(labels[0], c.direct));
  console.log(row(labels[1], c.ccproxy));
  console.log(`  ${'added'.padEnd(12)} p50 ${fmt(c.added.p50).padStart(10)}  p99 ${fmt(c.added.p99).padStart(10)}   ratio p50 ${c.ratio.p50.toFixed(2)}×  p99 ${c.ratio.p99.toFixed(2)}×`);
  if (note !== undefined) console.log(`  ${note}`);
  console.log('');
}

/** min … max of the per-round added p50, in ms. */
export function spread(values: readonly number[]): string {
  return `${fmt(Math.min(...values))} … ${fmt(Math.max(...values))}`;
}
