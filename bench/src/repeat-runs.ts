import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { medianOfRuns, printMedianTargets } from './median-of-runs.ts';
import type { Results } from './results.ts';
import { issue27Lines, sideBySide } from './side-by-side.ts';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
const doc = fileURLToPath(new URL('../../docs/performance.md', import.meta.url));
export const docBegin = '<!-- bench --write-doc: begin -->';
export const docEnd = '<!-- bench --write-doc: end -->';

/**
 * `npm run bench -- --runs 3 [--write-doc] [other flags]`: the protocol's median of three runs
 * as one command. Each run is its own `main.ts` process (nothing carries over between runs),
 * back to back; then the runs are folded (`--median`) and, with `--write-doc`, the issue's
 * target lines and the side-by-side table of the median go into docs/performance.md between
 * the `bench --write-doc` markers.
 */
export async function repeatRuns(runs: number, argv: readonly string[], writeDoc: boolean): Promise<void> {
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs: give a whole number of runs, e.g. --runs 3');
  const passOn = argv.filter((arg, i) => arg !== '--write-doc' && arg !== '--runs' && argv[i - 1] !== '--runs');
  const files: string[] = [];
  for (let i = 1; i <= runs; i += 1) {
    console.log(`[bench] run ${i} of ${runs}`);
    files.push(await oneRun(passOn));
  }
  if (files.length >= 2) await printMedianTargets(files);
  if (writeDoc) await writeDocFromRuns(files);
}

/** `--median a.json [b.json …] --write-doc`, and the end of `--runs N --write-doc`: the doc section from saved runs. */
export async function writeDocFromRuns(files: readonly string[]): Promise<void> {
  const results = await Promise.all(files.map(async (f) => JSON.parse(await readFile(f, 'utf8')) as Results));
  const folded = (files.length === 1 ? results[0] : medianOfRuns(results)) as Results;
  await writeDocSection(folded, results, files);
}

function oneRun(argv: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
    let saved: string | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      const match = /bench\/results\/(run-[^\s]+\.json)/.exec(chunk.toString());
      if (match?.[1] !== undefined) saved = `${resultsDir}${match[1]}`;
    });
    child.once('exit', (code) =>
      code === 0 && saved !== undefined ? resolve(saved) : reject(new Error(`bench run exited with ${code}`)),
    );
  });
}

async function writeDocSection(folded: Results, runs: Results[], files: readonly string[]): Promise<void> {
  const lines = issue27Lines(folded);
  const perRun = runs.map(issue27Lines);
  const section = [
    docBegin,
    `Written by \`npm run bench -- … --write-doc\` from ${runs.length} saved run${runs.length === 1 ? '' : 's'} on ${new Date().toISOString().slice(0, 16)} UTC`,
    `(${runs[0]?.mode ?? '?'} runs; machine: ${runs[0]?.machine.cpu ?? '?'}, ${runs[0]?.machine.cores ?? '?'} cores, steal ${runs.map((r) => r.machine.stealPercent).join(' / ')} %;`,
    `runs: ${files.map((f) => f.slice(f.lastIndexOf('/') + 1)).join(', ')}). Each figure is the median of the runs'.`,
    '',
    '| target (issue 27) | goal | median of the runs | met | each run |',
    '|---|---|---|---|---|',
    ...lines.map(
      (l, i) =>
        `| ${l.metric} | ${l.target} | ${l.measured} | ${l.met ? 'met' : '**not met**'} | ${perRun.map((p) => (p[i]?.met === true ? '✓' : '✗')).join('')} |`,
    ),
    '',
    sideBySide(folded),
    docEnd,
  ].join('\n');
  const text = await readFile(doc, 'utf8');
  const begin = text.indexOf(docBegin);
  const end = text.indexOf(docEnd);
  if (begin === -1 || end === -1) throw new Error(`docs/performance.md has no ${docBegin} … ${docEnd} markers`);
  await writeFile(doc, `${text.slice(0, begin)}${section}${text.slice(end + docEnd.length)}`);
  console.log('written: docs/performance.md (the bench --write-doc section)');
}
