import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { insertUsage, type Database, type Logger, type UsageRecord } from '@ccproxy/core';

export interface UsageRecorderOptions {
  db: Database;
  logger: Logger;
  registry: Registry;
  /** Folder for the on-disk spool; records survive a crash there until Postgres has them. */
  spoolDir: string;
  flushIntervalMs?: number;
  batchSize?: number;
  /** Records held at most; past this, new records are dropped and counted. */
  maxQueued?: number;
}

interface Queued {
  record: UsageRecord;
  generation: number;
}

const spoolName = /^usage-spool\.(\d+)\.jsonl$/;

/**
 * Writes token usage off the request path: records are queued in memory and appended to a spool
 * file, then inserted in batches (idempotent by request id). A Postgres outage only grows the
 * queue; a crash leaves the spool, replayed on the next start (duplicates are ignored by the
 * insert). Spool files rotate per flush and are deleted once every record in them is stored.
 */
export class UsageRecorder {
  readonly #options: Required<UsageRecorderOptions>;
  #queue: Queued[] = [];
  #generation = 0;
  /** The spool file being appended to, and the lines of this event-loop turn not yet in it. */
  #fd: number | undefined;
  #lines: string[] = [];
  #spoolFailed = false;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #failures = 0;
  readonly #depth: Gauge;
  readonly #dropped: Counter;
  readonly #written: Counter;

  constructor(options: UsageRecorderOptions) {
    this.#options = { flushIntervalMs: 1000, batchSize: 500, maxQueued: 200_000, ...options };
    const registers = [options.registry];
    this.#depth = new Gauge({
      name: 'ccproxy_usage_spool_records',
      help: 'Usage records waiting to be stored in Postgres.',
      registers,
    });
    this.#dropped = new Counter({
      name: 'ccproxy_usage_dropped_total',
      help: 'Usage records dropped because the spool was full.',
      registers,
    });
    this.#written = new Counter({
      name: 'ccproxy_usage_written_total',
      help: 'Usage records stored in Postgres (duplicates from replays excluded).',
      registers,
    });
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Loads what a previous process left in the spool, then flushes periodically. */
  async start(): Promise<void> {
    await mkdir(this.#options.spoolDir, { recursive: true, mode: 0o700 });
    for (const file of (await readdir(this.#options.spoolDir)).sort()) {
      const generation = Number(spoolName.exec(file)?.[1] ?? Number.NaN);
      if (Number.isNaN(generation)) continue;
      this.#generation = Math.max(this.#generation, generation + 1);
      const lines = (await readFile(join(this.#options.spoolDir, file), 'utf8')).split('\n');
      // A crash can cut the last line short; complete lines (ended by "\n") are all that count.
      lines.pop();
      for (const line of lines)
        if (line.trim() !== '') this.#queue.push({ record: JSON.parse(line) as UsageRecord, generation });
    }
    if (this.#queue.length > 0)
      this.#options.logger.info({ records: this.#queue.length }, 'replaying usage records left in the spool');
    this.#open();
    this.#schedule();
  }

  record(record: UsageRecord): void {
    if (this.#queue.length >= this.#options.maxQueued) {
      this.#dropped.inc();
      return;
    }
    this.#queue.push({ record, generation: this.#generation });
    this.#spool(`${JSON.stringify(record)}\n`);
    this.#depth.set(this.#queue.length);
  }

  /**
   * Lines of one event-loop turn go to the file in one synchronous append at the turn's end. An
   * append of a few hundred bytes to the page cache costs a few µs; the asynchronous write it
   * replaces took a thread-pool round trip per request (futex wake, a worker thread on the same
   * core, an eventfd back), measured at up to a third of the proxy's CPU at 1,500 req/s on one
   * core (docs/performance.md). Synchronous is also the stronger promise: a line is in the file
   * before the next turn starts, not whenever a worker thread gets to it.
   */
  #spool(line: string): void {
    if (this.#fd === undefined) return;
    if (this.#lines.length === 0) setImmediate(() => this.#append());
    this.#lines.push(line);
  }

  #append(): void {
    const fd = this.#fd;
    const text = this.#lines.join('');
    this.#lines = [];
    if (fd === undefined || text === '') return;
    try {
      // writeSync may write less than asked (a full disk); a line half in the file would be lost on replay.
      const bytes = Buffer.from(text);
      for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written);
      this.#spoolFailed = false;
    } catch (error) {
      // The records are still queued for Postgres; only their crash copy is missing. Said once per outage.
      if (!this.#spoolFailed) this.#options.logger.error({ err: error }, 'usage spool file failed');
      this.#spoolFailed = true;
    }
  }

  /** Stores everything queued; one flush at a time. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushAll().finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  async stop(timeoutMs = 5000): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length > 0 && Date.now() < deadline) {
      await this.flush();
      if (this.#queue.length > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    this.#close();
    if (this.#queue.length === 0) await this.#deleteDone();
  }

  async #flushAll(): Promise<void> {
    if (this.#queue.length === 0) return this.#deleteDone();
    // New records go to a new file, so the files being drained stop growing.
    this.#close();
    this.#generation += 1;
    this.#open();
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, this.#options.batchSize);
      try {
        this.#written.inc(
          await insertUsage(
            this.#options.db,
            batch.map((item) => item.record),
          ),
        );
        this.#failures = 0;
      } catch (error) {
        this.#failures += 1;
        if (this.#failures === 1)
          this.#options.logger.warn(
            { err: error, pending: this.#queue.length },
            'usage records cannot be stored yet; keeping them in the spool',
          );
        return;
      }
      this.#queue = this.#queue.slice(batch.length);
      this.#depth.set(this.#queue.length);
    }
    await this.#deleteDone();
  }

  /** Deletes spool files none of whose records are still waiting. */
  async #deleteDone(): Promise<void> {
    const waiting = new Set(this.#queue.map((item) => item.generation));
    for (const file of await readdir(this.#options.spoolDir).catch(() => [] as string[])) {
      const generation = Number(spoolName.exec(file)?.[1] ?? Number.NaN);
      if (Number.isNaN(generation) || generation === this.#generation || waiting.has(generation)) continue;
      await unlink(join(this.#options.spoolDir, file)).catch(() => undefined);
    }
  }

  #open(): void {
    try {
      this.#fd = openSync(
        join(this.#options.spoolDir, `usage-spool.${String(this.#generation).padStart(12, '0')}.jsonl`),
        'a',
        0o600,
      );
    } catch (error) {
      this.#fd = undefined;
      this.#options.logger.error(
        { err: error },
        'usage spool file cannot be opened; records are kept in memory only until the next flush',
      );
    }
  }

  /** Appends what this turn still holds, then closes the file. */
  #close(): void {
    this.#append();
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #schedule(): void {
    // Back off while Postgres is unavailable (up to 30 s), flush every interval otherwise.
    const delay = Math.min(this.#options.flushIntervalMs * 2 ** Math.min(this.#failures, 5), 30_000);
    this.#timer = setTimeout(() => {
      void this.flush().finally(() => {
        if (this.#timer !== undefined) this.#schedule();
      });
    }, delay);
    this.#timer.unref();
  }
}
