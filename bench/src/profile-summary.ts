import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ownerOf, writeFlameGraph, type CpuProfileTree } from './flame-graph.ts';

/** The parts of a V8 `.cpuprofile` this summary and the flame graph read. */
type CpuProfile = CpuProfileTree;

function selfTimes(profile: CpuProfile): {
  byFunction: Map<string, number>;
  byOwner: Map<string, number>;
  totalMs: number;
} {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<string, number>();
  const byOwner = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    if (frame === undefined) return;
    totalMs += ms;
    const file = frame.url.split('/').slice(-2).join('/');
    const fn = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
    const who = ownerOf(frame.url, frame.functionName);
    byOwner.set(who, (byOwner.get(who) ?? 0) + ms);
  });
  return { byFunction, byOwner, totalMs };
}

function printTop(title: string, table: Map<string, number>, busyMs: number, count: number): void {
  console.log(title);
  const top = [...table].sort((a, b) => b[1] - a[1]).slice(0, count);
  for (const [name, ms] of top)
    console.log(`  ${((100 * ms) / busyMs).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(7)} ms  ${name}`);
  console.log('');
}

/** Prints the self-time split of the newest `.cpuprofile` in `dir` (idle time left out of the percentages). */
export async function summarizeProfiles(dir: string): Promise<void> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.cpuprofile')).sort();
  const newest = files.at(-1);
  if (newest === undefined) {
    console.log(`no .cpuprofile in ${dir}`);
    return;
  }
  const profile = JSON.parse(await readFile(join(dir, newest), 'utf8')) as CpuProfile;
  const { byFunction, byOwner, totalMs } = selfTimes(profile);
  const idle = byOwner.get('((idle))') ?? 0;
  const busy = totalMs - idle;
  console.log(
    `\nproxy CPU profile ${join(dir, newest)}: ${totalMs.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms busy\n`,
  );
  byOwner.delete('((idle))');
  byFunction.forEach((_, name) => name.startsWith('(idle)') && byFunction.delete(name));
  printTop('self time by owner (% of busy)', byOwner, busy, 15);
  printTop('self time by function (% of busy)', byFunction, busy, 25);
  const svg = await writeFlameGraph(
    profile,
    join(dir, newest.replace(/\.cpuprofile$/, '')),
    `ccproxy CPU profile ${newest}`,
  );
  console.log(`flame graph: ${svg} (and .folded.txt beside it: flamegraph.pl, inferno and speedscope read it)`);
}
