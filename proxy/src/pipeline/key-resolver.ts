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
 * ones. The cache is dropped on every `ccproxy_keys` notification (and whenever the LISTEN
 * connection had to be re-established), so a revocation reaches every replica within a round
 * trip; the TTL is only a safety net.
 */
export class KeyResolver {
  readonly #options: KeyResolverOptions;
  readonly #cache: LRUCache<string, CacheEntry>;
  // Bumped on every invalidation; a lookup that raced an invalidation must not refill the cache.
  #generation = 0;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(options: KeyResolverOptions) {
    this.#options = options;
    this.#cache = new LRUCache<string, CacheEntry>({ max: options.maxEntries ?? 50_000, ttl: options.ttlMs });
  }

  get listening(): boolean {
    return this.#unlisten !== undefined;
  }

  async start(): Promise<void> {
    this.#unlisten = await this.#options.db.listen(keyChangesChannel, () => this.invalidate(), () => this.invalidate());
  }

  async stop(): Promise<void> {
    await this.#unlisten?.();
    this.#unlisten = undefined;
  }

  invalidate(): void {
    this.#generation += 1;
    this.#cache.clear();
  }

  async resolve(key: string): Promise<KeyRecord | undefined> {
    const hash = this.#options.hashKey(key);
    const cached = this.#cache.get(hash);
    if (cached !== undefined) return cached === unknown ? undefined : cached;
    const generation = this.#generation;
    const record = await findKeyByHash(this.#options.db, hash);
    if (generation === this.#generation) this.#cache.set(hash, record ?? unknown);
    return record;
  }
}
