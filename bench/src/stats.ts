/** Exact percentiles over all samples (no histogram rounding), in milliseconds. */
export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { n: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.at(-1) ?? Number.NaN };
}

/** The middle value (the mean of the two middle ones for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export const fmt = (ms: number) => (Number.isFinite(ms) ? `${ms.toFixed(3)} ms` : 'n/a');

/** Least-squares slope of y over x and its R² (NaN with fewer than two distinct x). */
export function fitLine(points: readonly { x: number; y: number }[]): { slope: number; r2: number } {
  const usable = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const sum = (f: (p: { x: number; y: number }) => number) => usable.reduce((total, p) => total + f(p), 0);
  const mx = sum((p) => p.x) / usable.length;
  const my = sum((p) => p.y) / usable.length;
  const sxx = sum((p) => (p.x - mx) ** 2);
  const syy = sum((p) => (p.y - my) ** 2);
  const sxy = sum((p) => (p.x - mx) * (p.y - my));
  if (usable.length < 2 || sxx === 0) return { slope: Number.NaN, r2: Number.NaN };
  return { slope: sxy / sxx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}
