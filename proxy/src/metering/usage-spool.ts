import { closeSync, fstatSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { appendFile, readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger, UsageRecord } from '@ccproxy/core';

const spoolName = /^usage-spool\.(\d+)\.jsonl$/;

/** The generation number in a spool file's name, or undefined for any other file (quarantine files, strays). */
export function generationOf(file: string): number | undefined {
  const match = spoolName.exec(file);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

export function spoolFileName(generation: number): string {
  return `usage-spool.${String(generation).padStart(12, '0')}.jsonl`;
}

/**
 * One spool file being appended to. An append is all or nothing: a write the disk cuts short
 * (ENOSPC, EIO, …) is truncated back to the last whole line before the error is thrown, so a
 * later start never finds half a record glued to the next one. The caller abandons the file
 * after any failure and opens a new one once the disk takes writes again.
 */
export class SpoolFile {
  readonly generation: number;
  readonly name: string;
  readonly #path: string;
  readonly #fd: number;
  #size: number;
  #closed = false;

  private constructor(generation: number, path: string, fd: number) {
    this.generation = generation;
    this.name = basename(path);
    this.#path = path;
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
  }

  /** Opens (creates) the file of `generation` in `dir` for appending; throws what the file system says. */
  static open(dir: string, generation: number): SpoolFile {
    const path = join(dir, spoolFileName(generation));
    const fd = openSync(path, 'a', 0o600);
    try {
      return new SpoolFile(generation, path, fd);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  append(bytes: Buffer): void {
    let written = 0;
    try {
      // writeSync may write less than asked (a disk filling up); loop until every byte is in or it throws.
      while (written < bytes.length) written += writeSync(this.#fd, bytes, written);
      this.#size += bytes.length;
    } catch (error) {
      // Freeing pages works on a full disk; if even that fails the torn tail is quarantined at the next start.
      if (written > 0) {
        try {
          ftruncateSync(this.#fd, this.#size);
        } catch {
          // nothing more can be done here
        }
      }
      throw error;
    }
  }

  /** Appends records, one JSON line each, all or nothing (see `append`). */
  appendRecords(records: readonly UsageRecord[]): void {
    let text = '';
    for (const record of records) text += `${JSON.stringify(record)}\n`;
    this.append(Buffer.from(text));
  }

  /** Bytes in the file. */
  get size(): number {
    return this.#size;
  }

  /** True when the file is no longer reachable by name (it or its folder was deleted or replaced). */
  get unlinked(): boolean {
    if (this.#closed) return true;
    try {
      return fstatSync(this.#fd).nlink === 0;
    } catch {
      return true;
    }
  }

  /** Idempotent: a descriptor closed twice could close whatever file reused its number meanwhile. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      closeSync(this.#fd);
    } catch {
      // already unusable: nothing of ours is buffered
    }
  }

  /** Closes and deletes the file if it holds nothing (a retry against a full disk leaves no empty files behind). */
  discardIfEmpty(): void {
    this.close();
    if (this.#size > 0) return;
    try {
      unlinkSync(this.#path);
    } catch {
      // gone already, or the next start reads an empty file: harmless
    }
  }
}

/** Where a read sets aside the bad lines it finds: a new file per call, beside the spool, never replayed or deleted. */
export const quarantineFile = (dir: string): string => join(dir, `quarantine-${Date.now()}.jsonl`);

/** The spool files in `dir`, oldest first, and one past the highest generation; undefined when the folder cannot be read. */
export async function listSpool(
  dir: string,
  logger: Logger,
): Promise<{ files: string[]; nextGeneration: number } | undefined> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (error) {
    logger.error({ err: error, dir }, 'usage spool folder cannot be read; nothing replayed from it');
    return undefined;
  }
  const files = names.filter((name) => generationOf(name) !== undefined);
  const last = files.at(-1);
  return { files, nextGeneration: last === undefined ? 0 : (generationOf(last) ?? 0) + 1 };
}

export interface SpoolFileContents {
  records: UsageRecord[];
  /** Lines that were not whole records: torn by a crash or a full disk, or corrupt. */
  corrupt: number;
  /** The file must stay on disk: its bad lines could not be set aside. */
  keep: boolean;
}

/**
 * One spool file's whole, valid records. A line that is not one (cut short, garbled, not a
 * usage record) is copied to `quarantine` and counted, logged once per file with its byte
 * offsets; with `quarantine` undefined (already set aside once) it is skipped. Undefined when
 * the file cannot be read (a folder in its place, a dangling link, no permission; logged).
 */
export async function readSpoolFile(
  dir: string,
  file: string,
  logger: Logger,
  quarantine: string | undefined,
): Promise<SpoolFileContents | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, file));
  } catch (error) {
    logger.error({ err: error, file: join(dir, file) }, 'usage spool file cannot be read; left in place');
    return undefined;
  }
  const { records, bad } = parseSpool(bytes);
  const contents: SpoolFileContents = { records, corrupt: 0, keep: false };
  if (bad.length === 0 || quarantine === undefined) return contents;
  contents.corrupt = bad.length;
  try {
    await appendFile(quarantine, Buffer.concat(bad.flatMap((line) => [line.bytes, newline])), { mode: 0o600 });
  } catch (error) {
    // The file keeps the only copy of those bytes: it must not be deleted once its good records are stored.
    contents.keep = true;
    logger.error({ err: error, file: join(dir, file) }, 'usage spool: bad lines cannot be quarantined; file kept');
  }
  logger.warn(
    { file: join(dir, file), lines: bad.length, offsets: bad.slice(0, 20).map((line) => line.offset), quarantine },
    'usage spool file has torn or corrupt lines; set aside, every whole record replayed',
  );
  return contents;
}

const newline = Buffer.from('\n');

/** Whole valid records of a spool file, and every other non-blank line with its byte offset. */
export function parseSpool(bytes: Buffer): { records: UsageRecord[]; bad: { offset: number; bytes: Buffer }[] } {
  const records: UsageRecord[] = [];
  const bad: { offset: number; bytes: Buffer }[] = [];
  for (let offset = 0; offset < bytes.length;) {
    const end = bytes.indexOf(10, offset);
    const line = bytes.subarray(offset, end === -1 ? bytes.length : end);
    // A line without its "\n" was cut short (a crash mid-append), even if it happens to parse.
    const record = end === -1 ? undefined : parseRecord(line);
    if (record !== undefined) records.push(record);
    else if (line.toString('latin1').trim() !== '') bad.push({ offset, bytes: Buffer.from(line) });
    offset = end === -1 ? bytes.length : end + 1;
  }
  return { records, bad };
}

function parseRecord(line: Buffer): UsageRecord | undefined {
  try {
    const value: unknown = JSON.parse(line.toString('utf8'));
    return isUsageRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

const count = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const finite = (value: unknown) => typeof value === 'number' && Number.isFinite(value);
const id = (value: unknown) => value === null || (typeof value === 'string' && /^\d{1,18}$/.test(value));
const text = (value: unknown) => value === null || typeof value === 'string';

/** The shape the insert needs: one record that is not would fail its whole batch, over and over. */
export function isUsageRecord(value: unknown): value is UsageRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.requestId === 'string' &&
    r.requestId.length > 0 &&
    finite(r.occurredAt) &&
    id(r.userId) &&
    id(r.accessKeyId) &&
    (r.provider === 'plan' || r.provider === 'bedrock' || r.provider === null) &&
    typeof r.failover === 'boolean' &&
    text(r.modelRequested) &&
    text(r.modelServed) &&
    count(r.inputTokens) &&
    count(r.outputTokens) &&
    count(r.cacheReadTokens) &&
    count(r.cacheCreationTokens) &&
    finite(r.latencyMs) &&
    (r.ttfbMs === null || finite(r.ttfbMs)) &&
    Number.isInteger(r.status) &&
    typeof r.complete === 'boolean' &&
    (r.metered === undefined || typeof r.metered === 'boolean') &&
    (r.errorCode === undefined || text(r.errorCode))
  );
}
