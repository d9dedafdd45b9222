import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { microTime, readLines } from '../src/kube/kube-wire.ts';

/** The watch stream reader: lines whole across any chunking (multi-byte characters too), and bounded. */
describe('watch stream lines', () => {
  it('delivers every line whole however the bytes are cut, and skips blank ones', async () => {
    const text = '{"a":"ü"}\n\n{"b":"😀"}\r\n{"c":3}';
    const bytes = Buffer.from(text);
    for (let at = 1; at < bytes.length; at += 1) {
      const lines: string[] = [];
      await readLines(Readable.from([bytes.subarray(0, at), bytes.subarray(at)]), (line) => lines.push(line));
      expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual([{ a: 'ü' }, { b: '😀' }, { c: 3 }]);
    }
  });

  it('ends with an error on a line longer than 16 MiB instead of growing without bound', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    const endless = Readable.from(
      (function* () {
        for (let i = 0; i < 20; i += 1) yield chunk;
      })(),
    );
    await expect(readLines(endless, () => undefined)).rejects.toThrow(/longer than 16777216 bytes/);
  });

  it('writes Lease times with microseconds, as MicroTime requires', () => {
    expect(microTime(Date.UTC(2026, 11, 7, 12, 0, 0, 123))).toBe('2026-12-07T12:00:00.123000Z');
  });
});
