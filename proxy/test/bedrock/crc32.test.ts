import { randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/adapters/bedrock/crc32.ts';

describe('crc32 (JS tables below 256 bytes, zlib above)', () => {
  it('equals zlib.crc32 for every length around the switch-over, at any offset', () => {
    const bytes = randomBytes(1_200);
    for (let length = 0; length <= 600; length += 1)
      for (const from of [0, 1, 3, 7, 8, 13]) {
        expect(crc32(bytes, from, from + length), `${length} at ${from}`).toBe(
          zlibCrc32(bytes.subarray(from, from + length)),
        );
      }
  });

  it('continues a running value across any split, as a frame continues from its prelude', () => {
    const bytes = randomBytes(2_000);
    for (let split = 0; split <= 2_000; split += 37) {
      const head = crc32(bytes, 0, split);
      expect(crc32(bytes, split, bytes.length, head), `split ${split}`).toBe(zlibCrc32(bytes));
    }
  });

  it('gives zlib’s value on all-zero and all-one bytes (the table’s edge entries)', () => {
    for (const fill of [0x00, 0xff])
      for (const length of [1, 8, 9, 255, 256, 4096]) {
        const bytes = Buffer.alloc(length, fill);
        expect(crc32(bytes, 0, length)).toBe(zlibCrc32(bytes));
      }
  });
});
