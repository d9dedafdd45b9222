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

/**
 * What Postgres last said about a key hash: the key's record, or undefined for "no such key"
 * (cached too, so floods of garbage keys do not reach Postgres).
 */
interface CacheEntry {
  readonly record: KeyRecord | undefined;
  /** The invalidation generation it was read in; an older one is re-validated before use. */
  readonly generation: number;
  /** Until then (ms since epoch) it is trusted without asking Postgres, while notifications flow. */
  readonly freshUntil: number;
  /** Until then a found key is served when Postgres cannot answer (stale-if-error). */
  readonly staleUntil: number;
}

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
  /** How long after Postgres last confirmed a key it keeps working while Postgres cannot answer (default 15 min). */
  staleIfErrorMs?: number;
  maxEntries?: number;
}

/** After a failed lookup, how long lookups answer from the last known state before asking Postgres again. */
const retryAfterFailureMs = 250;

/**
 * Access key → key record. Every lookup does the same work whether or not the key exists:
 * hash, cache probe, and on a miss one indexed query; unknown keys are cached like known
 * ones. Every `ccproxy_keys` notification marks the whole cache for re-validation, so a
 * revocation reaches every replica within a round trip; the TTL is only a safety net.
 *
 * While the LISTEN connection is down the cache cannot be trusted, so every lookup asks
 * Postgres again; when it is back, every cached key is re-validated (a revocation written
 * meanwhile was never announced to this replica). Only when Postgres cannot answer is the last
 * known state used, stale-if-error: a key Postgres confirmed within `staleIfErrorMs` keeps
 * working (nothing can be revoked in a database nobody can reach); a key it never confirmed,
 * or said did not exist, gets an error (503), since "no such key" cannot be claimed without it.
 * The first success after a failure re-validates everything too, in case the LISTEN connection
 * never noticed the outage. Concurrent lookups of one key share one query.
 *
 * Claude Code sends the same key on every request of a keep-alive connection, so each connection
 * remembers the key it last proved: a request repeating it skips the HMAC and the cache probe
 * (together ~150 µs on a CPU whose caches went cold while the client waited on a stream). Only a
 * key the connection has already presented can take the shortcut, compared in constant time;
 * any other key, and every request after an invalidation, takes the full path.
 */
export class KeyResolver {
  readonly #options: KeyResolverOptions;
  readonly #staleMs: number;
  readonly #cache: LRUCache<string, CacheEntry>;
  readonly #byConnection = new WeakMap<object, ConnectionMemo>();
  readonly #inflight = new Map<string, { generation: number; lookup: Promise<KeyRecord | undefined> }>();
  // Bumped on every invalidation; a lookup that raced an invalidation must not refill the cache.
  #generation = 0;
  #unlisten: (() => Promise<void>) | undefined;
  #live = false;
  /** Set while Postgres fails lookups: until `#retryAt` lookups answer from the last known state. */
  #outage: { since: number; staleServed: number; refused: number } | undefined;
  #retryAt = 0;

  constructor(options: KeyResolverOptions) {
    this.#options = options;
    this.#staleMs = options.staleIfErrorMs ?? 15 * 60_000;
    this.#cache = growingLru<string, CacheEntry>(options.maxEntries ?? 50_000, Math.max(options.ttlMs, this.#staleMs));
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

  /** Every cached answer must be re-validated before its next use; it stays only as the stale-if-error fallback. */
  invalidate(): void {
    this.#generation += 1;
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

  /**
   * Looks the key up (cache, then Postgres); with `connection`, remembers a found key for `remembered`.
   * Throws when Postgres cannot answer and no usable last known state exists.
   */
  async resolve(key: string, connection?: object): Promise<KeyRecord | undefined> {
    const hash = this.#options.hashKey(key);
    const entry = this.#cache.get(hash);
    const now = Date.now();
    if (entry !== undefined && this.#live && entry.generation === this.#generation && now < entry.freshUntil) {
      if (connection !== undefined && entry.record !== undefined)
        this.#remember(connection, key, entry.record, entry.generation, entry.freshUntil);
      return usable(entry.record, now);
    }
    // Postgres failed a moment ago: answer from the last known state instead of queueing on it.
    if (now < this.#retryAt) return this.#fallback(entry, now, undefined);
    let generation = this.#generation;
    let record: KeyRecord | undefined;
    try {
      record = await this.#lookup(hash, generation);
    } catch (error) {
      return this.#fallback(entry, this.#failed(error), error);
    }
    if (this.#recovered()) generation = this.#generation;
    const fetchedAt = Date.now();
    // A rotated-out key ends by time, with no notification: its entry must not outlive the grace period.
    const fresh = Math.min(this.#options.ttlMs, (record?.validUntil ?? Infinity) - fetchedAt);
    const stale = record === undefined ? fresh : Math.min(this.#staleMs, (record.validUntil ?? Infinity) - fetchedAt);
    const ttl = Math.max(1, Math.max(fresh, stale));
    // An answer that raced an invalidation keeps its older generation: never trusted as fresh, but
    // still what Postgres said a moment ago, the fallback if it becomes unreachable next.
    if ((this.#cache.peek(hash, { allowStale: true })?.generation ?? -1) <= generation)
      this.#cache.set(
        hash,
        { record, generation, freshUntil: fetchedAt + fresh, staleUntil: fetchedAt + stale },
        { ttl },
      );
    if (connection !== undefined && record !== undefined && this.#live)
      this.#remember(connection, key, record, generation, fetchedAt + Math.max(1, fresh));
    return record;
  }

  /** One query per key at a time: a hundred requests arriving after an expiry share it. */
  #lookup(hash: string, generation: number): Promise<KeyRecord | undefined> {
    const running = this.#inflight.get(hash);
    // A query started before an invalidation may predate the change announced: not shared with later lookups.
    if (running !== undefined && running.generation === generation) return running.lookup;
    const lookup = findKeyByHash(this.#options.db, hash);
    const flight = { generation, lookup };
    this.#inflight.set(hash, flight);
    const done = () => {
      if (this.#inflight.get(hash) === flight) this.#inflight.delete(hash);
    };
    lookup.then(done, done);
    return lookup;
  }

  /** Stale-if-error: a key Postgres confirmed recently enough; otherwise the lookup fails (503, never 404). */
  #fallback(entry: CacheEntry | undefined, now: number, error: unknown): KeyRecord {
    if (entry?.record !== undefined && now < entry.staleUntil && usable(entry.record, now) !== undefined) {
      if (this.#outage !== undefined) this.#outage.staleServed += 1;
      return entry.record;
    }
    if (this.#outage !== undefined) this.#outage.refused += 1;
    throw error ?? new Error('the key store was unreachable a moment ago');
  }

  #failed(error: unknown): number {
    const now = Date.now();
    this.#retryAt = now + retryAfterFailureMs;
    if (this.#outage === undefined) {
      this.#outage = { since: now, staleServed: 0, refused: 0 };
      this.#options.logger.warn(
        { err: error, staleIfErrorMs: this.#staleMs },
        'key store unreachable: keys it confirmed recently keep working, others get 503 until it is back',
      );
    }
    return now;
  }

  /** True on the first success after failures: everything cached is re-validated, as after a lost LISTEN. */
  #recovered(): boolean {
    const outage = this.#outage;
    if (outage === undefined) return false;
    this.#outage = undefined;
    this.#retryAt = 0;
    this.#options.logger.info(
      { outageMs: Date.now() - outage.since, staleServed: outage.staleServed, refused: outage.refused },
      'key store reachable again; cached keys are re-validated',
    );
    this.invalidate();
    return true;
  }

  #remember(connection: object, key: string, record: KeyRecord, generation: number, expiresAt: number): void {
    // As long as the cache entry it mirrors is fresh, which already ends with a rotated-out key's grace period.
    this.#byConnection.set(connection, { key, record, generation, expiresAt });
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

/** The record, unless it is a rotated-out key whose grace period has ended. */
function usable(record: KeyRecord | undefined, now: number): KeyRecord | undefined {
  if (record?.validUntil === undefined) return record;
  return record.validUntil > now ? record : undefined;
}
