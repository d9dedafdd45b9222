import type { LRUCache } from 'lru-cache';
import { growingLru } from './growing-lru.ts';
import { Gauge, type Registry } from 'prom-client';
import {
  breakerChannel,
  breakerStateOf as stateOf,
  claimTrial,
  readBreaker,
  recordFailover,
  recordPlanFailure,
  recordPlanSuccess,
  type BreakerPolicy,
  type BreakerRow,
  type BreakerState,
  type Database,
  type Logger,
} from '@ccproxy/core';

const none = Symbol('no-breaker-row');

/** How long a breaker row read from the last known state (Postgres failing) is used before asking again. */
const fallbackTtlMs = 5_000;

/**
 * Per-access-key circuit breakers whose state lives in Postgres (shared by all replicas). Each
 * replica caches rows and drops a key's entry on its `ccproxy_breakers` notification, so the
 * hot path for a healthy key costs no query. Breaker bookkeeping never fails a request: on a
 * database error the last state this replica saw is used (closed if it never saw one), asked
 * again after a few seconds, and the outage is logged once, not once per request.
 */
export class CircuitBreakers {
  readonly #db: Database;
  readonly #policy: BreakerPolicy;
  readonly #logger: Logger;
  readonly #now: () => number;
  // The TTL only bounds staleness if a notification is ever missed.
  readonly #cache = growingLru<string, BreakerRow | typeof none>(50_000, 30_000, { keepExpired: true });
  /** Sessions pinned to Bedrock by a Plan `retry-after`: `key/session` → until (ms since epoch). */
  readonly #pins: LRUCache<string, number>;
  // Failure writes still in flight, by key: this replica's next decision for the key waits for them.
  readonly #pending = new Map<string, Promise<void>>();
  readonly #open: Gauge<'key'>;
  #unlisten: (() => Promise<void>) | undefined;
  /** Database errors since the last success, while it fails; logged once per outage. */
  #failing = 0;
  // Bumped on every notification: a read that raced one may predate the change it announced.
  #epoch = 0;

  constructor(options: {
    db: Database;
    policy: BreakerPolicy;
    logger: Logger;
    registry: Registry;
    now?: () => number;
  }) {
    this.#db = options.db;
    this.#policy = options.policy;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    // A pin never outlives the failure window, so the TTL bounds the map without a sweep.
    this.#pins = growingLru(100_000, options.policy.windowMs);
    this.#open = new Gauge({
      name: 'ccproxy_breaker_open',
      help: 'Whether the Plan circuit breaker of an access key is open (1) or not (0), as this replica last saw it.',
      labelNames: ['key'],
      registers: [options.registry],
    });
  }

  async start(): Promise<void> {
    this.#unlisten = await this.#db.listen(breakerChannel, {
      onNotify: (keyId) => {
        this.#epoch += 1;
        this.#cache.delete(keyId);
      },
      onRestored: () => {
        this.#epoch += 1;
        this.#cache.clear();
      },
    });
  }

  async stop(): Promise<void> {
    await this.settled();
    await this.#unlisten?.();
  }

  async state(keyId: string, label: string): Promise<BreakerState> {
    const pending = this.#pending.get(keyId);
    if (pending !== undefined) await pending;
    const row = await this.#row(keyId);
    const state = stateOf(row, this.#policy, this.#now());
    this.#open.set({ key: label }, state === 'open' || state === 'half-open' ? 1 : 0);
    return state;
  }

  /** Keys whose breaker is open or half-open, as this replica last saw them. */
  openCount(): number {
    let open = 0;
    const now = this.#now();
    for (const row of this.#cache.values())
      if (row !== none && stateOf(row, this.#policy, now) !== 'closed' && stateOf(row, this.#policy, now) !== 'failing')
        open += 1;
    return open;
  }

  /** Whether the session is still inside the `retry-after` of the Plan answer it failed over on. */
  isPinned(keyId: string, session: string | undefined): boolean {
    if (session === undefined) return false;
    const until = this.#pins.get(`${keyId}/${session}`);
    return until !== undefined && until > this.#now();
  }

  /** True for exactly one request across replicas once the open period is over. */
  async claimTrial(keyId: string): Promise<boolean> {
    return this.#guard(() => claimTrial(this.#db, keyId, this.#policy), false);
  }

  /**
   * Counts a Plan failure. The write is not awaited by the failing-over request (it would add a
   * database round trip to its time to first byte); instead this replica's next `state()` for the
   * key waits for it, so the next request still sees the breaker this one tripped.
   */
  failure(keyId: string, label: string, reason?: string): void {
    const previous = this.#pending.get(keyId) ?? Promise.resolve();
    const write: Promise<void> = previous
      .then(() => this.#recordFailure(keyId, label, reason))
      .finally(() => {
        if (this.#pending.get(keyId) === write) this.#pending.delete(keyId);
      });
    this.#pending.set(keyId, write);
  }

  /** Resolves once every failure counted so far is stored (`stop()` waits for it). */
  async settled(): Promise<void> {
    await Promise.all(this.#pending.values());
  }

  async #recordFailure(keyId: string, label: string, reason: string | undefined): Promise<void> {
    const epoch = this.#epoch;
    const row = await this.#guard(() => recordPlanFailure(this.#db, keyId, this.#policy, reason), undefined);
    if (row === undefined) return;
    const wasOpen = stateOf(this.#cached(keyId), this.#policy, this.#now()) === 'open';
    // Another replica's write announced meanwhile may be newer than this answer: read it afresh instead.
    if (epoch === this.#epoch) this.#cache.set(keyId, row);
    else this.#cache.delete(keyId);
    if (row.openedAt !== null && !wasOpen)
      this.#logger.warn(
        { key: label, failures: row.consecutiveFailures },
        'circuit breaker opened: requests go to Bedrock',
      );
  }

  async success(keyId: string, label: string): Promise<void> {
    // Healthy keys have their "no row" cached: no query on the hot path.
    const row = await this.#row(keyId);
    if (row === undefined || (row.consecutiveFailures === 0 && row.openedAt === null && row.trialStartedAt === null))
      return;
    await this.#guard(() => recordPlanSuccess(this.#db, keyId), undefined);
    this.#cache.set(keyId, {
      ...row,
      consecutiveFailures: 0,
      streakStartedAt: null,
      openedAt: null,
      trialStartedAt: null,
    });
    if (row.openedAt !== null) this.#logger.info({ key: label }, 'circuit breaker closed: Plan upstream is back');
  }

  /**
   * Pins the session to Bedrock for the Plan answer's `retry-after` (at most the failure window:
   * past it, the breaker alone decides), at once; records the failover time in the background.
   */
  failedOver(keyId: string, session: string | undefined, retryAfterMs: number | undefined): void {
    if (session !== undefined && retryAfterMs !== undefined && retryAfterMs > 0) {
      const pinMs = Math.min(retryAfterMs, this.#policy.windowMs);
      this.#pins.set(`${keyId}/${session}`, this.#now() + pinMs, { ttl: pinMs });
    }
    // Date.now(), the clock usage records are stamped with (the admin compares the two).
    const decidedAt = Date.now();
    void this.#guard(() => recordFailover(this.#db, keyId, decidedAt), undefined);
  }

  #cached(keyId: string): BreakerRow | undefined {
    const row = this.#cache.get(keyId);
    return row === none ? undefined : row;
  }

  async #row(keyId: string): Promise<BreakerRow | undefined> {
    const cached = this.#cache.get(keyId);
    if (cached !== undefined) return cached === none ? undefined : cached;
    const failed = Symbol('failed');
    const epoch = this.#epoch;
    const row = await this.#guard(() => readBreaker(this.#db, keyId), failed);
    if (row !== failed) {
      // Not cached if a notification arrived meanwhile: the next request reads again.
      if (epoch === this.#epoch) this.#cache.set(keyId, row ?? none);
      return row;
    }
    // Stale-if-error: an open breaker stays open through a database outage instead of sending every request to a failing Plan.
    const last = this.#cache.peek(keyId, { allowStale: true }) ?? none;
    this.#cache.set(keyId, last, { ttl: fallbackTtlMs });
    return last === none ? undefined : last;
  }

  async #guard<T, F>(work: () => Promise<T>, fallback: F): Promise<T | F> {
    try {
      const result = await work();
      if (this.#failing > 0) {
        this.#logger.info({ failures: this.#failing }, 'circuit breaker state reachable again');
        this.#failing = 0;
      }
      return result;
    } catch (error) {
      if (this.#failing === 0)
        this.#logger.warn(
          { err: error },
          'circuit breaker state unavailable; using the last state seen (closed if none)',
        );
      this.#failing += 1;
      return fallback;
    }
  }
}
