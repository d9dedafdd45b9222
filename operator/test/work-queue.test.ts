import { describe, expect, it } from 'vitest';
import { WorkQueue } from '@ccproxy/operator/kube';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** client-go work queue semantics, on the real queue with real timers (no timing assertions beyond order). */
describe('WorkQueue', () => {
  it('holds a key once however often it is added, and never works on one key twice at once', async () => {
    const queue = new WorkQueue();
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const workers = queue.run(async (key) => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      seen.push(key);
      if (seen.length === 1) await gate;
      running -= 1;
    }, 4);
    queue.add('a');
    await tick();
    // 'a' is in flight: adding it again marks it dirty instead of running it beside itself.
    queue.add('a');
    queue.add('a');
    queue.add('b');
    queue.add('b');
    await tick();
    release();
    await tick();
    await tick();
    queue.shutDown();
    await workers;
    expect(seen.sort()).toEqual(['a', 'a', 'b']);
    expect(maxRunning).toBeLessThanOrEqual(2);
  });

  it('backs off exponentially per key with jitter, and a success resets it', () => {
    const queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 });
    expect([1, 2, 3, 4, 5].map(() => queue.addRateLimited('k'))).toEqual([100, 200, 400, 800, 1000]);
    expect(queue.failures('k')).toBe(5);
    queue.forget('k');
    expect(queue.addRateLimited('k')).toBe(100);
    expect(queue.addRateLimited('other')).toBe(100);
    queue.shutDown();
  });

  it('never waits past the maximum, however the jitter falls (a failed key comes back within one resync)', () => {
    const queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000, random: () => 1 });
    expect([1, 2, 3, 4, 5, 6].map(() => queue.addRateLimited('k'))).toEqual([120, 240, 480, 960, 1000, 1000]);
    queue.shutDown();
  });

  it('retries a key whose work threw', async () => {
    const queue = new WorkQueue({ baseDelayMs: 1, maxDelayMs: 5 });
    let attempts = 0;
    const done = new Promise<void>((resolve) => {
      void queue.run(async () => {
        attempts += 1;
        if (attempts < 3) throw new Error('transient');
        resolve();
      });
    });
    queue.add('flaky');
    await done;
    queue.shutDown();
    expect(attempts).toBe(3);
  });
});
