import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatDuration, longStep } from '../src/progress.ts';

describe('long steps say what is happening', () => {
  afterEach(() => void vi.useRealTimers());

  it('prints a start line, a heartbeat with elapsed and expected time, and an end line', async () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    let finish = () => {};
    const step = longStep(
      'building kube-apiserver',
      { expectedSeconds: 600, everySeconds: 30, write: (line) => lines.push(line), now: () => Date.now() },
      () => new Promise<string>((resolve) => (finish = () => resolve('built'))),
    );
    await vi.advanceTimersByTimeAsync(95_000);
    finish();
    await expect(step).resolves.toBe('built');
    expect(lines[0]).toBe('[ccproxy test setup] building kube-apiserver: starting (usually about 10 min)');
    expect(lines.slice(1, 4)).toEqual([
      '[ccproxy test setup] building kube-apiserver: still running, 30 s elapsed of about 10 min',
      '[ccproxy test setup] building kube-apiserver: still running, 1 min elapsed of about 10 min',
      '[ccproxy test setup] building kube-apiserver: still running, 1 min 30 s elapsed of about 10 min',
    ]);
    expect(lines.at(-1)).toBe('[ccproxy test setup] building kube-apiserver: done in 1 min 35 s');
  });

  it('says so when the step fails, and stops its heartbeat', async () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const step = longStep('installing moto', { expectedSeconds: 25, write: (line) => lines.push(line) }, async () => {
      throw new Error('pip failed');
    });
    await expect(step).rejects.toThrow('pip failed');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(lines).toEqual([
      '[ccproxy test setup] installing moto: starting (usually about 25 s)',
      '[ccproxy test setup] installing moto: failed after 0 s',
    ]);
  });

  it('formats durations for people', () => {
    expect([0, 59.4, 60, 61, 600, 725].map(formatDuration)).toEqual([
      '0 s',
      '59 s',
      '1 min',
      '1 min 1 s',
      '10 min',
      '12 min 5 s',
    ]);
  });
});
