import { describe, expect, it } from 'vitest';
import { EventCutter, eventAround, eventBoundary, maxPendingEventBytes } from '../src/pipeline/sse-framing.ts';

const boundary = (text: string) => eventBoundary(Buffer.from(text));

describe('eventBoundary', () => {
  it('finds the end of the last blank line in LF, CR, CRLF and mixed framing', () => {
    expect(boundary('data: a\n\n')).toBe(9);
    expect(boundary('data: a\r\r')).toBe(9);
    expect(boundary('data: a\r\n\r\n')).toBe(11);
    expect(boundary('data: a\n\r\n')).toBe(10);
    expect(boundary('data: a\r\r\n')).toBe(10);
    expect(boundary('data: a\n\ndata: b\r\rdata: c')).toBe(18);
    expect(boundary('data: a\r\n\r')).toBe(10); // the blank line ended at its CR
  });

  it('finds none in a partial event, a CRLF line end, or a CR awaiting its LF', () => {
    expect(boundary('data: a')).toBe(0);
    expect(boundary('data: a\r\n')).toBe(0);
    expect(boundary('data: a\r')).toBe(0);
    expect(boundary('event: x\r\ndata: a\r\n')).toBe(0);
  });
});

describe('eventAround', () => {
  it('parses the event around a position by the SSE rules', () => {
    const buffer = Buffer.from('data: 1\n\n: c\ndata: {"a":\nid: 4\nevent:  spaced\ndata:1}\nevent:name\n\nnext');
    expect(eventAround(buffer, 20)).toEqual({ name: 'name', data: '{"a":\n1}', ended: true });
    expect(eventAround(buffer, 2)).toEqual({ name: 'message', data: '1', ended: true });
    expect(eventAround(Buffer.from('event: x\rdata: y\r'), 3)).toEqual({ name: 'x', data: 'y', ended: false });
  });
});

/** The rule `EventCutter` keeps, the plain way: everything held plus the chunk, searched whole. */
function joinedCutter() {
  let held = Buffer.alloc(0);
  return (chunk: Buffer) => {
    const joined = Buffer.concat([held, chunk]);
    const cut = eventBoundary(joined);
    const hold = cut < joined.length && joined.length - cut < maxPendingEventBytes;
    held = hold ? joined.subarray(cut) : Buffer.alloc(0);
    return hold ? joined.subarray(0, cut) : joined;
  };
}

describe('EventCutter', () => {
  it('lets go of exactly the bytes a search of everything held would, whatever the chunking and line ends', () => {
    let seed = 7;
    const next = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const pieces = ['\n', '\r', '\r\n', 'a', 'event: x'];
    for (let trial = 0; trial < 5_000; trial += 1) {
      const text = Array.from({ length: next(24) }, () => pieces[next(pieces.length)]).join('');
      const bytes = Buffer.from(text);
      const cutter = new EventCutter();
      const reference = joinedCutter();
      for (let at = 0; at < bytes.length;) {
        const chunk = bytes.subarray(at, (at += 1 + next(5)));
        expect(cutter.push(chunk).toString(), JSON.stringify(text)).toBe(reference(chunk).toString());
      }
    }
  });

  it('lets an event go once it reaches the cap, and says the bytes sent end mid-event', () => {
    const cutter = new EventCutter();
    const half = Buffer.alloc(maxPendingEventBytes / 2, 0x61);
    expect(cutter.push(Buffer.from('data: 1\n\ndata: '))).toEqual(Buffer.from('data: 1\n\n'));
    expect(cutter.push(half)).toHaveLength(0);
    expect(cutter.push(half)).toHaveLength(6 + 2 * half.length);
    expect(cutter.atBoundary).toBe(false);
    expect(cutter.push(Buffer.from('\n\ndata: 2'))).toEqual(Buffer.from('\n\n'));
    expect([cutter.atBoundary, cutter.held?.toString()]).toEqual([true, 'data: 2']);
  });
});
