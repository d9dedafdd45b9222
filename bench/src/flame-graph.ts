import { writeFile } from 'node:fs/promises';

/** The parts of a V8 `.cpuprofile` a flame graph needs. */
export interface CpuProfileTree {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}

interface Frame {
  name: string;
  /** Whose code (`ownerOf`). */
  owner: string;
  /** ms in this frame and everything it called. */
  total: number;
  children: Frame[];
}

function frameName(frame: CpuProfileTree['nodes'][number]['callFrame']): string {
  const file = frame.url.split('/').slice(-2).join('/');
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  return file === '' ? name : `${name} ${file}:${frame.lineNumber + 1}`;
}

/** Whose code a frame is: `node_modules/<package>`, `node:internal`, a project folder, or a V8 marker (`(garbage collector)`). */
export function ownerOf(url: string, name: string): string {
  if (url === '') return `(${name || 'native'})`;
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (module?.[1] !== undefined) return module[1];
  if (url.startsWith('node:')) return 'node:internal';
  const project = /\/work\/main\/([^/]+)\//.exec(url) ?? /\/([^/]+)\/src\//.exec(url);
  return project?.[1] ?? url;
}

/** The call tree with each frame's total (self + callees) ms, idle left out; frames merged by name per parent. */
export function callTree(profile: CpuProfileTree): Frame {
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const build = (id: number): Frame | undefined => {
    const node = byId.get(id);
    if (node === undefined || node.callFrame.functionName === '(idle)') return undefined;
    const children = new Map<string, Frame>();
    for (const child of node.children ?? []) {
      const frame = build(child);
      if (frame === undefined || frame.total <= 0) continue;
      const same = children.get(frame.name);
      if (same === undefined) children.set(frame.name, frame);
      else {
        same.total += frame.total;
        same.children.push(...frame.children);
      }
    }
    const list = [...children.values()].sort((a, b) => b.total - a.total);
    const total = (self.get(id) ?? 0) + list.reduce((sum, f) => sum + f.total, 0);
    return {
      name: frameName(node.callFrame),
      owner: ownerOf(node.callFrame.url, node.callFrame.functionName),
      total,
      children: list,
    };
  };
  const root = profile.nodes.find((node) => node.callFrame.functionName === '(root)') ?? profile.nodes[0];
  const tree = root === undefined ? undefined : build(root.id);
  return { name: 'all (busy)', owner: '(root)', total: tree?.total ?? 0, children: tree?.children ?? [] };
}

/** `a;b;c <ms>` lines (self time per stack), the format flamegraph.pl, inferno and speedscope read. */
export function foldedStacks(tree: Frame): string {
  const lines: string[] = [];
  const walk = (frame: Frame, path: string[]) => {
    const self = frame.total - frame.children.reduce((sum, f) => sum + f.total, 0);
    if (self > 0.0005 && path.length > 0) lines.push(`${path.join(';')} ${self.toFixed(3)}`);
    for (const child of frame.children) walk(child, [...path, child.name.replaceAll(';', ':')]);
  };
  walk(tree, []);
  return `${lines.join('\n')}\n`;
}

const escape = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

/** A colour per owner (package, Node internals, our code), so a glance shows whose time it is. */
function colour(owner: string): string {
  let hash = 0;
  for (const char of owner) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360},65%,${62 + (hash % 15)}%)`;
}

/**
 * An SVG icicle graph (callers above callees; width is share of busy time), readable in any
 * browser: each frame's title says its name, ms and share. Frames narrower than 0.1 % are left out.
 */
export function flameGraphSvg(tree: Frame, title: string): string {
  const width = 1200;
  const row = 17;
  const rects: string[] = [];
  let depthMax = 0;
  const draw = (frame: Frame, x: number, depth: number) => {
    const w = tree.total === 0 ? 0 : (frame.total / tree.total) * width;
    if (w < width / 1000) return;
    depthMax = Math.max(depthMax, depth);
    const share = ((100 * frame.total) / (tree.total || 1)).toFixed(1);
    const label = w > 30 ? escape(frame.name.slice(0, Math.floor((w - 6) / 6.5))) : '';
    rects.push(
      `<g><title>${escape(frame.name)} [${escape(frame.owner)}]: ${frame.total.toFixed(1)} ms (${share} %)</title>` +
        `<rect x="${x.toFixed(2)}" y="${depth * row + 24}" width="${w.toFixed(2)}" height="${row - 1}" fill="${colour(frame.owner)}"/>` +
        (label === '' ? '' : `<text x="${(x + 3).toFixed(2)}" y="${depth * row + 36}">${label}</text>`) +
        '</g>',
    );
    let at = x;
    for (const child of frame.children) {
      draw(child, at, depth + 1);
      at += (child.total / (tree.total || 1)) * width;
    }
  };
  draw(tree, 0, 0);
  const height = (depthMax + 1) * row + 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="11">`,
    `<text x="4" y="15" font-size="13">${escape(title)}</text>`,
    ...rects,
    '</svg>',
    '',
  ].join('\n');
}

/** Writes `<base>.svg` and `<base>.folded.txt` for a profile; returns the SVG's path. */
export async function writeFlameGraph(profile: CpuProfileTree, base: string, title: string): Promise<string> {
  const tree = callTree(profile);
  await writeFile(`${base}.folded.txt`, foldedStacks(tree));
  await writeFile(`${base}.svg`, flameGraphSvg(tree, `${title} — ${tree.total.toFixed(0)} ms busy`));
  return `${base}.svg`;
}
