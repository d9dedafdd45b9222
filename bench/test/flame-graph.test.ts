import { execFile as execFileCallback } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callTree, foldedStacks, writeFlameGraph, type CpuProfileTree } from '../src/flame-graph.ts';

const execFile = promisify(execFileCallback);

/** Three named functions that burn known shares of CPU: outer → inner (≈ 300 ms) and other (≈ 100 ms). */
const script = `
  const spin = (ms) => { const end = performance.now() + ms; let x = 0; while (performance.now() < end) x += Math.sqrt(x + 1); return x; };
  function burnInner() { return spin(300); }
  function burnOuter() { return burnInner(); }
  function otherWork() { return spin(100); }
  burnOuter(); otherWork();`;

type Frame = ReturnType<typeof callTree>;
const find = (frame: Frame, prefix: string): Frame | undefined =>
  frame.name.startsWith(prefix) ? frame : frame.children.map((c) => find(c, prefix)).find((f) => f !== undefined);

/** A real `node --cpu-prof` profile of that script, turned into the call tree, folded stacks and the SVG. */
describe('flame graphs from the bench profiles', () => {
  let dir: string;
  let profile: CpuProfileTree;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccproxy-flame-'));
    await execFile(process.execPath, [
      '--cpu-prof',
      `--cpu-prof-dir=${dir}`,
      '--cpu-prof-interval',
      '200',
      '-e',
      script,
    ]);
    const [file] = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
    profile = JSON.parse(await readFile(join(dir, file as string), 'utf8')) as CpuProfileTree;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps callers above callees with each frame’s time, idle left out', () => {
    const tree = callTree(profile);
    const outer = find(tree, 'burnOuter');
    const inner = outer === undefined ? undefined : find(outer, 'burnInner');
    const other = find(tree, 'otherWork');
    expect(outer?.total).toBeGreaterThan(250);
    expect(inner?.total).toBeGreaterThan(250);
    expect(inner?.total).toBeLessThanOrEqual(outer?.total ?? 0);
    expect(other?.total).toBeGreaterThan(80);
    // 3 : 1 as burnt; loose bounds for a loaded machine.
    expect((outer?.total ?? 0) / (other?.total ?? 1)).toBeGreaterThan(2);
    expect((outer?.total ?? 0) / (other?.total ?? 1)).toBeLessThan(4.5);
    expect(find(tree, '(idle)')).toBeUndefined();
    // No frame holds more than its parent.
    const check = (frame: Frame): void => {
      for (const child of frame.children) {
        expect(child.total).toBeLessThanOrEqual(frame.total + 1e-6);
        check(child);
      }
    };
    check(tree);
  });

  it('writes folded stacks and an SVG whose frame widths are the shares of busy time', async () => {
    const svgPath = await writeFlameGraph(profile, join(dir, 'graph'), 'test <profile>');
    const folded = await readFile(join(dir, 'graph.folded.txt'), 'utf8');
    // Self time per stack: everything under burnOuter → burnInner (spin and the clock reads) adds up to its total.
    const underInner = folded
      .split('\n')
      .filter((line) => /burnOuter[^;]*;burnInner/.test(line))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    expect(underInner).toBeGreaterThan(250);
    expect(underInner).toBeCloseTo(find(callTree(profile), 'burnInner')?.total ?? 0, 0);
    expect(foldedStacks(callTree(profile))).toBe(folded);

    const svg = await readFile(svgPath, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('test &lt;profile&gt;');
    const tree = callTree(profile);
    const inner = find(tree, 'burnInner') as Frame;
    const rect = new RegExp(`<title>burnInner[^<]*</title><rect x="[\\d.]+" y="\\d+" width="([\\d.]+)"`).exec(svg);
    expect(rect, 'a frame for burnInner').not.toBeNull();
    expect(Number(rect?.[1])).toBeCloseTo((inner.total / tree.total) * 1200, 0);
  });
});
