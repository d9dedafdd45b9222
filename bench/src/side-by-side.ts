import type { CpuCostResults } from './cpu-cost.ts';
import type { Percentiles, Versus } from './report.ts';
import type { Results } from './results.ts';
import { peerLabel, peerNames, type SideName } from './sides.ts';

/**
 * Issue 27's targets, every one a ratio against the floor measured in the same run (or an
 * absolute bound where the issue gives one), and the one table with floor, ccproxy and every
 * peer side by side. Markdown, so `--write-doc` can put it into docs/performance.md as printed.
 */
export interface Line {
  metric: string;
  target: string;
  measured: string;
  met: boolean;
}

/** A figure as saved: JSON writes NaN as null, and null − null would be 0, a pass. */
const num = (value: number | null | undefined): number => (typeof value === 'number' ? value : Number.NaN);
const ratio = (a: number | null | undefined, b: number | null | undefined) => num(a) / num(b);
const signed = (value: number) => `${value >= 0 ? '+' : ''}${value.toFixed(3)}`;
const x = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a');
const us = (value: number) => (Number.isFinite(value) ? `${value.toFixed(0)} µs` : 'n/a');
const ms = (value: number) => (Number.isFinite(value) ? `${value.toFixed(3)} ms` : 'n/a');
const nan: Percentiles = { p50: Number.NaN, p99: Number.NaN };
const added = (v: Versus | undefined, name: SideName): Percentiles => {
  const a = v?.addedRoundMedian[name];
  return a === undefined ? nan : { p50: num(a.p50), p99: num(a.p99) };
};

export function issue27Lines(r: Results): Line[] {
  const line = (metric: string, target: string, measured: string, met: boolean): Line => ({
    metric,
    target,
    measured,
    met,
  });
  const lines: Line[] = [];
  for (const mode of ['streamingTtfb', 'nonStreaming'] as const) {
    const a = r.tailAnatomy?.[mode];
    const cc = a?.ccproxy.segments.proxyIn ?? nan;
    const fl = a?.floor.segments.proxyIn ?? nan;
    const label = mode === 'streamingTtfb' ? 'streaming' : 'non-streaming';
    const p50 = ratio(cc.p50, fl.p50);
    const p99 = ratio(cc.p99, fl.p99);
    lines.push(
      line(
        `proxyIn (${label}), ccproxy ÷ floor, p50 / p99`,
        '≤ 1.2× / ≤ 1.5×',
        `${x(p50)} / ${x(p99)} (${us(cc.p50)} vs ${us(fl.p50)} / ${us(cc.p99)} vs ${us(fl.p99)})`,
        p50 <= 1.2 && p99 <= 1.5,
      ),
    );
  }
  const ttfb = r.streamingTtfb;
  lines.push(
    line(
      'streaming TTFB added, ccproxy ÷ floor, p50 / p99',
      '≤ 1.2× / ≤ 1.2×',
      `${x(ttfb.addedVsFloor.p50)} / ${x(ttfb.addedVsFloor.p99)} (${ms(added(ttfb, 'ccproxy').p50)} vs ${ms(added(ttfb, 'floor').p50)} / ${ms(added(ttfb, 'ccproxy').p99)} vs ${ms(added(ttfb, 'floor').p99)})`,
      ttfb.addedVsFloor.p50 <= 1.2 && ttfb.addedVsFloor.p99 <= 1.2,
    ),
  );
  const cpu = (name: SideName) => r.cpuCost?.sides[name];
  const perRequest = ratio(
    cpu('ccproxy')?.microsPerRequest ?? Number.NaN,
    cpu('floor')?.microsPerRequest ?? Number.NaN,
  );
  const perEvent = ratio(cpu('ccproxy')?.microsPerEvent ?? Number.NaN, cpu('floor')?.microsPerEvent ?? Number.NaN);
  lines.push(
    line(
      `CPU per non-streaming request, ccproxy ÷ floor (c=${r.cpuCost?.concurrency ?? '?'})`,
      '≤ 1.8×',
      `${x(perRequest)} (${us(cpu('ccproxy')?.microsPerRequest ?? Number.NaN)} vs ${us(cpu('floor')?.microsPerRequest ?? Number.NaN)})`,
      perRequest <= 1.8,
    ),
    line(
      'CPU per relayed stream event, ccproxy ÷ floor',
      '≤ 1.5×',
      `${x(perEvent)} (${(cpu('ccproxy')?.microsPerEvent ?? Number.NaN).toFixed(1)} vs ${(cpu('floor')?.microsPerEvent ?? Number.NaN).toFixed(1)} µs)`,
      perEvent <= 1.5,
    ),
  );
  const maxRate = (name: SideName) => num(r.throughput.ladders[name]?.maxSustained);
  const rateGoal = Math.min(2000, maxRate('floor'));
  lines.push(
    line(
      'max sustained req/s on one core (≥ 2,000 wherever the floor reaches it)',
      maxRate('floor') >= 2000 || Number.isNaN(maxRate('floor')) ? '≥ 2,000' : `≥ floor's ${maxRate('floor')}`,
      `${maxRate('ccproxy')} (floor ${maxRate('floor')})`,
      maxRate('ccproxy') >= rateGoal,
    ),
  );
  const held = num(r.streams.sides.ccproxy?.maxHeld);
  const rss = num(r.streams.memory?.sides.ccproxy?.rssKiBPerStream);
  // A ladder that stops short of 4,096 (the quick run's tops at 1,024) cannot show the line: said so.
  const ladder = (r.plan as { streamLadder?: number[] }).streamLadder ?? [];
  const top = Math.max(0, ...ladder);
  const short = r.streams.sides.ccproxy !== undefined && top < 4096 ? ` (this run's ladder tops at ${top})` : '';
  lines.push(
    line(
      'concurrent streams at 50 events/s held (proxy alone on CPU 1); RSS per stream',
      '≥ 4,096; ≤ 16 KiB',
      `${held}; ${Number.isFinite(rss) ? rss.toFixed(1) : 'n/a'} KiB${short}`,
      held >= 4096 && rss <= 16,
    ),
  );
  // Judged on the median of per-round added p99s where the run has them (as the Plan lines are), pooled beside.
  const planP99 = num(r.bedrockTtfbVsPlan.direct.p99);
  const pooled = {
    converse: num(r.bedrockTtfbVsPlan.ccproxy.p99) - planP99,
    invoke: num(r.invokeTtfbVsConverse?.ccproxy.p99) - planP99,
  };
  for (const api of ['converse', 'invoke'] as const) {
    const rounds = r.bedrockAddedRoundMedian?.[api].p99;
    const judged = rounds === undefined ? pooled[api] : num(rounds);
    const measured = rounds === undefined ? `${ms(judged)} (pooled)` : `${ms(judged)} (pooled ${ms(pooled[api])})`;
    const name = api === 'converse' ? 'Converse' : 'InvokeModel';
    lines.push(
      line(`Bedrock ${name} added TTFB over Plan, p99 (median of per-round)`, '≤ 0.5 ms', measured, judged <= 0.5),
    );
  }
  lines.push(
    ...(['converse', 'invoke'] as const).map((api) => {
      const figure = translationFigure(r, api);
      const what = api === 'converse' ? 'Converse frame' : 'InvokeModel chunk';
      return line(`${what} → SSE translation, in process`, '≤ 3 µs per frame', figure.text, figure.micros <= 3);
    }),
  );
  return lines;
}

/** A translation line's judged figure: CPU time per frame where the run measured it, wall time in older runs. */
export function translationFigure(r: Results, api: 'converse' | 'invoke'): { micros: number; text: string } {
  const cpu = api === 'converse' ? r.translationCpuMicrosPerFrame : r.invokeTranslationCpuMicrosPerFrame;
  const wall = api === 'converse' ? r.translationMicrosPerFrame : r.invokeTranslationMicrosPerFrame;
  const fixed = (value: number | null | undefined) => (typeof value === 'number' ? value.toFixed(2) : 'n/a');
  if (typeof cpu !== 'number')
    return { micros: typeof wall === 'number' ? wall : Number.NaN, text: `${fixed(wall)} µs wall` };
  return { micros: cpu, text: `${fixed(cpu)} µs CPU (wall ${fixed(wall)} µs)` };
}

export function printIssue27(r: Results): void {
  const lines = issue27Lines(r);
  console.log('targets (issue 27: ratios against the floor measured in this run)');
  for (const l of lines)
    console.log(`  ${l.met ? 'met    ' : 'NOT MET'}  ${l.metric.padEnd(72)} ${l.target.padEnd(18)} ${l.measured}`);
  console.log(`  ${lines.filter((l) => l.met).length} of ${lines.length} met\n`);
  console.log(sideBySide(r));
}

const columns = ['floor', 'ccproxy', ...peerNames] as const;
const heading = (name: (typeof columns)[number]) =>
  name === 'floor' || name === 'ccproxy' ? name : peerLabel[name as (typeof peerNames)[number]];

/** Floor, ccproxy and every peer in one Markdown table; a peer that could not run a scenario says so below it. */
export function sideBySide(r: Results): string {
  const pct = (v: Versus | undefined) => (name: SideName) => {
    const a = added(v, name);
    return Number.isFinite(num(a.p50)) ? `${signed(a.p50)} / ${signed(num(a.p99))} ms` : 'n/a';
  };
  const segment = (mode: 'streamingTtfb' | 'nonStreaming') => (name: SideName) => {
    const s = name === 'floor' || name === 'ccproxy' ? r.tailAnatomy?.[mode][name].segments.proxyIn : undefined;
    return s === undefined ? '—' : `${num(s.p50).toFixed(0)} / ${num(s.p99).toFixed(0)} µs`;
  };
  const cpu = (key: 'microsPerRequest' | 'microsPerEvent', digits: number) => (name: SideName) => {
    const side = (r.cpuCost as CpuCostResults | undefined)?.sides[name];
    return side === undefined || !Number.isFinite(num(side[key])) ? 'n/a' : `${side[key].toFixed(digits)} µs`;
  };
  const rows: Array<[string, (name: SideName) => string]> = [
    ['non-streaming added, c=1, p50 / p99', pct(r.nonStreaming)],
    ['streaming TTFB added, c=1, p50 / p99', pct(r.streamingTtfb)],
    ['open loop 200 req/s added, p50 / p99', pct(r.openLoop)],
    ['per-event delivery delay added, p50 / p99', pct(r.streamingEventDelay)],
    ['proxyIn, streaming, p50 / p99', segment('streamingTtfb')],
    ['proxyIn, non-streaming, p50 / p99', segment('nonStreaming')],
    [`CPU per non-streaming request (c=${r.cpuCost?.concurrency ?? 8})`, cpu('microsPerRequest', 0)],
    ['CPU per relayed stream event', cpu('microsPerEvent', 1)],
    ['max sustained req/s, one core', (name) => String(r.throughput.ladders[name]?.maxSustained ?? 'n/a')],
    ['streams held at 50 events/s', (name) => String(r.streams.sides[name]?.maxHeld ?? 'n/a')],
    [
      'RSS per open stream (after a forced GC)',
      (name) => {
        const m = r.streams.memory?.sides[name]?.rssKiBPerStream;
        return m === undefined ? 'n/a' : `${m.toFixed(1)} KiB`;
      },
    ],
  ];
  const out = [
    `| metric | ${columns.map(heading).join(' | ')} |`,
    `|---|${columns.map(() => '---').join('|')}|`,
    ...rows.map(([label, cell]) => `| ${label} | ${columns.map((c) => cell(c)).join(' | ')} |`),
  ];
  const notes = whyNot(r);
  return `${out.join('\n')}\n${notes.length === 0 ? '' : `\n${notes.map((n) => `- ${n}`).join('\n')}\n`}`;
}

/** Every peer that could not run at all, or could not run a scenario, with the reason. */
function whyNot(r: Results): string[] {
  const notes: string[] = [];
  for (const name of peerNames) {
    const status = r.peerStatus?.[name];
    if (status !== undefined && !status.startsWith('runs')) notes.push(`${peerLabel[name]}: ${status}`);
    const planFailure = r.planPathFailures?.[name];
    if (planFailure !== undefined) notes.push(`${peerLabel[name]}, concurrency-1 scenarios: ${planFailure}`);
    const cpuFailure = r.cpuCost?.sides[name]?.failed;
    if (cpuFailure !== undefined) notes.push(`${peerLabel[name]}, CPU scenario: ${cpuFailure}`);
    if (r.streams.sides[name] !== undefined && r.streams.memory?.sides[name] === undefined)
      notes.push(
        `${peerLabel[name]}, memory per stream: cannot run: no inspector to force a full GC (not a Node process)`,
      );
  }
  notes.push('proxyIn is read from the tail-anatomy pass, which instruments the floor and ccproxy only (—).');
  return notes;
}
