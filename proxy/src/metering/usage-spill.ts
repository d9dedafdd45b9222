import type { Logger, UsageRecord } from '@ccproxy/core';
import { quarantineFile, readSpoolFile, SpoolFile, spoolFileName } from './usage-spool.ts';

interface OnDisk {
  generation: number;
  records: number;
  /** Its bad lines were quarantined when it was first read: skipped, not set aside twice. */
  quarantined: boolean;
}

/**
 * Usage records past the recorder's memory bound, kept on disk only: appended to spool files of
 * their own (at most `perFile` records each) and read back, one file at a time, once the memory
 * queue has room. So a Postgres outage of any length at any rate costs disk, not memory, and no
 * record (`maxQueued` × the record size bounds the memory instead). The files are ordinary spool
 * files: a restart replays them like any other.
 */
export class UsageSpill {
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #perFile: number;
  readonly #nextGeneration: () => number;
  readonly #onRefused: (records: number) => void;
  #file: SpoolFile | undefined;
  #fileRecords = 0;
  #closed: OnDisk[] = [];
  #turn: UsageRecord[] = [];
  #records = 0;
  /** Said once per failure spell: past the bound every request would log it. */
  #failing = false;

  constructor(options: {
    dir: string;
    logger: Logger;
    perFile: number;
    nextGeneration: () => number;
    /** Told how many records the disk refused (the recorder counts them dropped). */
    onRefused: (records: number) => void;
  }) {
    this.#dir = options.dir;
    this.#logger = options.logger;
    this.#perFile = options.perFile;
    this.#nextGeneration = options.nextGeneration;
    this.#onRefused = options.onRefused;
  }

  /** Records on disk only (and this turn's, about to be). */
  get records(): number {
    return this.#records + this.#turn.length;
  }

  /** Whether `generation` holds records not read back yet: its file must stay. */
  holds(generation: number): boolean {
    return generation === this.#file?.generation || this.#closed.some((f) => f.generation === generation);
  }

  /** A spool file left by an earlier process, read at start but not kept in memory (the bound was reached). */
  defer(generation: number, records: number, quarantined: boolean): void {
    this.#closed.push({ generation, records, quarantined });
    this.#records += records;
  }

  /** Queues a record for the end of this event-loop turn's append; true when that append is to be scheduled. */
  add(record: UsageRecord): boolean {
    this.#turn.push(record);
    return this.#turn.length === 1;
  }

  /** Appends this turn's records, at most `perFile` to a file; what the disk refuses goes to `onRefused`. */
  append(): void {
    const records = this.#turn;
    this.#turn = [];
    for (let at = 0; at < records.length;) {
      const chunk = records.slice(at, at + this.#perFile - this.#fileRecords);
      if (!this.#write(chunk)) return this.#onRefused(records.length - at);
      at += chunk.length;
    }
  }

  #write(records: UsageRecord[]): boolean {
    try {
      this.#file ??= SpoolFile.open(this.#dir, this.#nextGeneration());
      this.#file.appendRecords(records);
    } catch (error) {
      if (!this.#failing)
        this.#logger.error(
          { err: error, dir: this.#dir, records: records.length },
          'usage records past the memory bound cannot be written to disk; dropping them until it can',
        );
      this.#failing = true;
      this.#seal();
      return false;
    }
    if (this.#failing)
      this.#logger.info({ dir: this.#dir }, 'usage records past the memory bound are written to disk again');
    this.#failing = false;
    this.#fileRecords += records.length;
    this.#records += records.length;
    if (this.#fileRecords >= this.#perFile) this.#seal();
    return true;
  }

  /**
   * The oldest file's records, read back (the file stays until the caller has stored them);
   * undefined when none is left. A file that vanished is reported as `lost` with its count.
   */
  async next(): Promise<{ generation: number; records: UsageRecord[] } | { lost: number } | undefined> {
    if (this.#closed.length === 0) this.#seal();
    const file = this.#closed.shift();
    if (file === undefined) return undefined;
    this.#records -= file.records;
    const name = spoolFileName(file.generation);
    const contents = await readSpoolFile(
      this.#dir,
      name,
      this.#logger,
      file.quarantined ? undefined : quarantineFile(this.#dir),
    );
    if (contents === undefined) return { lost: file.records };
    return { generation: file.generation, records: contents.records };
  }

  /** Appends what is pending and closes the open file (its records stay on disk for the next start). */
  close(): void {
    this.append();
    this.#seal();
  }

  #seal(): void {
    const file = this.#file;
    this.#file = undefined;
    if (file === undefined) return;
    file.discardIfEmpty();
    if (this.#fileRecords > 0)
      this.#closed.push({ generation: file.generation, records: this.#fileRecords, quarantined: false });
    this.#fileRecords = 0;
  }
}
