import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { crc32 } from './crc32.ts';
import { Header, readHeaders } from './frame-headers.ts';
import { parsePayload } from './payload-json.ts';

export interface EventFrame {
  /** `event`, `exception` or `error`. */
  messageType: string;
  /** The event (`contentBlockDelta`, …) or exception (`throttlingException`, …) name. */
  name: string;
  payload: unknown;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** Total length (4), headers length (4), prelude CRC (4). */
const preludeBytes = 12;
/** Prelude plus the message CRC: a frame with no headers and no payload. */
const minFrameBytes = 16;
/**
 * The largest frame accepted: the AWS event-stream format's own limits, 128 KiB of headers and
 * 16 MiB of payload, plus prelude and CRC. ConverseStream events are a few KiB at most, so a
 * longer claim is garbage or hostile and is refused from its first 12 bytes, before anything is
 * buffered (a claimed 2 GiB frame used to be buffered, and re-copied with every chunk).
 */
export const maxFrameBytes = preludeBytes + 128 * 1024 + 16 * 1024 * 1024 + 4;

/**
 * Splits an AWS event-stream byte stream into frames (they do not align with network chunks):
 * each frame starts with its total length and a CRC of that prelude, both checked as soon as the
 * 12 bytes are there; a complete frame is decoded in place (`decodeFrame`). Chunks of an
 * incomplete frame are kept as they came and joined once, when the frame is whole; a chunk
 * holding many frames is read at an offset, never sliced per frame. Per stream, not thread-safe.
 */
export class EventStreamFrames {
  #chunks: Buffer[] = [];
  /** Where the first chunk's unread bytes start. */
  #offset = 0;
  #size = 0;
  #error: unknown;

  push(chunk: Uint8Array): EventFrame[] {
    if (chunk.length > 0) {
      this.#chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.#size += chunk.length;
    }
    if (this.#error !== undefined) throw this.#error;
    const frames: EventFrame[] = [];
    try {
      while (this.#size >= preludeBytes) {
        const length = checkedLength(this.#front(preludeBytes), this.#offset);
        if (this.#size < length) break;
        const bytes = this.#front(length);
        const at = this.#offset;
        this.#consume(length);
        frames.push(decodeFrame(bytes, at, length));
      }
    } catch (error) {
      // The frames before a bad one are still the stream's: they are returned, the error comes next.
      if (frames.length === 0) throw error;
      this.#error = error;
    }
    return frames;
  }

  /** The error of a bad frame that followed good ones in the last chunk (thrown by the next push). */
  get error(): unknown {
    return this.#error;
  }

  /** Bytes of a frame that never completed. */
  get pending(): number {
    return this.#size;
  }

  /** The first chunk, made to hold `length` unread bytes from `#offset` (joining leading chunks only when they are split). */
  #front(length: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length - this.#offset >= length) return first;
    let count = 0;
    let joined = -this.#offset;
    while (joined < length) joined += (this.#chunks[count++] as Buffer).length;
    // Its own memory, not a slice of Node's shared 8 KiB pool: a frame waiting for its rest on an
    // idle stream must not keep a pool slab alive. Every byte is copied over below.
    const out = Buffer.allocUnsafeSlow(joined);
    let at = 0;
    for (const [i, part] of this.#chunks.splice(0, count, out).entries()) {
      const from = i === 0 ? this.#offset : 0;
      part.copy(out, at, from);
      at += part.length - from;
    }
    this.#offset = 0;
    return out;
  }

  #consume(length: number): void {
    const first = this.#chunks[0] as Buffer;
    this.#offset += length;
    this.#size -= length;
    if (this.#offset === first.length) {
      this.#chunks.shift();
      this.#offset = 0;
    }
  }
}

/** The frame's total length from its prelude at `at`, refused when impossible, oversized or corrupt. */
function checkedLength(bytes: Buffer, at: number): number {
  const length = bytes.readUInt32BE(at);
  if (length < minFrameBytes) throw new Error(`event-stream frame length ${length} is impossible`);
  if (length > maxFrameBytes)
    throw new Error(`event-stream frame length ${length} exceeds the ${maxFrameBytes}-byte maximum`);
  if (crc32(bytes, at, at + 8) !== bytes.readUInt32BE(at + 8))
    throw new Error('event-stream frame prelude CRC mismatch');
  return length;
}

/**
 * One whole frame (prelude already checked) at `at` in `bytes` → its type, name and JSON payload.
 * The message CRC continues from the prelude's (a running value, crc32.ts): one pass over the
 * rest, no copy. Headers are read in place (frame-headers.ts).
 */
function decodeFrame(bytes: Buffer, at: number, length: number): EventFrame {
  const headersLength = bytes.readUInt32BE(at + 4);
  if (headersLength > length - minFrameBytes)
    throw new Error(`event-stream headers length ${headersLength} overruns the ${length}-byte frame`);
  const end = at + length - 4;
  if (crc32(bytes, at + 8, end, bytes.readUInt32BE(at + 8)) !== bytes.readUInt32BE(end))
    throw new Error('event-stream frame message CRC mismatch');
  const headers = readHeaders(bytes, at + preludeBytes, at + preludeBytes + headersLength);
  const messageType = headers[Header.messageType] as string;
  const bodyAt = at + preludeBytes + headersLength;
  return {
    messageType,
    name:
      messageType === 'exception'
        ? (headers[Header.exceptionType] as string)
        : messageType === 'error'
          ? (headers[Header.errorCode] as string)
          : (headers[Header.eventType] as string),
    payload:
      messageType === 'error'
        ? { message: headers[Header.errorMessage] }
        : bodyAt === end
          ? {}
          : parsePayload(bytes.toString('utf8', bodyAt, end)),
  };
}

/** Encodes one frame; used by the Bedrock test server and golden fixtures. */
export function encodeEventFrame(
  name: string,
  payload: unknown,
  messageType: 'event' | 'exception' = 'event',
): Uint8Array {
  const typeHeader = messageType === 'event' ? ':event-type' : ':exception-type';
  return codec.encode({
    headers: {
      ':message-type': { type: 'string', value: messageType },
      [typeHeader]: { type: 'string', value: name },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: fromUtf8(JSON.stringify(payload)),
  });
}
