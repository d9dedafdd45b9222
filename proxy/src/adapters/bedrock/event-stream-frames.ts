import { crc32 } from 'node:zlib';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';

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
 * 12 bytes are there; complete frames are decoded (message CRC checked) by the Smithy codec.
 * Chunks of an incomplete frame are kept as they came and joined once, when the frame is whole.
 * Per stream, not thread-safe.
 */
export class EventStreamFrames {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #error: unknown;

  push(chunk: Uint8Array): EventFrame[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#size += chunk.length;
    }
    if (this.#error !== undefined) throw this.#error;
    const frames: EventFrame[] = [];
    try {
      while (this.#size >= preludeBytes) {
        const length = checkedLength(this.#front(preludeBytes));
        if (this.#size < length) break;
        const frame = this.#front(length);
        this.#consume(length);
        frames.push(decodeFrame(frame));
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

  /** The first `length` bytes as one array (joining leading chunks only when they are split). */
  #front(length: number): Uint8Array {
    const first = this.#chunks[0] as Uint8Array;
    if (first.length >= length) return first.subarray(0, length);
    let count = 0;
    let joined = 0;
    while (joined < length) joined += (this.#chunks[count++] as Uint8Array).length;
    const out = new Uint8Array(joined);
    let offset = 0;
    for (const part of this.#chunks.splice(0, count, out)) {
      out.set(part, offset);
      offset += part.length;
    }
    return out.subarray(0, length);
  }

  #consume(length: number): void {
    const first = this.#chunks[0] as Uint8Array;
    if (first.length === length) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(length);
    this.#size -= length;
  }
}

/** The frame's total length from its prelude, refused when impossible, oversized or corrupt. */
function checkedLength(prelude: Uint8Array): number {
  const view = new DataView(prelude.buffer, prelude.byteOffset, preludeBytes);
  const length = view.getUint32(0);
  if (length < minFrameBytes) throw new Error(`event-stream frame length ${length} is impossible`);
  if (length > maxFrameBytes)
    throw new Error(`event-stream frame length ${length} exceeds the ${maxFrameBytes}-byte maximum`);
  if (crc32(prelude.subarray(0, 8)) !== view.getUint32(8)) throw new Error('event-stream frame prelude CRC mismatch');
  return length;
}

function decodeFrame(bytes: Uint8Array): EventFrame {
  const message = codec.decode(bytes);
  const headers = message.headers;
  const header = (name: string) => (headers[name]?.type === 'string' ? String(headers[name].value) : '');
  const messageType = header(':message-type');
  const body = toUtf8(message.body);
  return {
    messageType,
    name:
      messageType === 'exception'
        ? header(':exception-type')
        : messageType === 'error'
          ? header(':error-code')
          : header(':event-type'),
    payload: messageType === 'error' ? { message: header(':error-message') } : body === '' ? {} : JSON.parse(body),
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
