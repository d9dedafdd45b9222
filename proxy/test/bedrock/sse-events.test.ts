import { describe, expect, it } from 'vitest';
import { deltaEvent, sse, type StringDelta } from '../../src/adapters/bedrock/sse-events.ts';

const kinds: StringDelta[] = [
  ['text_delta', 'text'],
  ['input_json_delta', 'partial_json'],
  ['thinking_delta', 'thinking'],
  ['signature_delta', 'signature'],
];

/** Strings JSON.stringify escapes (quotes, backslashes, controls, lone surrogates) or must leave alone (U+2028, astral, BOM). */
const strings = [
  '',
  'tokens tokens ',
  'Héllo wörld €',
  '𝄞🤔 astral',
  '"quoted" and \\backslash\\ and /slash/',
  'line\nbreak\r\nand\ttab and \u0000\u0001\u001f\u007f',
  'lone \ud800 high and \udc00 low surrogates, and a pair \ud83e\udd14',
  '\u2028\u2029 separators and \ufeff BOM',
  '{"q":"ünï"}',
  '</script><!--',
  'x'.repeat(100_000),
];

/** Values a malformed upstream might send where a string belongs. */
const notStrings: unknown[] = [undefined, null, 42, true, { text: 'x' }, ['a'], Number.NaN];

describe('deltaEvent, the content_block_delta template', () => {
  it('gives the same bytes as the general sse() of the whole object, for every kind and awkward string', () => {
    for (const kind of kinds)
      for (const value of strings)
        for (const index of [0, 1, 7, 123_456]) {
          const [type, field] = kind;
          const general = sse('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type, [field]: value },
          });
          expect(deltaEvent(index, kind, value), `${type} ${JSON.stringify(value).slice(0, 40)}`).toBe(general);
        }
  });

  it('takes the general path for a value that is not a string', () => {
    for (const kind of kinds)
      for (const value of notStrings) {
        const [type, field] = kind;
        const general = sse('content_block_delta', {
          type: 'content_block_delta',
          index: 3,
          delta: { type, [field]: value },
        });
        expect(deltaEvent(3, kind, value)).toBe(general);
      }
  });

  it('never puts a raw line break in the data line', () => {
    for (const value of strings)
      expect(deltaEvent(0, ['text_delta', 'text'], value).slice(0, -2)).not.toMatch(/[\r\n].*[\r\n]/s);
  });
});
