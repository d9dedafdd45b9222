import {
  budgetCrossingChannel,
  claimBudgetCrossings,
  pruneBudgetCrossings,
  unclaimBudgetCrossing,
  type Database,
  type Logger,
  type PendingCrossing,
} from '@ccproxy/core';

export interface BudgetEventsOptions {
  db: Database;
  logger: Logger;
  /** Only this namespace's crossings (CCPROXY_WATCH_NAMESPACE); undefined = all. */
  namespace: string | undefined;
  /**
   * Records the Event on the resource and wakes its reconcile (status.budget). False when the
   * resource is not known here: the crossing is dropped (it has no object to be announced on).
   */
  announce(crossing: PendingCrossing & { resource: NonNullable<PendingCrossing['resource']> }): Promise<boolean>;
  /** A missed notification is caught up this often (ms). */
  pollMs?: number;
  /** Crossings of periods over for a week are deleted at start and this often (ms; default an hour). */
  pruneEveryMs?: number;
}

/**
 * Budget crossings → Kubernetes Events. The proxy has no Kubernetes client: its replicas record
 * each crossing once in `budget_crossings` (insert-once per budget, period and kind); the
 * operator claims unreported rows (on their NOTIFY, and every `pollMs` for one it missed) and
 * announces each as one Warning Event on the ProxyUser, AccessKey or TeamBudget whose budget it
 * is. A claim marks the row reported in the same statement, so each crossing is announced once,
 * whichever operator replica holds it; one whose Event could not be recorded is given back.
 */
export class BudgetEvents {
  readonly #o: BudgetEventsOptions;
  #unlisten: (() => Promise<void>) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #draining: Promise<void> | undefined;
  #again = false;

  constructor(options: BudgetEventsOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    this.#unlisten = await this.#o.db.listen(budgetCrossingChannel, {
      onNotify: () => this.drain(),
      onRestored: () => this.drain(),
    });
    this.#timer = setInterval(() => this.drain(), this.#o.pollMs ?? 30_000);
    this.#timer.unref();
    this.#pruneTimer = setInterval(() => void this.#prune(), this.#o.pruneEveryMs ?? 3_600_000);
    this.#pruneTimer.unref();
    // Before the first drain: a crossing of a period long over is deleted, not announced late.
    await this.#prune();
    this.drain();
  }

  async #prune(): Promise<void> {
    try {
      const deleted = await pruneBudgetCrossings(this.#o.db);
      if (deleted > 0) this.#o.logger.info({ deleted }, 'budget crossings of periods over for a week deleted');
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'old budget crossings could not be deleted; will retry');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#pruneTimer);
    await this.#unlisten?.().catch(() => undefined);
    await this.#draining;
  }

  /** One drain at a time; a notification during one runs another after it. */
  drain(): void {
    if (this.#draining !== undefined) {
      this.#again = true;
      return;
    }
    this.#draining = this.#drainOnce()
      .catch((error: unknown) => this.#o.logger.warn({ err: error }, 'budget crossings could not be read'))
      .finally(() => {
        this.#draining = undefined;
        if (this.#again) {
          this.#again = false;
          this.drain();
        }
      });
  }

  async #drainOnce(): Promise<void> {
    for (;;) {
      const crossings = await claimBudgetCrossings(this.#o.db, this.#o.namespace);
      // A crossing that cannot be announced is given back for the next drain; the rest of the
      // claimed batch is still announced (returning early would leave them claimed and unsaid).
      let failed = false;
      for (const crossing of crossings) {
        const { resource } = crossing;
        if (resource === undefined) continue;
        try {
          await this.#o.announce({ ...crossing, resource });
        } catch (error) {
          failed = true;
          this.#o.logger.warn({ err: error, scope: crossing.scope }, 'budget event not recorded; will retry');
          await unclaimBudgetCrossing(this.#o.db, crossing).catch((unclaimError: unknown) =>
            this.#o.logger.warn(
              { err: unclaimError, scope: crossing.scope },
              'budget crossing could not be given back',
            ),
          );
        }
      }
      // After a failure the next drain (a NOTIFY or the 30 s timer) retries: not at once, in a loop.
      if (failed || crossings.length < 100) return;
    }
  }
}

/** The Event's reason for a crossing kind. */
export const budgetEventReason = (kind: PendingCrossing['kind']): string =>
  kind === 'SoftLimit' ? 'BudgetSoftLimit' : 'BudgetExhausted';
