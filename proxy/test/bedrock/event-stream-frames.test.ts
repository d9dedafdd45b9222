import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeEventFrame, EventStreamFrames, maxFrameBytes } from '../../src/adapters/bedrock/event-stream-frames.ts';

function prelude(length: number, crcOk = true): Uint8Array {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32BE(length, 0);
  bytes.writeUInt32BE(crc32(bytes.subarray(0, 8)) ^ (crcOk ? 0 : 1), 8);
  return bytes;
}

describe('EventStreamFrames', () => {
  it('decodes frames split at every byte and glued together', () => {
    const frames = Buffer.concat([
      encodeEventFrame('messageStart', { role: 'assistant' }),
      encodeEventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'hi' } }),
    ]);
    const splitter = new EventStreamFrames();
    const names = [...frames].flatMap((byte) => splitter.push(Uint8Array.of(byte)).map((frame) => frame.name));
    expect(names).toEqual(['messageStart', 'contentBlockDelta']);
    expect(splitter.pending).toBe(0);
  });

  it('refuses a length over the bound from the 12-byte prelude, before buffering the rest', () => {
    expect(() => new EventStreamFrames().push(prelude(2 ** 31))).toThrow(/exceeds the 16908304-byte maximum/);
    expect(() => new EventStreamFrames().push(prelude(maxFrameBytes + 1))).toThrow(/maximum/);
    // At the bound the prelude is accepted, and the frame waits for its bytes.
    const atBound = new EventStreamFrames();
    expect(atBound.push(prelude(maxFrameBytes))).toEqual([]);
  });

  it('refuses a prelude whose CRC does not match, and an impossible length', () => {
    expect(() => new EventStreamFrames().push(prelude(100, false))).toThrow(/prelude CRC/);
    expect(() => new EventStreamFrames().push(prelude(8))).toThrow(/impossible/);
  });

  it('returns the good frames before a bad one, and keeps the error for the caller', () => {
    const splitter = new EventStreamFrames();
    const frames = splitter.push(
      Buffer.concat([encodeEventFrame('messageStart', { role: 'assistant' }), prelude(2 ** 31)]),
    );
    expect(frames.map((frame) => frame.name)).toEqual(['messageStart']);
    expect(String(splitter.error)).toMatch(/maximum/);
    expect(() => splitter.push(Uint8Array.of(0))).toThrow(/maximum/);
  });
});
