import { crc32 } from 'node:zlib';
import { EventStreamCodec, Int64, type MessageHeaders } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { describe, expect, it } from 'vitest';
import { EventStreamFrames, type EventFrame } from '../../src/adapters/bedrock/event-stream-frames.ts';

/**
 * The in-place frame decoder (event-stream-frames.ts) against the general one it replaced: the
 * Smithy codec, which the AWS SDK itself decodes with. Same frames in (every header type,
 * Unicode and escapes in names, values and payloads, any chunk boundaries, huge payloads), the
 * same EventFrames out; any corrupted byte refused by both.
 */
const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** The previous decodeFrame, on the Smithy codec: the reference. */
function reference(bytes: Uint8Array): EventFrame {
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

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Characters that break naive encoders: multi-byte, astral (surrogate pairs), a lone surrogate, controls, JSON's escapes, SSE's line breaks. */
const nasty = [
  'a',
  'Z',
  ' ',
  'é',
  '€',
  '𝄞',
  '🤔',
  '\ud800',
  '\u0000',
  '\u001f',
  '"',
  '\\',
  '/',
  '\n',
  '\r',
  '\u2028',
  '\ufeff',
];

function text(next: () => number, max: number): string {
  let out = '';
  const length = Math.floor(next() * max);
  for (let i = 0; i < length; i += 1) out += nasty[Math.floor(next() * nasty.length)];
  return out;
}

/** The names the decoder keeps, one it skips, and near misses of them (matched on bytes, so one byte off must not match). */
const typeNames = [
  ':message-type',
  ':event-type',
  ':exception-type',
  ':error-code',
  ':error-message',
  ':content-type',
  ':message-typ',
  ':event-typeX',
  ':Event-type',
  ':error-cod\u00e9',
  ':message-typf',
  ':event-typf',
  ';event-type',
];
/** Values the decoder matches on bytes (interned), and near misses. */
const commonValues = [
  'event',
  'exception',
  'error',
  'chunk',
  'contentBlockDelta',
  'metadata',
  'even',
  'events',
  'chunK',
  'métadata',
  'evenT',
  'Event',
  'contentBlockDeltb',
  'dontentBlockDelta',
];

/** A header of a random type under a random (often meaningful) name. */
function randomHeaders(next: () => number): MessageHeaders {
  const headers: MessageHeaders = {};
  const count = Math.floor(next() * 7);
  for (let i = 0; i < count; i += 1) {
    const name = next() < 0.6 ? (typeNames[Math.floor(next() * typeNames.length)] as string) : `x-${text(next, 6)}`;
    const kind = Math.floor(next() * 9);
    headers[name] =
      kind === 0
        ? { type: 'boolean', value: next() < 0.5 }
        : kind === 1
          ? { type: 'byte', value: Math.floor(next() * 256) - 128 }
          : kind === 2
            ? { type: 'short', value: Math.floor(next() * 65536) - 32768 }
            : kind === 3
              ? { type: 'integer', value: Math.floor(next() * 2 ** 32) - 2 ** 31 }
              : kind === 4
                ? { type: 'long', value: Int64.fromNumber(Math.floor(next() * 2 ** 40)) }
                : kind === 5
                  ? { type: 'binary', value: Uint8Array.from({ length: Math.floor(next() * 40) }, () => next() * 256) }
                  : kind === 6
                    ? { type: 'timestamp', value: new Date(Math.floor(next() * 2e12)) }
                    : kind === 7
                      ? { type: 'uuid', value: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0' }
                      : {
                          type: 'string',
                          value:
                            next() < 0.5
                              ? (commonValues[Math.floor(next() * commonValues.length)] as string)
                              : text(next, 30),
                        };
  }
  // Most frames carry the real trio, as Bedrock sends them.
  if (next() < 0.7) {
    headers[':message-type'] = {
      type: 'string',
      value: ['event', 'exception', 'error'][Math.floor(next() * 3)] as string,
    };
    headers[':event-type'] = { type: 'string', value: `contentBlockDelta${text(next, 3)}` };
  }
  return headers;
}

function randomFrame(next: () => number, payloadChars = 200): Uint8Array {
  const body =
    next() < 0.1
      ? new Uint8Array(0)
      : fromUtf8(JSON.stringify({ contentBlockIndex: 0, delta: { text: text(next, payloadChars) }, p: text(next, 4) }));
  return codec.encode({ headers: randomHeaders(next), body });
}

function decodeAll(chunks: Uint8Array[]): EventFrame[] {
  const frames = new EventStreamFrames();
  const out = chunks.flatMap((chunk) => frames.push(chunk));
  expect(frames.pending).toBe(0);
  return out;
}

function split(bytes: Uint8Array, next: () => number, max: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(next() * max);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

describe('the in-place event-stream decoder against the Smithy codec', () => {
  it('decodes every header type, Unicode and escapes the same, at any chunk boundaries', () => {
    for (let seed = 1; seed <= 200; seed += 1) {
      const next = random(seed);
      const frames = Array.from({ length: 1 + Math.floor(next() * 6) }, () => randomFrame(next));
      const expected = frames.map(reference);
      const whole = Buffer.concat(frames);
      expect(decodeAll([whole]), `seed ${seed}, one chunk`).toEqual(expected);
      expect(decodeAll(split(whole, next, 40)), `seed ${seed}, split`).toEqual(expected);
      // Plain Uint8Arrays (not Buffers) at odd offsets into a shared ArrayBuffer.
      const shared = new Uint8Array(whole.length + 3);
      shared.set(whole, 3);
      expect(decodeAll([shared.subarray(3)]), `seed ${seed}, Uint8Array`).toEqual(expected);
    }
  });

  it('decodes frames split at every single byte', () => {
    const next = random(7);
    const frames = Array.from({ length: 4 }, () => randomFrame(next, 60));
    const whole = Buffer.concat(frames);
    expect(decodeAll([...whole].map((byte) => Uint8Array.of(byte)))).toEqual(frames.map(reference));
  });

  it('decodes a huge frame (4 MiB of multi-byte text) fed in 64 KiB chunks', () => {
    const big = codec.encode({
      headers: {
        ':message-type': { type: 'string', value: 'event' },
        ':event-type': { type: 'string', value: 'contentBlockDelta' },
      },
      body: fromUtf8(JSON.stringify({ contentBlockIndex: 0, delta: { text: 'é𝄞"\\\n'.repeat(400_000) } })),
    });
    expect(big.length).toBeGreaterThan(4 * 1024 * 1024);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < big.length; at += 65_536) chunks.push(big.subarray(at, at + 65_536));
    expect(decodeAll(chunks)).toEqual([reference(big)]);
  });

  it('refuses any corrupted byte, as the codec does (prelude or message CRC)', () => {
    const next = random(11);
    const frame = randomFrame(next, 20);
    for (let at = 0; at < frame.length; at += 1) {
      const bad = Uint8Array.from(frame);
      bad[at] = (bad[at] as number) ^ (1 << Math.floor(next() * 8));
      expect(() => reference(bad), `byte ${at}`).toThrow();
      expect(() => new EventStreamFrames().push(bad), `byte ${at}`).toThrow(/CRC|length|maximum|impossible/);
    }
  });

  it('refuses a header block that overruns its frame or a header of an unknown type, with valid CRCs', () => {
    const good = codec.encode({
      headers: { ':message-type': { type: 'string', value: 'event' } },
      body: fromUtf8('{}'),
    });
    // Headers length claims more than the frame holds.
    const overrun = Buffer.from(good);
    overrun.writeUInt32BE(good.length, 4);
    // A string header whose value length runs past the header block.
    const longValue = Buffer.from(good);
    longValue.writeUInt16BE(200, 12 + 1 + ':message-type'.length + 1);
    // Type 10 does not exist.
    const unknownType = Buffer.from(good);
    unknownType[12 + 1 + ':message-type'.length] = 10;
    for (const [bytes, message] of [
      [overrun, /overruns the .*frame/],
      [longValue, /overruns the header block/],
      [unknownType, /type 10 is unknown/],
    ] as const) {
      recrc(bytes);
      expect(() => new EventStreamFrames().push(bytes)).toThrow(message);
    }
  });
});

/** Rewrites both CRCs so only the structure is wrong. */
function recrc(bytes: Buffer): void {
  bytes.writeUInt32BE(crc32(bytes.subarray(0, 8)), 8);
  bytes.writeUInt32BE(crc32(bytes.subarray(0, bytes.length - 4)), bytes.length - 4);
}
