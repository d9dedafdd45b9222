import { sideNames, type PerSide, type SideName } from './sides.ts';
import { fmt, median, summarize, type Summary } from './stats.ts';

/** Two sides measured in the same run: `direct` is the baseline, `ccproxy` the measured side. */
export interface Pair {
  direct: number[];
  ccproxy: number[];
}

export const emptyPair = (): Pair => ({ direct: [], ccproxy: [] });

export function compare(samples: Pair) {
  const direct = summarize(samples.direct);
  const ccproxy = summarize(samples.ccproxy);
  // Samples taken in pairs (one of each side, back to back): a host stall lands on one pair, not on a side.
  const pairs = Math.min(samples.direct.length, samples.ccproxy.length);
  const differences = Array.from({ length: pairs }, (_, i) => (samples.ccproxy[i] ?? 0) - (samples.direct[i] ?? 0));
  return {
    direct,
    ccproxy,
    /** Median of the per-pair differences (meaningful when the sides were measured interleaved). */
    pairedAdded: median(differences),
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
  console.log(
    `  ${'added'.padEnd(12)} p50 ${fmt(c.added.p50).padStart(10)}  p99 ${fmt(c.added.p99).padStart(10)}   ratio p50 ${c.ratio.p50.toFixed(2)}×  p99 ${c.ratio.p99.toFixed(2)}×`,
  );
  if (note !== undefined) console.log(`  ${note}`);
  console.log('');
}

/** min … max, in ms. */
export function spread([min, max]: readonly [number, number]): string {
  return `${fmt(min)} … ${fmt(max)}`;
}

/** Every side against direct, and ccproxy's added time against the floor's and the peer's. */
export interface Versus {
  /** Pooled over every round. */
  sides: Partial<Record<SideName, Summary>>;
  /** side − direct of the pooled figures, per percentile (ms). */
  added: Partial<Record<SideName, Percentiles>>;
  /**
   * The median over rounds of each round's side − direct (perf-anchors §5.7 gates on this): a
   * host stall that lands in one round moves that round, not the verdict.
   */
  addedRoundMedian: Partial<Record<SideName, Percentiles>>;
  /** min and max over rounds of ccproxy's per-round added time. */
  ccproxyRoundSpread: { p50: [number, number]; p99: [number, number] };
  /** ccproxy added ÷ floor added, from the per-round medians (the protocol's gw_added / null_added; ≤ 1.5 is the goal). */
  addedVsFloor: Percentiles;
  /** ccproxy added ÷ peer added, from the per-round medians (< 1: ccproxy is better). */
  addedVsPeer: Percentiles;
}

export interface Percentiles {
  p50: number;
  p99: number;
}

/** `rounds`: one PerSide of samples per round, every side measured in every round. */
export function versus(rounds: readonly PerSide[]): Versus {
  const sides: Versus['sides'] = {};
  const added: Versus['added'] = {};
  const addedRoundMedian: Versus['addedRoundMedian'] = {};
  const perRound = new Map<SideName, { p50: number[]; p99: number[] }>();
  for (const name of sideNames) {
    const pooled = rounds.flatMap((round) => round[name]);
    if (pooled.length > 0) sides[name] = summarize(pooled);
  }
  for (const round of rounds) {
    if (round.direct.length === 0) continue;
    const direct = summarize(round.direct);
    for (const name of sideNames) {
      if (round[name].length === 0) continue;
      const s = summarize(round[name]);
      const list = perRound.get(name) ?? { p50: [], p99: [] };
      list.p50.push(s.p50 - direct.p50);
      list.p99.push(s.p99 - direct.p99);
      perRound.set(name, list);
    }
  }
  for (const name of sideNames) {
    const s = sides[name];
    if (s !== undefined && sides.direct !== undefined)
      added[name] = { p50: s.p50 - sides.direct.p50, p99: s.p99 - sides.direct.p99 };
    const list = perRound.get(name);
    if (list !== undefined) addedRoundMedian[name] = { p50: median(list.p50), p99: median(list.p99) };
  }
  const cc = perRound.get('ccproxy') ?? { p50: [], p99: [] };
  const range = (values: number[]): [number, number] => [Math.min(...values), Math.max(...values)];
  const ratio = (a: Percentiles | undefined, b: Percentiles | undefined) => ({
    p50: (a?.p50 ?? Number.NaN) / (b?.p50 ?? Number.NaN),
    p99: (a?.p99 ?? Number.NaN) / (b?.p99 ?? Number.NaN),
  });
  return {
    sides,
    added,
    addedRoundMedian,
    ccproxyRoundSpread: { p50: range(cc.p50), p99: range(cc.p99) },
    addedVsFloor: ratio(addedRoundMedian.ccproxy, addedRoundMedian.floor),
    addedVsPeer: ratio(addedRoundMedian.ccproxy, addedRoundMedian.peer),
  };
}

const ratioText = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a');

export function printVersus(title: string, v: Versus): void {
  console.log(title);
  for (const name of sideNames) {
    const s = v.sides[name];
    if (s === undefined) continue;
    const added = v.added[name];
    const extra =
      name === 'direct' || added === undefined
        ? ''
        : `   added p50 ${fmt(added.p50).padStart(10)}  p99 ${fmt(added.p99).padStart(10)}`;
    console.log(`${row(name, s)}${extra}`);
  }
  const medians = (['floor', 'ccproxy', 'peer'] as const).flatMap((name) => {
    const m = v.addedRoundMedian[name];
    return m === undefined ? [] : [`${name} ${fmt(m.p50)} / ${fmt(m.p99)}`];
  });
  console.log(`  median of per-round added, p50 / p99: ${medians.join(';  ')}`);
  console.log(
    `  ccproxy per-round added: p50 ${spread(v.ccproxyRoundSpread.p50)}, p99 ${spread(v.ccproxyRoundSpread.p99)}`,
  );
  console.log(
    `  ccproxy added ÷ floor added (per-round medians): p50 ${ratioText(v.addedVsFloor.p50)}  p99 ${ratioText(v.addedVsFloor.p99)};  ÷ peer added: p50 ${ratioText(v.addedVsPeer.p50)}  p99 ${ratioText(v.addedVsPeer.p99)}`,
  );
  console.log('');
}
