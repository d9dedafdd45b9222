import { randomUUID } from 'node:crypto';
import {
  addWindowTokens,
  claimStreamSlot,
  leaseRequests,
  ProxyError,
  pruneRateWindows,
  releaseStreamSlots,
  renewStreamSlots,
  type Database,
  type Logger,
  type RateLimitSet,
} from '@ccproxy/core';

const minuteMs = 60_000;

/** One scope's limits for one request (`key:<id>`, `user:<id>`, with `:bedrock` for the Bedrock ones). */
export interface RateCheck {
  readonly scope: string;
  readonly label: string;
  readonly limits: RateLimitSet;
}

/** One scope's current minute, as this replica knows it. */
interface Window {
  start: number;
  /** Requests leased from Postgres for this minute and not used yet. */
  leased: number;
  /** Totals of the window across replicas, as of the last sync (tokens) or lease (requests). */
  requests: number;
  inputTokens: number;
  outputTokens: number;
  /** Tokens settled here since the last sync. */
  unsyncedInput: number;
  unsyncedOutput: number;
  leasing: Promise<number> | undefined;
  touchedAt: number;
  /** A token limit of this scope is near (≥ `nearPercent`): admissions wait for a fresh sync, settles push at once. */
  near: boolean;
}

export interface RateTicket {
  readonly scopes: readonly string[];
  readonly slots: readonly string[];
}

export interface RateLimiterOptions {
  db: Database;
  logger: Logger;
  /** How often token counts are pushed to (and read back from) Postgres. */
  syncMs: number;
  /** Lease of a concurrent-stream slot; renewed every third of it while the request runs. */
  slotLeaseMs?: number;
  /** Share of a token limit from which admissions are checked on fresh totals (percent; default 80). */
  nearPercent?: number;
  now?: () => number;
  onLimited?: (limit: string) => void;
}

/**
 * Rate limits shared by every replica through Postgres (`rate_windows`, `stream_slots`), in fixed
 * UTC minute windows. Requests per minute are leased in chunks (a tenth of the limit) with a
 * conditional upsert, so the replicas together never admit more than the limit, and a replica
 * asks Postgres once per chunk, not per request. Tokens are known only when a request ends: the
 * rule is "admit while the window's counted tokens are below the limit, count them when the
 * request ends". Below `nearPercent` of a limit the counts are pushed and read back (every
 * replica's totals) in one statement every `syncMs`, and admission is sync. From `nearPercent`
 * on, the scope is *near*: each admission waits for a sync started after it arrived, and each
 * settle pushes at once, so a replica decides on every replica's tokens as of one round trip ago,
 * and the overshoot is bounded by concurrency, not by the request rate: the tokens of the
 * requests in flight when the limit is reached (about one request per concurrent client). Concurrent streams take a slot in Postgres per request
 * (a round trip at its start, only for scopes with that limit), leased and renewed so a dead
 * replica's slots free themselves within one lease.
 */
export class RateLimiter {
  readonly #o: RateLimiterOptions;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();
  readonly #slots = new Set<string>();
  /** Slots whose release failed (Postgres away): released again every sync period until it works. */
  readonly #unreleased = new Set<string>();
  #retrying = false;
  readonly #leaseMs: number;
  readonly #near: number;
  #fresh: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;

  constructor(options: RateLimiterOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#leaseMs = options.slotLeaseMs ?? 60_000;
    this.#near = (options.nearPercent ?? 80) / 100;
  }

  start(): void {
    this.#timer = setInterval(() => {
      void this.sync();
      // Slots whose release failed (Postgres away) are released as soon as it is back, not when their lease ends.
      if (this.#unreleased.size > 0 && !this.#retrying) this.#release([...this.#unreleased], true);
    }, this.#o.syncMs);
    this.#timer.unref();
    this.#renewTimer = setInterval(() => {
      renewStreamSlots(this.#o.db, [...this.#slots], this.#leaseMs).catch((error: unknown) =>
        this.#o.logger.warn({ err: error }, 'stream slots could not be renewed'),
      );
    }, this.#leaseMs / 3);
    this.#renewTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#renewTimer);
    await this.sync();
    await releaseStreamSlots(this.#o.db, [...this.#slots, ...this.#unreleased]).catch(() => undefined);
    this.#slots.clear();
    this.#unreleased.clear();
  }

  /**
   * Admits the request under every check (sync while leases last, no token limit is near and no
   * stream limit is set), or throws PRX_RATE_LIMITED.
   */
  admit(checks: readonly RateCheck[]): RateTicket | Promise<RateTicket> {
    const now = this.#now();
    let slow = false;
    for (const check of checks) {
      const window = this.#window(check.scope, now);
      this.#refuseOnTokens(check, window, now);
      if (window.near || check.limits.concurrentStreams !== undefined) slow = true;
      if (check.limits.requestsPerMinute !== undefined && window.leased === 0) slow = true;
    }
    if (slow) return this.#admitSlowly(checks, now);
    for (const check of checks) if (check.limits.requestsPerMinute !== undefined) this.#use(check.scope, now);
    return { scopes: checks.map((c) => c.scope), slots: [] };
  }

  async #admitSlowly(checks: readonly RateCheck[], now: number): Promise<RateTicket> {
    const near = checks.filter((check) => this.#window(check.scope, now).near);
    if (near.length > 0) {
      // Every replica's tokens as of now (a sync that failed leaves this replica's own counts: fail open on them).
      await this.#freshSync();
      now = this.#now();
      for (const check of near) this.#refuseOnTokens(check, this.#window(check.scope, now), now);
    }
    const slots: string[] = [];
    const taken: Window[] = [];
    try {
      for (const check of checks) {
        const rpm = check.limits.requestsPerMinute;
        if (rpm === undefined) continue;
        const window = this.#window(check.scope, now);
        // A lease is shared by the requests waiting on it: each takes one request of it or leases again.
        while (window.leased === 0)
          if ((await this.#lease(check.scope, window, rpm)) === 0)
            throw limited(check, 'requests', rpm, window.requests, window.start, now);
        window.leased -= 1;
        taken.push(window);
      }
      for (const check of checks) {
        const streams = check.limits.concurrentStreams;
        if (streams === undefined) continue;
        const slot = `${check.scope}/${randomUUID()}`;
        if (!(await claimStreamSlot(this.#o.db, check.scope, slot, streams, this.#leaseMs)))
          throw limited(check, 'concurrentStreams', streams, streams, now, now);
        slots.push(slot);
        this.#slots.add(slot);
      }
    } catch (error) {
      // Requests taken from leases but not used go back (the lease stays this replica's).
      for (const window of taken) window.leased += 1;
      this.#free(slots);
      if (error instanceof ProxyError) {
        this.#o.onLimited?.(error.code);
        throw error;
      }
      throw new ProxyError('PRX_UNAVAILABLE', 'Rate limits cannot be checked right now; try again shortly.', {
        cause: error,
      });
    }
    return { scopes: checks.map((c) => c.scope), slots };
  }

  /** After the request: its tokens count in the current window; its stream slots are freed. */
  settle(ticket: RateTicket, inputTokens: number, outputTokens: number): void {
    const now = this.#now();
    let push = false;
    for (const scope of ticket.scopes) {
      const window = this.#window(scope, now);
      window.unsyncedInput += inputTokens;
      window.unsyncedOutput += outputTokens;
      push ||= window.near && inputTokens + outputTokens > 0;
    }
    // Near a token limit the other replicas learn of these tokens within a round trip, not a sync period.
    if (push) void this.#freshSync();
    this.#free(ticket.slots);
  }

  /** Pushes settled tokens and reads back every recent window's totals (one statement). */
  sync(): Promise<void> {
    this.#syncing ??= this.#sync().finally(() => (this.#syncing = undefined));
    return this.#syncing;
  }

  /** A sync that starts after this call (the one running may have read the totals before it). */
  #freshSync(): Promise<void> {
    if (this.#syncing === undefined) return this.sync();
    this.#fresh ??= this.#syncing.then(() => {
      this.#fresh = undefined;
      return this.sync();
    });
    return this.#fresh;
  }

  async #sync(): Promise<void> {
    const now = this.#now();
    const current = Math.floor(now / minuteMs) * minuteMs;
    const deltas = [];
    for (const [scope, window] of this.#windows) {
      if (window.start < current || now - window.touchedAt > minuteMs) {
        if (window.unsyncedInput === 0 && window.unsyncedOutput === 0) {
          this.#windows.delete(scope);
          continue;
        }
      }
      deltas.push({
        scope,
        windowStart: window.start,
        inputTokens: window.unsyncedInput,
        outputTokens: window.unsyncedOutput,
      });
    }
    if (deltas.length === 0) return;
    const sent = new Map(deltas.map((d) => [d.scope, d]));
    try {
      const totals = await addWindowTokens(this.#o.db, deltas);
      for (const total of totals) {
        const window = this.#windows.get(total.scope);
        const delta = sent.get(total.scope);
        if (window === undefined || delta === undefined) continue;
        window.unsyncedInput -= delta.inputTokens;
        window.unsyncedOutput -= delta.outputTokens;
        if (window.start !== total.windowStart) continue;
        window.inputTokens = total.inputTokens;
        window.outputTokens = total.outputTokens;
        window.requests = Math.max(window.requests, total.requests);
      }
      if (now % (10 * minuteMs) < this.#o.syncMs) await pruneRateWindows(this.#o.db, current - 10 * minuteMs);
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'rate-limit counters could not be synced; retrying');
    }
  }

  #window(scope: string, now: number): Window {
    const start = Math.floor(now / minuteMs) * minuteMs;
    let window = this.#windows.get(scope);
    if (window === undefined || window.start !== start) {
      // Tokens of the previous minute not yet pushed are carried into this one (over, never under).
      window = {
        start,
        leased: 0,
        requests: 0,
        inputTokens: 0,
        outputTokens: 0,
        unsyncedInput: window?.unsyncedInput ?? 0,
        unsyncedOutput: window?.unsyncedOutput ?? 0,
        leasing: undefined,
        touchedAt: now,
        near: false,
      };
      this.#windows.set(scope, window);
    }
    window.touchedAt = now;
    return window;
  }

  #use(scope: string, now: number): void {
    const window = this.#window(scope, now);
    window.leased -= 1;
  }

  /** Leases a chunk (a tenth of the limit, at least one); concurrent callers share one lease. Resolves to what was granted. */
  #lease(scope: string, window: Window, limit: number): Promise<number> {
    window.leasing ??= (async () => {
      try {
        const chunk = Math.max(1, Math.floor(limit / 10));
        let granted = await leaseRequests(this.#o.db, scope, window.start, chunk, limit);
        if (granted === 0 && chunk > 1) granted = await leaseRequests(this.#o.db, scope, window.start, 1, limit);
        window.leased += granted;
        window.requests = granted === 0 ? limit : window.requests + granted;
        return granted;
      } finally {
        window.leasing = undefined;
      }
    })();
    return window.leasing;
  }

  /** Refuses once the window's counted tokens reach a limit; marks the window near from `nearPercent` of it. */
  #refuseOnTokens(check: RateCheck, window: Window, now: number): void {
    const { inputTokensPerMinute: itpm, outputTokensPerMinute: otpm } = check.limits;
    if (itpm === undefined && otpm === undefined) return;
    const input = window.inputTokens + window.unsyncedInput;
    const output = window.outputTokens + window.unsyncedOutput;
    if (itpm !== undefined && input >= itpm)
      throw this.#counted(limited(check, 'input-tokens', itpm, input, window.start, now));
    if (otpm !== undefined && output >= otpm)
      throw this.#counted(limited(check, 'output-tokens', otpm, output, window.start, now));
    window.near =
      (itpm !== undefined && input >= itpm * this.#near) || (otpm !== undefined && output >= otpm * this.#near);
  }

  #counted(error: ProxyError): ProxyError {
    this.#o.onLimited?.(error.code);
    return error;
  }

  #free(slots: readonly string[]): void {
    if (slots.length === 0) return;
    for (const slot of slots) this.#slots.delete(slot);
    this.#release(slots);
  }

  /** Releases slots now; a release that fails is retried every sync period (their lease frees them at the latest). */
  /**
   * `retry`: the periodic release of the slots a failed release left. Only one of those runs at a
   * time, whatever else is being released: gating it on any release in flight could starve it
   * under steady stream traffic, holding those slots until their lease ran out.
   */
  #release(slots: readonly string[], retry = false): void {
    if (retry) this.#retrying = true;
    releaseStreamSlots(this.#o.db, slots)
      .then(
        () => slots.forEach((slot) => this.#unreleased.delete(slot)),
        (error: unknown) => {
          const first = this.#unreleased.size === 0;
          slots.forEach((slot) => this.#unreleased.add(slot));
          if (first)
            this.#o.logger.warn({ err: error }, 'stream slots could not be released; retrying until Postgres is back');
        },
      )
      .finally(() => {
        if (retry) this.#retrying = false;
      });
  }
}

const units = {
  requests: 'requests per minute',
  'input-tokens': 'input tokens per minute',
  'output-tokens': 'output tokens per minute',
  concurrentStreams: 'concurrent streams',
} as const;

/** The 429: which limit, retry-after, and the anthropic-ratelimit-* headers of that limit. */
function limited(
  check: RateCheck,
  what: keyof typeof units,
  limit: number,
  used: number,
  windowStart: number,
  now: number,
): ProxyError {
  const streams = what === 'concurrentStreams';
  const resetAt = streams ? now + 1000 : windowStart + minuteMs;
  const seconds = Math.max(1, Math.ceil((resetAt - now) / 1000));
  const bedrock = check.scope.endsWith(':bedrock') ? ' for requests served by Bedrock' : '';
  const headers: Record<string, string> = { 'retry-after': String(seconds) };
  if (!streams) {
    headers[`anthropic-ratelimit-${what}-limit`] = String(limit);
    headers[`anthropic-ratelimit-${what}-remaining`] = String(Math.max(0, limit - used));
    headers[`anthropic-ratelimit-${what}-reset`] = new Date(resetAt).toISOString();
  }
  return new ProxyError(
    'PRX_RATE_LIMITED',
    `Rate limit of ${check.label}${bedrock} reached: ${limit} ${units[what]}. Retry after ${seconds} s.`,
    { headers },
  );
}
