import type { LRUCache } from 'lru-cache';
import { growingLru } from './growing-lru.ts';
import {
  findKeyByHash,
  keyChangesChannel,
  type Database,
  type KeyHasher,
  type KeyRecord,
  type Logger,
} from '@ccproxy/core';

/** Cached "no such key" marker, so floods of garbage keys do not reach Postgres. */
const unknown = Symbol('unknown-key');
type CacheEntry = KeyRecord | typeof unknown;

/** The key a connection last proved and what it resolved to, valid while nothing was invalidated since. */
interface ConnectionMemo {
  key: string;
  record: KeyRecord;
  generation: number;
  expiresAt: number;
}

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
 *
 * Claude Code sends the same key on every request of a keep-alive connection, so each connection
 * remembers the key it last proved: a request repeating it skips the HMAC and the cache probe
 * (together ~150 µs on a CPU whose caches went cold while the client waited on a stream). Only a
 * key the connection has already presented can take the shortcut, compared in constant time;
 * any other key, and every request after an invalidation, takes the full path.
 */
export class KeyResolver {
  readonly #options: KeyResolverOptions;
  readonly #cache: LRUCache<string, CacheEntry>;
  readonly #byConnection = new WeakMap<object, ConnectionMemo>();
  // Bumped on every invalidation; a lookup that raced an invalidation must not refill the cache.
  #generation = 0;
  #unlisten: (() => Promise<void>) | undefined;
  #live = false;

  constructor(options: KeyResolverOptions) {
    this.#options = options;
    this.#cache = growingLru<string, CacheEntry>(options.maxEntries ?? 50_000, options.ttlMs);
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

  /**
   * The record this connection's earlier request resolved the same key to, if nothing has been
   * invalidated since and it has not expired; undefined means: call `resolve`.
   */
  remembered(key: string, connection: object): KeyRecord | undefined {
    const memo = this.#byConnection.get(connection);
    if (memo === undefined || memo.generation !== this.#generation || !this.#live) return undefined;
    if (!sameKey(memo.key, key) || Date.now() >= memo.expiresAt) return undefined;
    return memo.record;
  }

  /** Looks the key up (cache, then Postgres); with `connection`, remembers a found key for `remembered`. */
  async resolve(key: string, connection?: object): Promise<KeyRecord | undefined> {
    const hash = this.#options.hashKey(key);
    const cached = usable(this.#cache.get(hash));
    if (cached !== undefined && this.#live) {
      if (cached === unknown) return undefined;
      if (connection !== undefined)
        this.#remember(connection, key, cached, this.#generation, this.#cache.getRemainingTTL(hash));
      return cached;
    }
    const generation = this.#generation;
    let record: KeyRecord | undefined;
    try {
      record = await findKeyByHash(this.#options.db, hash);
    } catch (error) {
      if (cached === undefined) throw error;
      return cached === unknown ? undefined : cached;
    }
    // A rotated-out key ends by time, with no notification: its entry must not outlive the grace period.
    const ttl =
      record?.validUntil === undefined
        ? undefined
        : Math.max(1, Math.min(this.#options.ttlMs, record.validUntil - Date.now()));
    if (generation === this.#generation)
      this.#cache.set(hash, record ?? unknown, ttl === undefined ? undefined : { ttl });
    if (connection !== undefined && record !== undefined && this.#live)
      this.#remember(connection, key, record, generation, ttl ?? this.#options.ttlMs);
    return record;
  }

  #remember(connection: object, key: string, record: KeyRecord, generation: number, ttlMs: number): void {
    // As long as the cache entry it mirrors, whose TTL already ends with a rotated-out key's grace period.
    this.#byConnection.set(connection, { key, record, generation, expiresAt: Date.now() + ttlMs });
  }
}

/**
 * Constant-time for keys of one length (all access keys have the same length, so the length
 * says nothing): the loop never exits early on the first differing character.
 */
function sameKey(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i += 1) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/** A cached entry, unless it is a rotated-out key whose grace period has ended. */
function usable(entry: CacheEntry | undefined): CacheEntry | undefined {
  if (entry === undefined || entry === unknown || entry.validUntil === undefined) return entry;
  return entry.validUntil > Date.now() ? entry : undefined;
}
