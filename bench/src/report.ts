import { sideNames, type PerSide, type SideName } from './sides.ts';
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

/** Every side against direct, and ccproxy's added time against the floor's and the peer's. */
export interface Versus {
  sides: Partial<Record<SideName, Summary>>;
  /** side − direct, per percentile (ms). */
  added: Partial<Record<SideName, { p50: number; p99: number }>>;
  /** ccproxy added ÷ floor added (the protocol's gw_added / null_added; ≤ 1.5 is the goal). */
  addedVsFloor: { p50: number; p99: number };
  /** ccproxy added ÷ peer added (< 1: ccproxy is better). */
  addedVsPeer: { p50: number; p99: number };
}

export function versus(samples: PerSide): Versus {
  const sides: Versus['sides'] = {};
  const added: Versus['added'] = {};
  for (const name of sideNames) if (samples[name].length > 0) sides[name] = summarize(samples[name]);
  const direct = sides.direct;
  for (const name of sideNames) {
    const s = sides[name];
    if (s !== undefined && direct !== undefined) added[name] = { p50: s.p50 - direct.p50, p99: s.p99 - direct.p99 };
  }
  const ratio = (a: { p50: number; p99: number } | undefined, b: { p50: number; p99: number } | undefined) => ({ p50: (a?.p50 ?? Number.NaN) / (b?.p50 ?? Number.NaN), p99: (a?.p99 ?? Number.NaN) / (b?.p99 ?? Number.NaN) });
  return { sides, added, addedVsFloor: ratio(added.ccproxy, added.floor), addedVsPeer: ratio(added.ccproxy, added.peer) };
}

const ratioText = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a');

export function printVersus(title: string, v: Versus, note?: string): void {
  console.log(title);
  for (const name of sideNames) {
    const s = v.sides[name];
    if (s === undefined) continue;
    const added = v.added[name];
    const extra = name === 'direct' || added === undefined ? '' : `   added p50 ${fmt(added.p50).padStart(10)}  p99 ${fmt(added.p99).padStart(10)}`;
    console.log(`${row(name, s)}${extra}`);
  }
  console.log(`  ccproxy added ÷ floor added: p50 ${ratioText(v.addedVsFloor.p50)}  p99 ${ratioText(v.addedVsFloor.p99)};  ÷ peer added: p50 ${ratioText(v.addedVsPeer.p50)}  p99 ${ratioText(v.addedVsPeer.p99)}`);
  if (note !== undefined) console.log(`  ${note}`);
  console.log('');
}
