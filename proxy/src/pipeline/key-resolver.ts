import { LRUCache } from 'lru-cache';
import { findKeyByHash, keyChangesChannel, type Database, type KeyHasher, type KeyRecord, type Logger } from '@ccproxy/core';

/** Cached "no such key" marker, so floods of garbage keys do not reach Postgres. */
const unknown = Symbol('unknown-key');
type CacheEntry = KeyRecord | typeof unknown;

export interface KeyResolverOptions {
  db: Database;
  hashKey: KeyHasher;
  logger: Logger;
  ttlMs: number;
  maxEntries?: number;
}

/**
 * Access key → key record. Every lookup does the same work whether or not the key exists:
 * hash, cache probe, and on a miss one indexed query; unknown keys are cached like known
 * ones. The cache is dropped on every `ccproxy_keys` notification, so a revocation reaches
 * every replica within a round trip; the TTL is only a safety net.
 *
 * While the LISTEN connection is down the cache cannot be trusted, so every lookup asks
 * Postgres again; only if Postgres cannot answer either is the cached answer used (nothing can
 * be revoked in a database nobody can reach), which keeps known keys working through an outage.
 */
export class KeyResolver {
  readonly #options: KeyResolverOptions;
  readonly #cache: LRUCache<string, CacheEntry>;
  // Bumped on every invalidation; a lookup that raced an invalidation must not refill the cache.
  #generation = 0;
  #unlisten: (() => Promise<void>) | undefined;
  #live = false;

  constructor(options: KeyResolverOptions) {
    this.#options = options;
    this.#cache = new LRUCache<string, CacheEntry>({ max: options.maxEntries ?? 50_000, ttl: options.ttlMs });
  }

  /** Started (ready to serve); stays true through database outages, which cached keys survive. */
  get listening(): boolean {
    return this.#unlisten !== undefined;
  }

  async start(): Promise<void> {
    this.#unlisten = await this.#options.db.listen(keyChangesChannel, {
      onNotify: () => this.invalidate(),
      onLost: () => {
        this.#live = false;
      },
      onRestored: () => {
        this.invalidate();
        this.#live = true;
      },
    });
    this.#live = true;
  }

  async stop(): Promise<void> {
    await this.#unlisten?.();
    this.#unlisten = undefined;
    this.#live = false;
  }

  invalidate(): void {
    this.#generation += 1;
    this.#cache.clear();
  }

  async resolve(key: string): Promise<KeyRecord | undefined> {
    const hash = this.#options.hashKey(key);
    const cached = usable(this.#cache.get(hash));
    if (cached !== undefined && this.#live) return cached === unknown ? undefined : cached;
    const generation = this.#generation;
    let record: KeyRecord | undefined;
    try {
      record = await findKeyByHash(this.#options.db, hash);
    } catch (error) {
      if (cached === undefined) throw error;
      return cached === unknown ? undefined : cached;
    }
    // A rotated-out key ends by time, with no notification: its entry must not outlive the grace period.
    const ttl = record?.validUntil === undefined ? undefined : Math.max(1, Math.min(this.#options.ttlMs, record.validUntil - Date.now()));
    if (generation === this.#generation) this.#cache.set(hash, record ?? unknown, ttl === undefined ? undefined : { ttl });
    return record;
  }
}

/** A cached entry, unless it is a rotated-out key whose grace period has ended. */
function usable(entry: CacheEntry | undefined): CacheEntry | undefined {
  if (entry === undefined || entry === unknown || entry.validUntil === undefined) return entry;
  return entry.validUntil > Date.now() ? entry : undefined;
}
