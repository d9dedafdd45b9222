import { readFile } from 'node:fs/promises';
import { printEventDelay, targetsOf, type Results } from './results.ts';
import { median } from './stats.ts';
import { printIssue27 } from './side-by-side.ts';
import { printTailAnatomy } from './tail-anatomy.ts';

/**
 * Run-to-run spread on a shared VM is larger than most of the differences a run measures (the
 * same commit gave 768 and 1,536 streams in two back-to-back runs), so the protocol judges
 * ceilings and load p99s on the median of ≥ 3 full runs (perf-anchors §5.7). This folds saved
 * runs into one: every number is the median of that number across the runs.
 */
export function medianOfRuns(runs: readonly unknown[]): unknown {
  // JSON writes NaN as null: a figure one run could not take is left out, not counted as zero.
  if (runs.some((x) => typeof x === 'number')) return median(runs.filter((x): x is number => typeof x === 'number'));
  const first = runs.find((x) => x !== null && x !== undefined) ?? runs[0];
  if (Array.isArray(first)) {
    // A ladder's rungs differ in number between runs: only same-length arrays line up element by element.
    const arrays = runs.filter(Array.isArray);
    if (arrays.length !== runs.length || arrays.some((a) => a.length !== first.length)) return first;
    return first.map((_, i) => medianOfRuns(arrays.map((a) => a[i] as unknown)));
  }
  if (first !== null && typeof first === 'object') {
    const objects = runs.filter((x): x is Record<string, unknown> => x !== null && typeof x === 'object');
    return Object.fromEntries(Object.keys(first).map((key) => [key, medianOfRuns(objects.map((o) => o[key]))]));
  }
  return first;
}

/** `npm run bench -- --median a.json b.json c.json`: the target table over saved runs. */
export async function printMedianTargets(files: readonly string[]): Promise<void> {
  if (files.length < 2) throw new Error('--median: give two or more saved runs (bench/results/run-*.json)');
  const runs = await Promise.all(files.map(async (file) => JSON.parse(await readFile(file, 'utf8')) as Results));
  const perRun = runs.map(targetsOf);
  const folded = medianOfRuns(runs) as Results;
  const combined = targetsOf(folded);
  console.log(`targets (issue 8) over ${runs.length} runs: each figure is the median of the runs' figures`);
  for (const [i, x] of combined.entries()) {
    const runsMet = perRun.map((targets) => (targets[i]?.met === true ? '✓' : '✗')).join('');
    console.log(
      `  ${x.met ? 'met    ' : 'NOT MET'}  ${x.metric.padEnd(62)} ${x.target.padEnd(18)} ${x.measured.padEnd(28)} runs ${runsMet}`,
    );
  }
  console.log(`  ${combined.filter((x) => x.met).length} of ${combined.length} met on the medians\n`);
  printEventDelay(folded);
  if (folded.tailAnatomy !== undefined) printTailAnatomy(folded.tailAnatomy);
  printIssue27(folded);
}
