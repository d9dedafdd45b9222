/**
 * Server-sent events framing, as far as the relay and the usage reader need it. A line ends at
 * CRLF, LF or CR; an event ends at a blank line, i.e. two line ends in a row. Written for byte
 * buffers, without decoding: the Plan relay runs `eventBoundary` once per relayed chunk.
 */

const lf = 0x0a;
const cr = 0x0d;

/**
 * Index just past the last blank line, 0 when there is none. A blank line is two line ends in a
 * row that are not one CRLF: `\n\n`, `\n\r` or `\r\r` (`\r\n\r\n` holds `\n\r`). An LF that
 * completes the CRLF after a cut is taken along. Runs once per chunk, and an upstream that
 * writes whole events ends nearly every chunk on one: the trailing bytes answer that without a
 * search through the chunk.
 */
export function eventBoundary(buffer: Buffer): number {
  const end = buffer.length;
  const last = buffer[end - 1];
  const before = buffer[end - 2];
  if (last === lf && (before === lf || (before === cr && buffer[end - 3] === lf && buffer[end - 4] === cr))) return end;
  const lfAt = buffer.lastIndexOf(lfPair);
  // CR framing is rare (no Anthropic endpoint uses it): search for it only when a CR is there.
  if (!buffer.includes(cr)) return lfAt === -1 ? 0 : lfAt + 2;
  const cut = Math.max(lfAt, buffer.lastIndexOf(lfCr), buffer.lastIndexOf(crPair));
  if (cut === -1) return 0;
  return buffer[cut + 1] === cr && buffer[cut + 2] === lf ? cut + 3 : cut + 2;
}

const lfPair = Buffer.from('\n\n');
const lfCr = Buffer.from('\n\r');
const crPair = Buffer.from('\r\r');

/**
 * The most a partial event is held for its blank line; past it the bytes go on anyway (the relay
 * sends them, the usage reader reads them) rather than grow without bound.
 */
export const maxPendingEventBytes = 1024 * 1024;

/** Bytes before a chunk that can end a blank line with it: `\r\n\r` + `\n` is the longest. */
const seamBytes = 3;

/**
 * Cuts a byte stream at event boundaries: `push` answers with the whole events a chunk completes
 * and holds the partial one after them, as `eventBoundary` on everything held plus the chunk
 * would, but searching only the chunk (and the 3 held bytes before it when the chunk alone has
 * no boundary). Joining the held bytes to every chunk and searching them again made a stream
 * without blank lines quadratic: a gzip bomb of 100 MB of 'a' kept the proxy's CPU busy for more
 * than 3 minutes. Each byte is now searched about once and copied at most twice.
 */
export class EventCutter {
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** Whether the bytes let go so far end at an event boundary (false after an oversized event). */
  atBoundary = true;

  /** Whole events (empty when none), or everything once the event held would reach the cap. */
  push(chunk: Buffer): Buffer {
    let cut = eventBoundary(chunk);
    if (cut === 0 && this.#heldBytes > 0) cut = this.#seamCut(chunk);
    // What would be held after the cut: the chunk's rest, or, without a boundary, all of it.
    const rest = cut === 0 ? this.#heldBytes + chunk.length : chunk.length - cut;
    if (rest === 0 || rest >= maxPendingEventBytes) {
      const out = this.#heldBytes === 0 ? chunk : this.#take(chunk);
      if (out.length > 0) this.atBoundary = rest === 0;
      return out;
    }
    if (cut === 0) {
      this.#hold(chunk);
      return empty;
    }
    const out = this.#heldBytes === 0 ? chunk.subarray(0, cut) : this.#take(chunk.subarray(0, cut));
    this.#hold(chunk.subarray(cut));
    this.atBoundary = true;
    return out;
  }

  /** The partial event held, undefined when none. */
  get held(): Buffer | undefined {
    return this.#heldBytes === 0 ? undefined : Buffer.concat(this.#held, this.#heldBytes);
  }

  /** The boundary a blank line across the seam (held bytes, then `chunk`) makes, in `chunk`; 0: none. */
  #seamCut(chunk: Buffer): number {
    const tail = Buffer.concat(this.#held.slice(-seamBytes)).subarray(-seamBytes);
    // Held bytes hold no blank line of their own, so a boundary found is past the seam.
    return Math.max(0, eventBoundary(Buffer.concat([tail, chunk])) - tail.length);
  }

  #hold(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#held.push(bytes);
    this.#heldBytes += bytes.length;
  }

  /** Everything held, then `last`; empties the hold. */
  #take(last: Buffer): Buffer {
    this.#held.push(last);
    const out = Buffer.concat(this.#held, this.#heldBytes + last.length);
    this.#held = [];
    this.#heldBytes = 0;
    return out;
  }
}

const empty = Buffer.alloc(0);

export interface SseEvent {
  /** The `event` field's value; `message` when there is none (the SSE default). */
  name: string;
  /** The `data` lines joined with LF; undefined when there is no `data` field (nothing is dispatched). */
  data: string | undefined;
  /** Whether the event's blank line was within the buffer (a client has dispatched it). */
  ended: boolean;
}

/**
 * The event around `at`: its lines from the blank line before (or the buffer's start) to the
 * blank line after (or the buffer's end), parsed by the SSE rules (comments and other fields
 * skipped, one optional space after the colon, the last `event` wins, `data` lines joined).
 */
export function eventAround(buffer: Buffer, at: number): SseEvent {
  let name = 'message';
  let data: string | undefined;
  let line = eventStart(buffer, at);
  while (line < buffer.length) {
    let end = line;
    while (end < buffer.length && !isLineEnd(buffer[end])) end += 1;
    if (end === buffer.length) break; // a line without its end: not there yet
    if (end === line) return { name, data, ended: true };
    const colon = buffer.indexOf(colonByte, line);
    const fieldEnd = colon === -1 || colon > end ? end : colon;
    const field = buffer.toString('latin1', line, fieldEnd);
    if (field === 'event' || field === 'data') {
      const valueStart = fieldEnd + (buffer[fieldEnd + 1] === space && fieldEnd + 1 < end ? 2 : 1);
      const value = valueStart >= end ? '' : buffer.toString('utf8', valueStart, end);
      if (field === 'event') name = value;
      else data = data === undefined ? value : `${data}\n${value}`;
    }
    line = end + (buffer[end] === cr && buffer[end + 1] === lf ? 2 : 1);
  }
  return { name, data, ended: false };
}

const colonByte = 0x3a;
const space = 0x20;

export function isLineEnd(byte: number | undefined): boolean {
  return byte === lf || byte === cr;
}

/** Start of the event holding `at`: just past the blank line before it, or 0. */
function eventStart(buffer: Buffer, at: number): number {
  let pos = at;
  for (;;) {
    while (pos > 0 && !isLineEnd(buffer[pos - 1])) pos -= 1;
    if (pos === 0 || endsBlankLine(buffer, pos)) return pos;
    pos -= lineEndWidthBefore(buffer, pos);
  }
}

/** Whether the line end just before `pos` ends an empty line. */
function endsBlankLine(buffer: Buffer, pos: number): boolean {
  const lineEnd = pos - lineEndWidthBefore(buffer, pos);
  return lineEnd === 0 || isLineEnd(buffer[lineEnd - 1]);
}

/** The width of the line end just before `pos`: 2 for CRLF, 1 for a lone LF or CR. */
function lineEndWidthBefore(buffer: Buffer, pos: number): number {
  return buffer[pos - 1] === lf && buffer[pos - 2] === cr ? 2 : 1;
}
