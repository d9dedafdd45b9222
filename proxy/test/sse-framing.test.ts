import { describe, expect, it } from 'vitest';
import { eventAround, eventBoundary } from '../src/pipeline/sse-framing.ts';

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
