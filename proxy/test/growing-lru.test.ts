import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { growingLru } from '../src/pipeline/growing-lru.ts';

describe('growingLru', () => {
  it('keeps at most its bound, dropping the least recently used', () => {
    const cache = growingLru<string, number>(3, 60_000);
    for (const [i, key] of ['a', 'b', 'c'].entries()) cache.set(key, i);
    expect(cache.get('a')).toBe(0);
    cache.set('d', 3);
    expect([...cache.keys()].sort()).toEqual(['a', 'c', 'd']);
    for (let i = 0; i < 1_000; i += 1) cache.set(`k${i}`, i);
    expect(cache.size).toBe(3);
  });

  it('forgets an entry once its time is up', async () => {
    const cache = growingLru<string, number>(10, 20);
    cache.set('a', 1);
    expect(cache.get('a')).toBe(1);
    await sleep(60);
    expect(cache.get('a')).toBeUndefined();
  });

  it('allocates nothing up front for its bound', () => {
    const before = process.memoryUsage().heapUsed;
    // With lru-cache's `max`, this bound alone is two 40 MB arrays before the first entry.
    const cache = growingLru<string, number>(5_000_000, 60_000);
    cache.set('a', 1);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(4 * 1024 * 1024);
    expect(cache.get('a')).toBe(1);
  });
});
