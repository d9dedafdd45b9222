/**
 * An event frame's JSON payload → its value. Nearly every frame of a stream is one of two
 * shapes: a ConverseStream `contentBlockDelta` with one string (text, tool input, reasoning
 * text) and an InvokeModel `chunk` with its base64 `bytes`, each maybe with Bedrock's `p`
 * padding. Those are read with a few prefix checks and slices, their strings unescaped by
 * `JSON.parse` of the string literal alone when they hold a backslash; anything else — other
 * keys, another order, whitespace, a number that is not a plain integer — goes to `JSON.parse`
 * of the whole, which also throws for whatever is not JSON. Either way the value is the one
 * `JSON.parse(body)` gives (payload-json.test.ts holds the two to that).
 */
export function parsePayload(body: string): unknown {
  return fastPayload(body) ?? JSON.parse(body);
}

const chunkPrefix = '{"bytes":"';
const deltaPrefix = '{"contentBlockIndex":';
const deltaKey = ',"delta":{"';
/** `delta` members with one string, as `"<member>":` … up to that string's opening quote, and the braces after it. */
const deltaMembers = [
  { key: 'text":"', build: (value: string) => ({ text: value }), close: '}' },
  { key: 'toolUse":{"input":"', build: (value: string) => ({ toolUse: { input: value } }), close: '}}' },
  {
    key: 'reasoningContent":{"text":"',
    build: (value: string) => ({ reasoningContent: { text: value } }),
    close: '}}',
  },
] as const;
/** Characters that make a JSON string need `JSON.parse` (escapes) or be invalid (raw controls). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON forbids raw in a string
const needsParse = /[\\\u0000-\u001f]/;

/** The string the last `readString` read (a module slot, not an object per call: this runs per frame). */
let read = '';

/**
 * The JSON string whose opening quote is just before `from`: its value into `read`, and the
 * index after its closing quote; -1 when it does not close or is not valid.
 */
function readString(body: string, from: number): number {
  let end = body.indexOf('"', from);
  // A quote after an odd number of backslashes is escaped: keep looking.
  while (end !== -1) {
    let slashes = 0;
    while (body.charCodeAt(end - 1 - slashes) === 92) slashes += 1;
    if (slashes % 2 === 0) break;
    end = body.indexOf('"', end + 1);
  }
  if (end === -1) return -1;
  const raw = body.slice(from, end);
  if (!needsParse.test(raw)) read = raw;
  else {
    try {
      read = JSON.parse(body.slice(from - 1, end + 1)) as string;
    } catch {
      return -1;
    }
  }
  return end + 1;
}

/** The end of the payload from `at`: `}`, or the padding member and `}`; its `p` when present, null when absent, undefined when neither. */
function readTail(body: string, at: number): string | null | undefined {
  if (at === body.length - 1 && body.charCodeAt(at) === 125) return null;
  if (!body.startsWith(',"p":"', at)) return undefined;
  const end = readString(body, at + 6);
  return end === body.length - 1 && body.charCodeAt(end) === 125 ? read : undefined;
}

/** The two common shapes' value, or undefined for anything else (exported for the test that holds it to `JSON.parse`). */
export function fastPayload(body: string): object | undefined {
  if (body.startsWith(chunkPrefix)) {
    const end = readString(body, chunkPrefix.length);
    if (end === -1) return undefined;
    const bytes = read;
    const p = readTail(body, end);
    return p === undefined ? undefined : p === null ? { bytes } : { bytes, p };
  }
  if (!body.startsWith(deltaPrefix)) return undefined;
  // A plain JSON integer: 0, or no leading zero; nine digits at most (exact as a double).
  let at = deltaPrefix.length;
  const first = body.charCodeAt(at);
  if (first === 48) at += 1;
  else while (at - deltaPrefix.length < 9 && isDigit(body.charCodeAt(at))) at += 1;
  if (at === deltaPrefix.length || isDigit(body.charCodeAt(at)) || !body.startsWith(deltaKey, at)) return undefined;
  const contentBlockIndex = Number(body.slice(deltaPrefix.length, at));
  at += deltaKey.length;
  for (const member of deltaMembers) {
    if (!body.startsWith(member.key, at)) continue;
    const end = readString(body, at + member.key.length);
    if (end === -1 || !body.startsWith(member.close, end)) return undefined;
    const delta = member.build(read);
    const p = readTail(body, end + member.close.length);
    return p === undefined ? undefined : p === null ? { contentBlockIndex, delta } : { contentBlockIndex, delta, p };
  }
  return undefined;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}
