import { mkdirSync, statSync } from 'node:fs';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  buildPriceTable,
  insertUsage,
  type Database,
  type Logger,
  type PriceTable,
  type UsageRecord,
} from '@ccproxy/core';
import { UsageSpill } from './usage-spill.ts';
import { generationOf, listSpool, quarantineFile, readSpoolFile, SpoolFile, spoolFileName } from './usage-spool.ts';

export interface UsageRecorderOptions {
  db: Database;
  logger: Logger;
  registry: Registry;
  /** Folder for the on-disk spool; records survive a crash there until Postgres has them. */
  spoolDir: string;
  flushIntervalMs?: number;
  batchSize?: number;
  /** Records held in memory at most; past this, new ones wait on disk only until there is room. */
  maxQueued?: number;
  /** Prices each stored record (CCPROXY_PRICE_TABLE_FILE over the built-in table). */
  prices?: PriceTable;
  /** Told of every batch once Postgres has it (the budget guard stops counting it as unstored). */
  onStored?: (records: readonly UsageRecord[]) => void;
}

interface Queued {
  record: UsageRecord;
  /**
   * Where the record's crash copy is: the generation of the spool file holding it; `turn` until
   * this event-loop turn's append; `memory` when the spool refused it; `stored` once in Postgres.
   */
  where: number | 'turn' | 'memory' | 'stored';
}

/** Why a usage record was not kept: the label values of `ccproxy_usage_records_dropped_total`. */
export type DropReason = 'queue_full' | 'spool_write_failed' | 'spool_corrupt' | 'spool_lost';
const dropReasons: readonly DropReason[] = ['queue_full', 'spool_write_failed', 'spool_corrupt', 'spool_lost'];

/**
 * Writes token usage off the request path: records are queued in memory and appended to a spool
 * file, then inserted in batches (idempotent by request id). A Postgres outage only grows the
 * queue; a crash leaves the spool, replayed on the next start (duplicates are ignored by the
 * insert). Spool files rotate per flush and are deleted once every record in them is stored.
 *
 * The memory queue is what reaches Postgres; the spool is its crash copy. When the spool cannot
 * be written (full disk, I/O error, folder deleted or read-only) requests are still served and
 * their records stay queued in memory (`ccproxy_usage_unspooled_records`); every flush tries a
 * fresh spool file and rewrites them into it once the disk takes writes again. A record is
 * dropped — counted in `ccproxy_usage_records_dropped_total{reason}` and logged, never silently —
 * only when the queue is full and the disk refuses it too, when it was neither spooled nor stored
 * by the time the process stops, when a spool line found at start is not a whole record (it is
 * quarantined), or when a file holding records on disk only was deleted before they were stored.
 *
 * Past `maxQueued` records in memory, new ones are kept on disk only (`usage-spill.ts`) and read
 * back a file at a time as the queue drains: memory stays bounded through an outage of any
 * length, and a record is dropped only when the disk cannot take it either.
 */
export class UsageRecorder {
  readonly #options: Required<Omit<UsageRecorderOptions, 'onStored'>> & Pick<UsageRecorderOptions, 'onStored'>;
  #queue: Queued[] = [];
  /** The next spool file's generation. */
  #generation = 0;
  #file: SpoolFile | undefined;
  /** Records of this event-loop turn not yet appended. */
  #turn: Queued[] = [];
  #unspooled = 0;
  #spoolDown = false;
  /** Spool files left by earlier processes that must not be deleted (unreadable, or bad lines not set aside). */
  #keep = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #failures = 0;
  #queueFullSince = 0;
  #queueFullLoggedAt = 0;
  readonly #spill: UsageSpill;
  readonly #dropped: Counter<'reason'>;
  readonly #written: Counter;

  constructor(options: UsageRecorderOptions) {
    this.#options = {
      flushIntervalMs: 1000,
      batchSize: 500,
      maxQueued: 200_000,
      prices: buildPriceTable(),
      ...options,
    };
    this.#spill = new UsageSpill({
      dir: options.spoolDir,
      logger: options.logger,
      perFile: Math.max(1, Math.min(10_000, Math.floor(this.#options.maxQueued / 4))),
      nextGeneration: () => this.#generation++,
      onRefused: (records) => this.#drop('queue_full', records),
    });
    const registers = [options.registry];
    // Gauges read at scrape time: nothing to update on the request path.
    const waiting = () => this.pending;
    new Gauge({
      name: 'ccproxy_usage_spool_records',
      help: 'Usage records waiting to be stored in Postgres.',
      registers,
      collect() {
        this.set(waiting());
      },
    });
    const onDisk = () => this.#spill.records;
    new Gauge({
      name: 'ccproxy_usage_disk_only_records',
      help: 'Usage records waiting for Postgres on disk only, past the memory bound (read back as the queue drains).',
      registers,
      collect() {
        this.set(onDisk());
      },
    });
    const unspooled = () => this.#unspooled;
    new Gauge({
      name: 'ccproxy_usage_unspooled_records',
      help: 'Usage records waiting for Postgres in memory only, because the spool could not be written.',
      registers,
      collect() {
        this.set(unspooled());
      },
    });
    this.#dropped = new Counter({
      name: 'ccproxy_usage_records_dropped_total',
      help: 'Usage records that will never reach Postgres, by reason (queue_full, spool_write_failed, spool_corrupt).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of dropReasons) this.#dropped.inc({ reason }, 0);
    this.#written = new Counter({
      name: 'ccproxy_usage_written_total',
      help: 'Usage records stored in Postgres (duplicates from replays excluded).',
      registers,
    });
  }

  /** Records waiting for Postgres, in memory and on disk only. */
  get pending(): number {
    return this.#queue.length + this.#spill.records;
  }

  /** Loads what a previous process left in the spool (setting bad lines aside), then flushes periodically. */
  async start(): Promise<void> {
    const dir = this.#options.spoolDir;
    await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error: unknown) =>
      this.#options.logger.error({ err: error, dir }, 'usage spool folder cannot be created'),
    );
    await this.#replay(dir);
    this.#openNext();
    this.#schedule();
  }

  /**
   * What earlier processes left, oldest first: into memory up to the bound (a file at a time),
   * the rest left on disk to be read back as the queue drains.
   */
  async #replay(dir: string): Promise<void> {
    const listing = await listSpool(dir, this.#options.logger);
    if (listing === undefined) return;
    this.#generation = listing.nextGeneration;
    const quarantine = quarantineFile(dir);
    for (const file of listing.files) {
      const contents = await readSpoolFile(dir, file, this.#options.logger, quarantine);
      if (contents === undefined || contents.keep) this.#keep.add(file);
      if (contents === undefined) continue;
      this.#dropped.inc({ reason: 'spool_corrupt' }, contents.corrupt);
      const generation = generationOf(file) as number;
      if (this.#queue.length < this.#options.maxQueued)
        for (const record of contents.records) this.#queue.push({ record, where: generation });
      else this.#spill.defer(generation, contents.records.length, contents.corrupt > 0);
    }
    if (this.pending > 0)
      this.#options.logger.info(
        { records: this.pending, onDiskOnly: this.#spill.records },
        'replaying usage records left in the spool',
      );
  }

  record(record: UsageRecord): void {
    if (this.#queue.length >= this.#options.maxQueued) {
      // Past the memory bound: on disk only, when there is a disk to take it.
      if (this.#file === undefined) this.#drop('queue_full', 1);
      else if (this.#spill.add(record)) setImmediate(() => this.#spill.append());
      return;
    }
    // Without a spool file the record waits in memory; the next flush tries a new file.
    const item: Queued = { record, where: this.#file === undefined ? 'memory' : 'turn' };
    this.#queue.push(item);
    if (item.where === 'memory') this.#unspooled += 1;
    else {
      if (this.#turn.length === 0) setImmediate(() => this.#append());
      this.#turn.push(item);
    }
  }

  /**
   * Records of one event-loop turn go to the file in one synchronous append at the turn's end. An
   * append of a few hundred bytes to the page cache costs a few µs; the asynchronous write it
   * replaces took a thread-pool round trip per request (futex wake, a worker thread on the same
   * core, an eventfd back), measured at up to a third of the proxy's CPU at 1,500 req/s on one
   * core (docs/performance.md). Synchronous is also the stronger promise: a line is in the file
   * before the next turn starts, not whenever a worker thread gets to it.
   */
  #append(): void {
    const items = this.#turn.filter((item) => item.where === 'turn');
    this.#turn = [];
    if (items.length === 0 || (this.#file !== undefined && this.#write(this.#file, items))) return;
    for (const item of items) item.where = 'memory';
    this.#unspooled += items.length;
  }

  /** Appends `items` to `file`, marking them as held there; false (file abandoned) when the disk refused. */
  #write(file: SpoolFile, items: Queued[]): boolean {
    try {
      file.appendRecords(items.map((item) => item.record));
    } catch (error) {
      this.#spoolBroke(error);
      return false;
    }
    for (const item of items) item.where = file.generation;
    // Only a write proves the disk takes data again (opening an empty file does not).
    if (this.#spoolDown) {
      this.#spoolDown = false;
      this.#options.logger.info({ records: items.length, file: file.name }, 'usage spool is writable again');
    }
    return true;
  }

  #spoolBroke(error: unknown): void {
    this.#file?.close();
    this.#file = undefined;
    // Said once per outage; the flush loop retries quietly and says when the spool is back.
    if (this.#spoolDown) return;
    this.#spoolDown = true;
    this.#options.logger.error(
      { err: error, dir: this.#options.spoolDir },
      'usage spool cannot be written; records are kept in memory until Postgres has them',
    );
  }

  /**
   * Opens the next spool file and rewrites into it every queued record held in memory only. Runs at
   * start, on every rotation, and on each flush while the spool is down (folder deleted, disk full).
   */
  #openNext(): void {
    let file: SpoolFile | undefined;
    try {
      mkdirSync(this.#options.spoolDir, { recursive: true, mode: 0o700 });
      file = SpoolFile.open(this.#options.spoolDir, this.#generation);
      this.#generation += 1;
    } catch (error) {
      this.#spoolBroke(error);
      return;
    }
    this.#file = file;
    this.#respool();
  }

  /** Writes the records held in memory only into the current spool file (or a new one), if the disk takes them. */
  #respool(): void {
    if (this.#file === undefined) return this.#openNext();
    const file = this.#file;
    const rewrite = this.#unspooled === 0 ? [] : this.#queue.filter((item) => item.where === 'memory');
    if (rewrite.length === 0) return;
    if (this.#write(file, rewrite)) this.#unspooled -= rewrite.length;
    else file.discardIfEmpty();
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
    while (this.pending > 0 && Date.now() < deadline) {
      await this.flush();
      if (this.pending > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    this.#append();
    this.#spill.close();
    // A last chance for records held in memory only: the disk may take them now.
    this.#respool();
    this.#file?.close();
    this.#file = undefined;
    if (this.#unspooled > 0) this.#drop('spool_write_failed', this.#unspooled);
    if (this.#queue.length === 0) await this.#deleteDone();
  }

  /** Closes the current file (after this turn's append) and opens the next one. */
  #rotate(): void {
    this.#append();
    this.#file?.close();
    this.#file = undefined;
    this.#openNext();
  }

  /**
   * Spool files holding waiting records that were deleted or replaced under us (the folder removed,
   * a file swapped for a folder): their records exist in memory only now, so they are marked for
   * rewriting into the next file. A stat per such file per flush; there are few.
   */
  #adoptLost(): void {
    const generations = new Set<number>();
    for (const item of this.#queue) if (typeof item.where === 'number') generations.add(item.where);
    const lost = new Set<number>();
    for (const generation of generations) {
      if (generation === this.#file?.generation) {
        if (this.#file.unlinked) lost.add(generation);
      } else if (!isFile(join(this.#options.spoolDir, spoolFileName(generation)))) lost.add(generation);
    }
    if (lost.size === 0) return;
    for (const item of this.#queue)
      if (typeof item.where === 'number' && lost.has(item.where)) {
        item.where = 'memory';
        this.#unspooled += 1;
      }
    if (this.#file !== undefined && lost.has(this.#file.generation)) {
      this.#file.close();
      this.#file = undefined;
    }
    this.#options.logger.warn(
      { files: [...lost].map(spoolFileName) },
      'usage spool files were removed; rewriting their records',
    );
  }

  async #flushAll(): Promise<void> {
    // New records go to a new file, so the files being drained stop growing (and one whose records
    // were all stored, even while they were still being appended, can go); a broken spool is retried.
    this.#adoptLost();
    if (this.#file === undefined || this.#unspooled > 0) this.#respool();
    else if (this.#file.size > 0) this.#rotate();
    do if (!(await this.#storeQueue())) return;
    while (await this.#readBack());
    await this.#deleteDone();
  }

  /** Inserts the queue in batches; false when Postgres refused (the rest waits for the next flush). */
  async #storeQueue(): Promise<boolean> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, this.#options.batchSize);
      try {
        const records = batch.map((item) => item.record);
        this.#written.inc(await insertUsage(this.#options.db, records, this.#options.prices));
        this.#failures = 0;
        this.#options.onStored?.(records);
      } catch (error) {
        this.#failures += 1;
        if (this.#failures === 1)
          this.#options.logger.warn(
            { err: error, pending: this.#queue.length },
            'usage records cannot be stored yet; keeping them in the spool',
          );
        return false;
      }
      this.#queue = this.#queue.slice(batch.length);
      for (const item of batch) {
        if (item.where === 'memory') this.#unspooled -= 1;
        item.where = 'stored';
      }
    }
    return true;
  }

  /** With the queue drained, the oldest file of records kept on disk only joins it; false when none is left. */
  async #readBack(): Promise<boolean> {
    this.#spill.append();
    const next = await this.#spill.next();
    if (next === undefined) return false;
    if ('lost' in next) {
      this.#drop('spool_lost', next.lost);
      return true;
    }
    for (const record of next.records) this.#queue.push({ record, where: next.generation });
    return true;
  }

  /** Deletes spool files none of whose records are still waiting. */
  async #deleteDone(): Promise<void> {
    const waiting = new Set(this.#queue.map((item) => item.where));
    for (const file of await readdir(this.#options.spoolDir).catch(() => [] as string[])) {
      const generation = generationOf(file);
      if (generation === undefined || generation === this.#file?.generation || waiting.has(generation)) continue;
      if (this.#spill.holds(generation)) continue;
      if (this.#keep.has(file)) continue;
      await unlink(join(this.#options.spoolDir, file)).catch(() => undefined);
    }
  }

  #drop(reason: DropReason, records: number): void {
    this.#dropped.inc({ reason }, records);
    if (reason === 'spool_lost') {
      this.#options.logger.error(
        { reason, records },
        'usage records dropped: their spool file was deleted before Postgres had them',
      );
      return;
    }
    if (reason !== 'queue_full') {
      this.#options.logger.error({ reason, records }, 'usage records dropped: neither spooled nor stored in Postgres');
      return;
    }
    // One line a minute at most, with the count since the last one: a full queue means every request drops one.
    this.#queueFullSince += records;
    const now = Date.now();
    if (now - this.#queueFullLoggedAt < 60_000) return;
    this.#options.logger.error(
      { reason, records: this.#queueFullSince, maxQueued: this.#options.maxQueued },
      'usage records dropped: the memory queue is full and the disk refuses them (Postgres unreachable for long)',
    );
    this.#queueFullLoggedAt = now;
    this.#queueFullSince = 0;
  }

  #schedule(): void {
    // Back off while Postgres is unavailable (up to 5 s: one failed connection attempt each time,
    // and the records are stored within 5 s of its return, where a 30 s cap took up to 30 s and
    // made budgets blind to the outage's spend that long), flush every interval otherwise. Records
    // held in memory only are retried every interval: getting them back onto disk matters more.
    const backoff = this.#unspooled > 0 ? 0 : Math.min(this.#failures, 5);
    const delay = Math.min(this.#options.flushIntervalMs * 2 ** backoff, 5_000);
    this.#timer = setTimeout(() => {
      void this.flush().finally(() => {
        if (this.#timer !== undefined) this.#schedule();
      });
    }, delay);
    this.#timer.unref();
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
