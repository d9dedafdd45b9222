import { Counter, type Registry } from 'prom-client';
import {
  keyChangesChannel,
  readTeamBudgets,
  type Budget,
  type Database,
  type KeyRecord,
  type Logger,
  type PriceTable,
  type RateLimitSet,
  type UsageRecord,
} from '@ccproxy/core';
import { BudgetGuard, type BudgetCheck, type BudgetTicket } from './budget-guard.ts';
import { RateLimiter, type RateCheck, type RateTicket } from './rate-limiter.ts';

export interface GovernorOptions {
  db: Database;
  logger: Logger;
  registry: Registry;
  prices: PriceTable;
  budgetRefreshMs: number;
  rateSyncMs: number;
  /** Lease of a concurrent-stream slot (CCPROXY_STREAM_SLOT_LEASE_MS). */
  slotLeaseMs?: number;
  now?: () => number;
}

/** What one request was admitted under; settled once it ends (whatever its outcome). */
export interface GovernanceTicket {
  budget: BudgetTicket | undefined;
  rate: RateTicket | undefined;
  /** Taken only when the request goes to Bedrock. */
  bedrock: RateTicket | undefined;
  readonly record: KeyRecord;
  settled: boolean;
}

/**
 * Budgets (key, user, team) and rate limits (key, user; and their Bedrock-only limits) for the
 * `/ak/` pipeline. A key whose user, key and namespace declare none costs one property check per
 * request. Limits come with the key record (users.limits, access_keys.limits), team budgets from
 * `team_budgets`, re-read on the keys' NOTIFY like the key cache.
 */
export class Governor {
  readonly budgets: BudgetGuard;
  readonly rates: RateLimiter;
  readonly #o: GovernorOptions;
  #teams = new Map<string, Budget>();
  #unlisten: (() => Promise<void>) | undefined;

  constructor(options: GovernorOptions) {
    this.#o = options;
    const registers = [options.registry];
    const soft = new Counter({
      name: 'ccproxy_budget_soft_limit_total',
      help: 'Requests admitted past the soft limit of a budget, by scope (key, user, team) and period (day, month).',
      labelNames: ['scope', 'period'] as const,
      registers,
    });
    const exhausted = new Counter({
      name: 'ccproxy_budget_exhausted_total',
      help: 'Requests refused because a budget was spent, by scope and period.',
      labelNames: ['scope', 'period'] as const,
      registers,
    });
    const limited = new Counter({
      name: 'ccproxy_rate_limited_total',
      help: 'Requests refused by a rate limit of their key or user (429).',
      registers,
    });
    this.budgets = new BudgetGuard({
      db: options.db,
      logger: options.logger,
      prices: options.prices,
      refreshMs: options.budgetRefreshMs,
      ...(options.now === undefined ? {} : { now: options.now }),
      onSoftLimit: (scope, period) => soft.inc({ scope, period }),
      onExhausted: (scope, period) => exhausted.inc({ scope, period }),
    });
    this.rates = new RateLimiter({
      db: options.db,
      logger: options.logger,
      syncMs: options.rateSyncMs,
      ...(options.slotLeaseMs === undefined ? {} : { slotLeaseMs: options.slotLeaseMs }),
      ...(options.now === undefined ? {} : { now: options.now }),
      onLimited: () => limited.inc(),
    });
  }

  async start(): Promise<void> {
    const reload = () =>
      readTeamBudgets(this.#o.db).then(
        (teams) => void (this.#teams = teams),
        (error: unknown) => this.#o.logger.warn({ err: error }, 'team budgets could not be read; keeping the last'),
      );
    await reload();
    this.#unlisten = await this.#o.db.listen(keyChangesChannel, { onNotify: reload, onRestored: reload });
    this.rates.start();
  }

  async stop(): Promise<void> {
    await this.#unlisten?.();
    await this.rates.stop();
  }

  /**
   * Admits a request (sync when every budget is cached below its soft limit and every rate
   * lease lasts), or throws PRX_BUDGET_EXHAUSTED / PRX_RATE_LIMITED. Undefined: nothing applies.
   */
  admit(record: KeyRecord, upstreamPath: string): GovernanceTicket | undefined | Promise<GovernanceTicket> {
    const limits = record.limits;
    const team = this.#teams.get(record.namespace);
    // The common case with no limits anywhere: nothing is allocated.
    if (team === undefined && (limits === undefined || (isEmpty(limits.key) && isEmpty(limits.user)))) return undefined;
    if (upstreamPath.startsWith('/v1/messages/count_tokens')) return undefined;
    const budgetChecks = this.#budgetChecks(record, team);
    const rateChecks = rateChecksOf(record, false);
    const ticket: GovernanceTicket = { budget: undefined, rate: undefined, bedrock: undefined, record, settled: false };
    const budget = budgetChecks.length === 0 ? undefined : this.budgets.admit(budgetChecks);
    if (budget instanceof Promise) return budget.then((b) => this.#withRates(ticket, b, rateChecks));
    return this.#withRates(ticket, budget, rateChecks);
  }

  #withRates(
    ticket: GovernanceTicket,
    budget: BudgetTicket | undefined,
    checks: RateCheck[],
  ): GovernanceTicket | Promise<GovernanceTicket> {
    ticket.budget = budget;
    if (checks.length === 0) return ticket;
    let rate: RateTicket | Promise<RateTicket>;
    try {
      rate = this.rates.admit(checks);
    } catch (error) {
      this.settle(ticket, '', undefined, false);
      throw error;
    }
    if (!(rate instanceof Promise)) {
      ticket.rate = rate;
      return ticket;
    }
    return rate.then(
      (r) => {
        ticket.rate = r;
        return ticket;
      },
      (error: unknown) => {
        this.settle(ticket, '', undefined, false);
        throw error;
      },
    );
  }

  /** Before a request goes to Bedrock (failover or BedrockOnly): the Bedrock-only limits. */
  beforeBedrock(ticket: GovernanceTicket): void | Promise<void> {
    const checks = rateChecksOf(ticket.record, true);
    if (checks.length === 0) return;
    const rate = this.rates.admit(checks);
    if (!(rate instanceof Promise)) {
      ticket.bedrock = rate;
      return;
    }
    return rate.then((r) => void (ticket.bedrock = r));
  }

  /**
   * The request ended: its tokens and cost count (`stored`: its usage record goes to Postgres;
   * unmetered Plan usage never reaches the aggregates, so it is not counted here either).
   */
  settle(ticket: GovernanceTicket, requestId: string, usage: UsageRecord | undefined, stored: boolean): Promise<void> {
    if (ticket.settled) return Promise.resolve();
    ticket.settled = true;
    const input = usage === undefined ? 0 : usage.inputTokens + usage.cacheReadTokens + usage.cacheCreationTokens;
    const output = usage?.outputTokens ?? 0;
    if (ticket.rate !== undefined) this.rates.settle(ticket.rate, input, output);
    if (ticket.bedrock !== undefined)
      this.rates.settle(
        ticket.bedrock,
        usage?.provider === 'bedrock' ? input : 0,
        usage?.provider === 'bedrock' ? output : 0,
      );
    if (ticket.budget === undefined) return Promise.resolve();
    return this.budgets.settle(ticket.budget, requestId, stored ? usage : undefined);
  }

  #budgetChecks(record: KeyRecord, team: Budget | undefined): BudgetCheck[] {
    const checks: BudgetCheck[] = [];
    const key = record.limits?.key.budget;
    const user = record.limits?.user.budget;
    if (key !== undefined)
      checks.push({
        scope: { kind: 'key', id: record.accessKeyId },
        namespace: record.namespace,
        label: `access key ${record.namespace}/${record.name}`,
        budget: key,
      });
    if (user !== undefined)
      checks.push({
        scope: { kind: 'user', id: record.userId },
        namespace: record.namespace,
        label: `user ${record.namespace}/${record.userName}`,
        budget: user,
      });
    if (team !== undefined)
      checks.push({
        scope: { kind: 'team', namespace: record.namespace },
        namespace: record.namespace,
        label: `team ${record.namespace}`,
        budget: team,
      });
    return checks;
  }
}

function isEmpty(limits: { budget?: unknown; rateLimits?: unknown }): boolean {
  return limits.budget === undefined && limits.rateLimits === undefined;
}

function rateChecksOf(record: KeyRecord, bedrock: boolean): RateCheck[] {
  const checks: RateCheck[] = [];
  const add = (kind: 'key' | 'user', id: string, label: string, set: RateLimitSet | undefined) => {
    if (set !== undefined && hasAny(set))
      checks.push({ scope: `${kind}:${id}${bedrock ? ':bedrock' : ''}`, label, limits: set });
  };
  const key = record.limits?.key.rateLimits;
  const user = record.limits?.user.rateLimits;
  const keyLabel = `access key ${record.namespace}/${record.name}`;
  const userLabel = `user ${record.namespace}/${record.userName}`;
  add('key', record.accessKeyId, keyLabel, bedrock ? key?.bedrock : key);
  add('user', record.userId, userLabel, bedrock ? user?.bedrock : user);
  return checks;
}

function hasAny(set: RateLimitSet): boolean {
  return (
    set.requestsPerMinute !== undefined ||
    set.inputTokensPerMinute !== undefined ||
    set.outputTokensPerMinute !== undefined ||
    set.concurrentStreams !== undefined
  );
}
