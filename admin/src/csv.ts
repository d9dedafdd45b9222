import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

export type CsvValue = string | number | boolean | null | undefined;

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote, CR or LF, quotes doubled. A text
 * cell that a spreadsheet would run as a formula (it starts with = + - @, or a tab or CR that
 * some spreadsheets skip before one) gets a leading apostrophe: a model id or name an attacker
 * chose is shown, never evaluated. Numbers are written as numbers (a negative one is not text).
 */
export function csvCell(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value !== 'string') return String(value);
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export const csvLine = (cells: readonly CsvValue[]) => `${cells.map(csvCell).join(',')}\r\n`;

/**
 * Sends rows as a CSV download, streamed: the header line at once, then each row as it is read
 * (a slow client holds back the reads, not memory). `file` names the download.
 */
export function sendCsv<T>(
  reply: FastifyReply,
  file: string,
  columns: ReadonlyArray<readonly [string, (row: T) => CsvValue]>,
  rows: AsyncIterable<T>,
): FastifyReply {
  async function* lines() {
    yield csvLine(columns.map(([name]) => name));
    for await (const row of rows) yield csvLine(columns.map(([, value]) => value(row)));
  }
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${file}"`)
    .send(Readable.from(lines()));
}
