import { LRUCache } from 'lru-cache';

/**
 * An LRU cache of at most `entries` entries, each kept at most `ttlMs`, whose storage grows with
 * what it holds. lru-cache's `max` allocates its arrays for every entry up front: at the bounds a
 * replica needs (tens of thousands of keys) that was ~10 MB per process, idle, that every full
 * GC marks. The same bound as a `maxSize` of entries of size 1 allocates as entries arrive.
 */
export function growingLru<K extends NonNullable<unknown>, V extends NonNullable<unknown>>(
  entries: number,
  ttlMs: number,
  options: { keepExpired?: boolean } = {},
): LRUCache<K, V> {
  // keepExpired: an expired entry is no longer returned by `get`, but `peek(k, { allowStale: true })`
  // still finds it until it is replaced or evicted (a last known value to fall back on).
  return new LRUCache<K, V>({
    maxSize: entries,
    sizeCalculation: () => 1,
    ttl: ttlMs,
    ...(options.keepExpired === true ? { noDeleteOnStaleGet: true } : {}),
  });
}
