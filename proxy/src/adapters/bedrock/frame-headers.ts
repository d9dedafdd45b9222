/**
 * An event-stream frame's headers, walked in place: every type's size is known, a header that
 * overruns the header block or has an unknown type is refused. Only the headers the translators
 * read are kept (`Header`), matched on their bytes (no string per header name); of those, the
 * string values Bedrock sends on every frame (`event`, `contentBlockDelta`, …) are matched on
 * their bytes too and come back as the same interned strings, any other value is decoded as
 * UTF-8. A repeated name: the last wins; a non-string value reads as ''.
 */
export const Header = { messageType: 0, eventType: 1, exceptionType: 2, errorCode: 3, errorMessage: 4 } as const;

const names = [':message-type', ':event-type', ':exception-type', ':error-code', ':error-message'].map((name) =>
  Buffer.from(name, 'latin1'),
);

/** Values seen on nearly every frame: matched, not decoded. */
const commonValues = [
  'event',
  'exception',
  'error',
  'chunk',
  'messageStart',
  'contentBlockStart',
  'contentBlockDelta',
  'contentBlockStop',
  'messageStop',
  'metadata',
].map((text) => ({ text, bytes: Buffer.from(text, 'utf8') }));

/** Bytes a header value of each fixed-size type takes (0, 1: booleans; 6, 7: length-prefixed). */
const fixedSizes = [0, 0, 1, 2, 4, 8, -1, -1, 8, 16];

/** The kept headers' values, indexed by `Header`, '' where absent. */
export function readHeaders(bytes: Buffer, from: number, to: number): string[] {
  const values = ['', '', '', '', ''];
  let p = from;
  while (p < to) {
    const nameAt = p + 1;
    const typeAt = nameAt + (bytes[p] as number);
    if (typeAt >= to) throw overrun();
    const type = bytes[typeAt] as number;
    const fixed = fixedSizes[type];
    if (fixed === undefined) throw new Error(`event-stream header type ${type} is unknown`);
    let valueAt = typeAt + 1;
    let next = valueAt + fixed;
    if (fixed < 0) {
      if (valueAt + 2 > to) throw overrun();
      next = valueAt + 2 + bytes.readUInt16BE(valueAt);
      valueAt += 2;
    }
    if (next > to) throw overrun();
    const kept = keptHeader(bytes, nameAt, typeAt);
    if (kept !== -1) values[kept] = type === 7 ? stringValue(bytes, valueAt, next) : '';
    p = next;
  }
  return values;
}

const overrun = () => new Error('event-stream header overruns the header block');

/** Which kept header the name at [from, to) is, or -1. */
function keptHeader(bytes: Buffer, from: number, to: number): number {
  for (let i = 0; i < names.length; i += 1) if (equalAt(bytes, from, to, names[i] as Buffer)) return i;
  return -1;
}

function stringValue(bytes: Buffer, from: number, to: number): string {
  for (const value of commonValues) if (equalAt(bytes, from, to, value.bytes)) return value.text;
  return bytes.toString('utf8', from, to);
}

function equalAt(bytes: Buffer, from: number, to: number, expected: Buffer): boolean {
  if (to - from !== expected.length) return false;
  for (let i = 0; i < expected.length; i += 1) if (bytes[from + i] !== expected[i]) return false;
  return true;
}
