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

/**
 * Splits an AWS event-stream byte stream into frames (they do not align with network chunks):
 * each frame starts with its total length; complete frames are decoded (CRCs checked) by the
 * Smithy codec, the incomplete tail is kept for the next chunk. Per stream, not thread-safe.
 */
export class EventStreamFrames {
  #buffer: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): EventFrame[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : concat(this.#buffer, chunk);
    const frames: EventFrame[] = [];
    while (this.#buffer.length >= 4) {
      const length = new DataView(this.#buffer.buffer, this.#buffer.byteOffset, 4).getUint32(0);
      if (length < 16) throw new Error(`event-stream frame length ${length} is impossible`);
      if (this.#buffer.length < length) break;
      const message = codec.decode(this.#buffer.subarray(0, length));
      this.#buffer = this.#buffer.subarray(length);
      const headers = message.headers;
      const header = (name: string) => (headers[name]?.type === 'string' ? String(headers[name].value) : '');
      const messageType = header(':message-type');
      const body = toUtf8(message.body);
      frames.push({
        messageType,
        name:
          messageType === 'exception'
            ? header(':exception-type')
            : messageType === 'error'
              ? header(':error-code')
              : header(':event-type'),
        payload: messageType === 'error' ? { message: header(':error-message') } : body === '' ? {} : JSON.parse(body),
      });
    }
    return frames;
  }

  /** Bytes of a frame that never completed. */
  get pending(): number {
    return this.#buffer.length;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
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
