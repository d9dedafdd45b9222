/**
 * A keyed work queue with client-go's semantics: a key waits at most once however often it is
 * added; one key is never worked on by two workers at once; a key added while in flight runs
 * again right after; failures come back after a per-key exponential backoff (with jitter) that a
 * success resets.
 */
export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called with the number of waiting keys whenever it changes (a metrics gauge). */
  onDepth?: (depth: number) => void;
  random?: () => number;
}

export class WorkQueue {
  readonly #waiting = new Set<string>();
  readonly #inFlight = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #idle: Array<() => void> = [];
  readonly #options: Required<Omit<WorkQueueOptions, 'onDepth'>> & Pick<WorkQueueOptions, 'onDepth'>;
  #shutDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#options = { baseDelayMs: 5, maxDelayMs: 300_000, random: Math.random, ...options };
  }

  get depth(): number {
    return this.#waiting.size;
  }

  add(key: string): void {
    if (this.#shutDown) return;
    if (this.#inFlight.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#waiting.has(key)) return;
    this.#waiting.add(key);
    this.#options.onDepth?.(this.#waiting.size);
    this.#idle.shift()?.();
  }

  /** Adds the key after `ms`; an earlier pending delay for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shutDown) return;
    const existing = this.#timers.get(key);
    if (existing !== undefined) return;
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** After a failure: back off exponentially per key (with ±20 % jitter so keys spread out). */
  addRateLimited(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = Math.min(this.#options.maxDelayMs, this.#options.baseDelayMs * 2 ** (failures - 1));
    // Jitter never past the maximum: a failed key is retried within one resync (the operator's cap).
    const jittered = Math.min(this.#options.maxDelayMs, Math.round(delay * (0.8 + 0.4 * this.#options.random())));
    this.addAfter(key, jittered);
    return jittered;
  }

  /** A success: the key's backoff starts over. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /**
   * Runs `work` on keys with `concurrency` workers until `shutDown()`. `work` decides about
   * requeueing itself (forget / addRateLimited / addAfter); a throw is treated as a failure.
   */
  async run(work: (key: string) => Promise<void>, concurrency = 2): Promise<void> {
    await Promise.all(Array.from({ length: concurrency }, () => this.#worker(work)));
  }

  /** Stops handing out keys; resolves when the workers have finished what they hold. */
  shutDown(): void {
    this.#shutDown = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const wake of this.#idle.splice(0)) wake();
  }

  async #worker(work: (key: string) => Promise<void>): Promise<void> {
    for (;;) {
      const key = await this.#next();
      if (key === undefined) return;
      try {
        await work(key);
      } catch {
        this.addRateLimited(key);
      } finally {
        this.#inFlight.delete(key);
        if (this.#dirty.delete(key)) this.add(key);
      }
    }
  }

  async #next(): Promise<string | undefined> {
    while (!this.#shutDown) {
      const key = this.#waiting.values().next();
      if (!key.done) {
        this.#waiting.delete(key.value);
        this.#inFlight.add(key.value);
        this.#options.onDepth?.(this.#waiting.size);
        return key.value;
      }
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
    return undefined;
  }
}
