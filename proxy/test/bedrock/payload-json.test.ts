import { describe, expect, it } from 'vitest';
import { fastPayload, parsePayload } from '../../src/adapters/bedrock/payload-json.ts';

/**
 * The payload fast path against JSON.parse: the same value whenever it answers, JSON.parse's
 * throw whenever the body is not JSON, on the shapes it reads and on every near miss of them.
 */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const pieces = [
  'a',
  ' ',
  'é',
  '€',
  '𝄞',
  '\ud800',
  '\u0000',
  '\u001f',
  '"',
  '\\',
  '\\"',
  '/',
  '\n',
  '\u2028',
  '{',
  '}',
  ',',
];
function text(next: () => number, max: number): string {
  let out = '';
  for (let i = Math.floor(next() * max); i > 0; i -= 1) out += pieces[Math.floor(next() * pieces.length)];
  return out;
}

/** Bodies as Bedrock sends them: compact JSON, in its key order, sometimes padded. */
function shapes(next: () => number): string[] {
  const p = () => (next() < 0.5 ? {} : { p: text(next, 8) });
  const index = [0, 1, 9, 10, 123_456_789][Math.floor(next() * 5)] as number;
  const value = text(next, 30);
  return [
    JSON.stringify({ contentBlockIndex: index, delta: { text: value }, ...p() }),
    JSON.stringify({ contentBlockIndex: index, delta: { toolUse: { input: value } }, ...p() }),
    JSON.stringify({ contentBlockIndex: index, delta: { reasoningContent: { text: value } }, ...p() }),
    JSON.stringify({ bytes: Buffer.from(value).toString('base64'), ...p() }),
    JSON.stringify({ bytes: value, ...p() }),
  ];
}

const mutations = ['"', '\\', '}', '{', ',', ':', '0', '9', '-', ' ', 'x', '\n', '\u0000'];

/** The body's value by the fast path and by JSON.parse: equal, or both throw. */
function expectSame(body: string): void {
  let expected: unknown;
  try {
    expected = JSON.parse(body);
  } catch {
    expect(() => parsePayload(body), body).toThrow();
    return;
  }
  expect(parsePayload(body), body).toEqual(expected);
  const fast = fastPayload(body);
  if (fast !== undefined) expect(fast, body).toEqual(expected);
}

describe('payload fast path', () => {
  it('reads the common shapes itself (so the comparison below is not vacuous)', () => {
    for (const body of [
      '{"contentBlockIndex":0,"delta":{"text":"tokens tokens "}}',
      '{"contentBlockIndex":12,"delta":{"text":"a\\nb\\"c\\u00e9"},"p":"abcdefgh"}',
      '{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{\\"q\\":"}},"p":"x"}',
      '{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"hmm"}}}',
      '{"bytes":"eyJ0eXBlIjoiY29udGVudF9ibG9ja19kZWx0YSJ9","p":"abc"}',
    ])
      expect(fastPayload(body), body).toEqual(JSON.parse(body));
  });

  it('gives JSON.parse’s value on the shapes with awkward strings, and on every near miss', () => {
    for (let seed = 1; seed <= 60; seed += 1) {
      const next = random(seed);
      for (const body of shapes(next)) {
        expectSame(body);
        // Every prefix, every single-character replacement and insertion.
        for (let at = 0; at <= body.length; at += 1) {
          expectSame(body.slice(0, at));
          const char = mutations[Math.floor(next() * mutations.length)] as string;
          expectSame(body.slice(0, at) + char + body.slice(at + 1));
          expectSame(body.slice(0, at) + char + body.slice(at));
        }
      }
    }
  });

  it('leaves other shapes, orders, whitespace and numbers to JSON.parse', () => {
    for (const body of [
      '{"delta":{"text":"a"},"contentBlockIndex":0}',
      '{"contentBlockIndex": 0,"delta":{"text":"a"}}',
      '{"contentBlockIndex":01,"delta":{"text":"a"}}',
      '{"contentBlockIndex":-1,"delta":{"text":"a"}}',
      '{"contentBlockIndex":1e2,"delta":{"text":"a"}}',
      '{"contentBlockIndex":1234567890,"delta":{"text":"a"}}',
      '{"contentBlockIndex":0,"delta":{"text":"a","citation":{}}}',
      '{"contentBlockIndex":0,"delta":{"text":"a"},"p":"x","q":1}',
      '{"contentBlockIndex":0,"delta":{"text":"a"},"contentBlockIndex":1}',
      '{"bytes":"abc","bytes":"def"}',
      '{"bytes":"abc"} ',
    ]) {
      expect(fastPayload(body), body).toBeUndefined();
      expectSame(body);
    }
  });
});
