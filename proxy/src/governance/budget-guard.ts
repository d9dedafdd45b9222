import {
  costMicroUsd,
  defaultSoftLimitPercent,
  insertUsage,
  microUsdPerUsd,
  periodBounds,
  periodBudget,
  ProxyError,
  readSpend,
  recordBudgetCrossing,
  type Budget,
  type BudgetPeriod,
  type CrossingKind,
  type Database,
  type Logger,
  type PeriodBudget,
  type PriceTable,
  type Spend,
  type SpendScope,
  type UsageRecord,
} from '@ccproxy/core';
import { AsyncLock } from './async-lock.ts';

/** One budget of one scope in one period, as this replica knows it. */
interface Entry {
  readonly id: string;
  readonly label: string;
  readonly namespace: string;
  readonly scope: SpendScope;
  readonly period: BudgetPeriod;
  readonly start: number;
  readonly end: number;
  cap: PeriodBudget;
  softPercent: number;
  /** What Postgres said (every replica's stored usage), undefined until first read. */
  base: Spend | undefined;
  readAt: number;
  /** Settled here, not yet known to be in Postgres. */
  unstored: Spend;
  /** Stored since `base` was read (so not in it). */
  storedSinceRead: Spend;
  refreshing: Promise<void> | undefined;
  /** Requests admitted here and not settled yet. */
  inflight: number;
  drained: Array<() => void>;
  /** Near the cap, one request at a time per replica. */
  readonly lock: AsyncLock;
  /** Crossings this replica has recorded in this period (bits of `crossingBit`): one insert each, not one per request. */
  recorded: number;
}

const crossingBit: Record<CrossingKind, number> = { SoftLimit: 1, Exhausted: 2 };

export interface BudgetCheck {
  readonly scope: SpendScope;
  /** The namespace of the key, user or team (where its crossings are announced). */
  readonly namespace: string;
  readonly label: string;
  readonly budget: Budget;
}

export interface BudgetTicket {
  readonly entries: Entry[];
  readonly release: (() => void) | undefined;
  /** The soft-limit warning for the answer's `x-ccproxy-budget-warning` header. */
  readonly warning: string | undefined;
}

export interface BudgetGuardOptions {
  db: Database;
  logger: Logger;
  prices: PriceTable;
  /** How old a cached spend may be before it is re-read in the background (ms). */
  refreshMs: number;
  now?: () => number;
  onSoftLimit?: (scope: SpendScope['kind'], period: BudgetPeriod) => void;
  onExhausted?: (scope: SpendScope['kind'], period: BudgetPeriod) => void;
}

const zero = (): Spend => ({ microUsd: 0, tokens: 0 });

/**
 * Budgets on the request path. Spend = what Postgres holds (hourly aggregates of every replica's
 * stored usage) + what this replica settled and has not stored yet; cached per scope and period,
 * re-read in the background once older than `refreshMs`. Below the soft limit a request is
 * admitted from the cache: no Postgres round trip. At or past it the budget turns strict on this
 * replica: one request at a time (after the ones in flight have ended), each admitted on a fresh
 * read, and its usage stored before the next is admitted — so past the cap at most one request per
 * replica is in flight, which bounds the overspend. A period ends at 00:00 UTC (day) or on the
 * 1st at 00:00 UTC (month): its entries are dropped, and the next request reads the new period.
 */
export class BudgetGuard {
  readonly #o: BudgetGuardOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** requestId → what it added to which entries, until the recorder says it is stored. */
  readonly #pending = new Map<string, { entries: Entry[]; spend: Spend; record: UsageRecord }>();

  constructor(options: BudgetGuardOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The ticket when every budget allows the request (sync in the common case), or throws PRX_BUDGET_EXHAUSTED. */
  admit(checks: readonly BudgetCheck[]): BudgetTicket | Promise<BudgetTicket> {
    const now = this.#now();
    const entries: Entry[] = [];
    let slow = false;
    for (const check of checks)
      for (const period of ['day', 'month'] as const) {
        const cap = periodBudget(check.budget, period);
        if (cap === undefined) continue;
        const entry = this.#entry(check, period, cap, now);
        entries.push(entry);
        if (entry.base === undefined || this.#strict(entry)) slow = true;
        else this.#refreshIfOld(entry, now);
      }
    if (!slow) {
      for (const entry of entries) this.#refuseIfSpent(entry, now);
      return this.#ticket(entries, undefined, now);
    }
    return this.#admitSlowly(entries);
  }

  async #admitSlowly(entries: Entry[]): Promise<BudgetTicket> {
    try {
      await Promise.all(entries.filter((e) => e.base === undefined).map((e) => this.#refresh(e)));
    } catch (error) {
      throw new ProxyError('PRX_BUDGET_UNAVAILABLE', undefined, { cause: error });
    }
    const strict = entries.filter((e) => this.#strict(e)).sort((a, b) => (a.id < b.id ? -1 : 1));
    const releases: Array<() => void> = [];
    const release = () => releases.forEach((r) => r());
    try {
      for (const entry of strict) {
        releases.push(await entry.lock.acquire());
        // What this replica admitted before the budget turned strict ends first.
        if (entry.inflight > 0) await new Promise<void>((resolve) => entry.drained.push(resolve));
        // What this replica settled before the budget turned strict goes to Postgres for the others to see.
        await this.#storePending([entry]);
        await this.#refresh(entry, true);
      }
      const now = this.#now();
      for (const entry of entries) this.#refuseIfSpent(entry, now);
      return this.#ticket(entries, strict.length === 0 ? undefined : release, now);
    } catch (error) {
      release();
      if (error instanceof ProxyError) throw error;
      throw new ProxyError('PRX_BUDGET_UNAVAILABLE', undefined, { cause: error });
    }
  }

  /**
   * After the request: its cost counts against every budget it was admitted under. A strict
   * ticket stores the record now (the recorder's later insert of it is a no-op) before the next
   * request is admitted.
   */
  async settle(ticket: BudgetTicket, requestId: string, record: UsageRecord | undefined): Promise<void> {
    const spend = record === undefined ? zero() : this.spendOf(record);
    for (const entry of ticket.entries) add(entry.unstored, spend);
    if (record !== undefined) this.#pending.set(requestId, { entries: ticket.entries, spend, record });
    // Near a cap every replica must see this request before it admits another: stored now.
    const storeNow =
      record !== undefined && (ticket.release !== undefined || ticket.entries.some((e) => this.#strict(e)));
    try {
      if (storeNow) await this.#storePending(ticket.entries);
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'usage of a request near its budget could not be stored at once');
    } finally {
      for (const entry of ticket.entries) {
        entry.inflight -= 1;
        if (entry.inflight === 0) entry.drained.splice(0).forEach((resolve) => resolve());
      }
      ticket.release?.();
    }
  }

  /** Stores every settled record of these budgets not yet stored (the recorder's later insert of them is a no-op). */
  async #storePending(entries: readonly Entry[]): Promise<void> {
    const records: UsageRecord[] = [];
    for (const pending of this.#pending.values())
      if (pending.entries.some((entry) => entries.includes(entry))) records.push(pending.record);
    if (records.length === 0) return;
    await insertUsage(this.#o.db, records, this.#o.prices);
    this.stored(records);
  }

  /** The usage recorder stored these records: they are in Postgres's aggregates from now on. */
  stored(records: readonly UsageRecord[]): void {
    for (const record of records) {
      const pending = this.#pending.get(record.requestId);
      if (pending === undefined) continue;
      this.#pending.delete(record.requestId);
      for (const entry of pending.entries) {
        subtract(entry.unstored, pending.spend);
        add(entry.storedSinceRead, pending.spend);
      }
    }
  }

  spendOf(record: UsageRecord): Spend {
    // A request that reached no upstream (a failure row of the request log) spent nothing.
    if (record.provider === null) return { microUsd: 0, tokens: 0 };
    const microUsd = costMicroUsd(this.#o.prices, {
      provider: record.provider,
      model: record.modelServed ?? record.modelRequested,
      occurredAt: record.occurredAt,
      inputTokens: record.inputTokens,
      outputTokens: record.outputTokens,
      cacheReadTokens: record.cacheReadTokens,
      cacheCreationTokens: record.cacheCreationTokens,
    });
    const tokens = record.inputTokens + record.outputTokens + record.cacheReadTokens + record.cacheCreationTokens;
    return { microUsd: microUsd ?? 0, tokens };
  }

  /** Spend of one budget as this replica sees it (for tests and the status). */
  spent(entryId: string): Spend | undefined {
    const entry = this.#entries.get(entryId);
    return entry === undefined ? undefined : estimate(entry);
  }

  #entry(check: BudgetCheck, period: BudgetPeriod, cap: PeriodBudget, now: number): Entry {
    const id = `${scopeId(check.scope)}:${period}`;
    let entry = this.#entries.get(id);
    if (entry === undefined || now >= entry.end || now < entry.start) {
      const { start, end } = periodBounds(period, now);
      entry = {
        id,
        label: check.label,
        namespace: check.namespace,
        scope: check.scope,
        period,
        start,
        end,
        cap,
        softPercent: defaultSoftLimitPercent,
        base: undefined,
        readAt: 0,
        unstored: zero(),
        storedSinceRead: zero(),
        refreshing: undefined,
        inflight: 0,
        drained: [],
        lock: entry?.lock ?? new AsyncLock(),
        recorded: 0,
      };
      this.#entries.set(id, entry);
    }
    entry.cap = cap;
    entry.softPercent = check.budget.softLimitPercent ?? defaultSoftLimitPercent;
    return entry;
  }

  /** At or past the soft limit: admitted one at a time, on a fresh read. */
  #strict(entry: Entry): boolean {
    return fraction(entry) * 100 >= entry.softPercent;
  }

  #refuseIfSpent(entry: Entry, now: number): void {
    if (fraction(entry) < 1) return;
    this.#o.onExhausted?.(entry.scope.kind, entry.period);
    const spent = estimate(entry);
    const what =
      entry.cap.usd !== undefined && spent.microUsd >= entry.cap.usd * microUsdPerUsd
        ? `$${usd(spent.microUsd)} spent of $${entry.cap.usd.toFixed(2)}`
        : `${spent.tokens} tokens used of ${entry.cap.tokens ?? 0}`;
    const resets = new Date(entry.end).toISOString();
    const seconds = Math.max(1, Math.ceil((entry.end - now) / 1000));
    const message = `The ${entry.period === 'day' ? 'daily' : 'monthly'} budget of ${entry.label} is spent (${what}). It resets at ${resets}.`;
    this.#recordCrossing(entry, 'Exhausted', message);
    throw new ProxyError('PRX_BUDGET_EXHAUSTED', message, {
      headers: {
        'x-should-retry': 'false',
        'x-ccproxy-budget-reset': resets,
        'x-ccproxy-budget-reset-seconds': String(seconds),
      },
    });
  }

  #ticket(entries: Entry[], release: (() => void) | undefined, now: number): BudgetTicket {
    let warning: string | undefined;
    for (const entry of entries) {
      entry.inflight += 1;
      const used = fraction(entry);
      // Past the soft limit only; the text is built only when it is used (the header, or the one crossing row).
      const unrecorded = (entry.recorded & crossingBit.SoftLimit) === 0;
      if (used * 100 < entry.softPercent || (warning !== undefined && !unrecorded)) continue;
      const text = `${Math.floor(used * 100)}% of the ${entry.period === 'day' ? 'daily' : 'monthly'} budget of ${entry.label} is used; it resets at ${new Date(entry.end).toISOString()}`;
      if (unrecorded)
        this.#recordCrossing(entry, 'SoftLimit', `${text} (soft limit ${entry.softPercent}%: ${spentText(entry)}).`);
      if (warning === undefined) {
        warning = text;
        this.#o.onSoftLimit?.(entry.scope.kind, entry.period);
      }
    }
    void now;
    return { entries, release, warning };
  }

  /**
   * The first crossing of a kind this replica sees in the period goes to Postgres (insert-once
   * across replicas) for the operator to announce as an Event; off the request path, never awaited.
   */
  #recordCrossing(entry: Entry, kind: CrossingKind, message: string): void {
    if ((entry.recorded & crossingBit[kind]) !== 0) return;
    entry.recorded |= crossingBit[kind];
    recordBudgetCrossing(this.#o.db, {
      scope: scopeId(entry.scope),
      namespace: entry.namespace,
      period: entry.period,
      periodStart: entry.start,
      kind,
      percent: Math.floor(fraction(entry) * 100),
      message,
      resetsAt: entry.end,
    }).catch((error: unknown) => {
      // Tried again on the next request past the line.
      entry.recorded &= ~crossingBit[kind];
      this.#o.logger.warn({ err: error, budget: entry.id, kind }, 'budget crossing could not be recorded');
    });
  }

  #refreshIfOld(entry: Entry, now: number): void {
    if (entry.refreshing === undefined && now - entry.readAt >= this.#o.refreshMs)
      this.#refresh(entry).catch((error: unknown) =>
        this.#o.logger.warn({ err: error, budget: entry.id }, 'budget spend could not be re-read; using the last read'),
      );
  }

  /** Re-reads the stored spend; usage stored while the read ran stays counted (over, never under). */
  async #refresh(entry: Entry, fresh = false): Promise<void> {
    // A strict admission needs a read that started after it took the lock, not one already running.
    if (fresh && entry.refreshing !== undefined) await entry.refreshing.catch(() => undefined);
    entry.refreshing ??= (async () => {
      const marker = { ...entry.storedSinceRead };
      try {
        entry.base = await readSpend(this.#o.db, entry.scope, entry.start, entry.end);
        entry.readAt = this.#now();
        subtract(entry.storedSinceRead, marker);
      } finally {
        entry.refreshing = undefined;
      }
    })();
    await entry.refreshing;
  }
}

function estimate(entry: Entry): Spend {
  const base = entry.base ?? zero();
  return {
    microUsd: base.microUsd + entry.unstored.microUsd + entry.storedSinceRead.microUsd,
    tokens: base.tokens + entry.unstored.tokens + entry.storedSinceRead.tokens,
  };
}

/** The larger of the USD and token fractions used (1 or more: spent). */
function fraction(entry: Entry): number {
  const spent = estimate(entry);
  const { usd: capUsd, tokens: capTokens } = entry.cap;
  const byUsd = capUsd === undefined ? 0 : capUsd === 0 ? 1 : spent.microUsd / (capUsd * microUsdPerUsd);
  const byTokens = capTokens === undefined ? 0 : capTokens === 0 ? 1 : spent.tokens / capTokens;
  return Math.max(byUsd, byTokens);
}

export function scopeId(scope: SpendScope): string {
  return scope.kind === 'team' ? `team:${scope.namespace}` : `${scope.kind}:${scope.id}`;
}

const usd = (microUsd: number) => (microUsd / microUsdPerUsd).toFixed(2);

/** "$20.10 spent of $25.00" and/or "n tokens used of m", for the caps the budget has. */
function spentText(entry: Entry): string {
  const spent = estimate(entry);
  const parts: string[] = [];
  if (entry.cap.usd !== undefined) parts.push(`$${usd(spent.microUsd)} spent of $${entry.cap.usd.toFixed(2)}`);
  if (entry.cap.tokens !== undefined) parts.push(`${spent.tokens} tokens used of ${entry.cap.tokens}`);
  return parts.join(', ');
}

function add(to: Spend, spend: Spend): void {
  to.microUsd += spend.microUsd;
  to.tokens += spend.tokens;
}

function subtract(from: Spend, spend: Spend): void {
  from.microUsd -= spend.microUsd;
  from.tokens -= spend.tokens;
}
