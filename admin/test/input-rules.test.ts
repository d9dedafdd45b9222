import { describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { multiLine, singleLine, singleLinePattern } from '@ccproxy/operator';
import { jsonDepthExceeds } from '../src/body-parsing.ts';
import { textProblem, textProblems } from '../src/text-rule.ts';
import { asDocumented } from '../src/openapi.ts';

describe('jsonDepthExceeds', () => {
  it('counts nesting, not brackets inside strings or escaped quotes', () => {
    expect(jsonDepthExceeds('[[[]]]', 3)).toBe(false);
    expect(jsonDepthExceeds('[[[[]]]]', 3)).toBe(true);
    expect(jsonDepthExceeds('{"a":{"b":{"c":1}}}', 3)).toBe(false);
    expect(jsonDepthExceeds('{"a":{"b":{"c":{}}}}', 3)).toBe(true);
    expect(jsonDepthExceeds(JSON.stringify({ a: '[[[[[[{{{{' }), 1)).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ a: 'quote " then [[[[', b: '\\' }), 1)).toBe(false);
    expect(jsonDepthExceeds(`[${'['.repeat(10_000)}`, 64)).toBe(true);
    // Siblings do not add up: depth returns on each close.
    expect(jsonDepthExceeds('[' + '[],'.repeat(1000) + '[]]', 2)).toBe(false);
  });
});

describe('the text rule', () => {
  it('refuses C0, DEL, C1 and lone surrogates, and a line feed only where the schema is single-line', () => {
    for (const bad of ['\u0000', '\t', '\r', '\n', '\u001b', '\u007f', '\u0085', '\u009f', '\ud800', 'a\udc00b'])
      expect(textProblem(`x${bad}y`, false), JSON.stringify(bad)).toBeDefined();
    expect(textProblem('one\ntwo', true)).toBeUndefined();
    expect(textProblem('one\r\ntwo', true)).toBeDefined();
    expect(textProblem('Zoë 🚀 日本 \u00a0', false)).toBeUndefined();
    expect(textProblem('a\u0000', false)).toContain('U+0000');
  });

  it('walks objects, arrays, keys and unions, naming each path', () => {
    const schema = Type.Object({
      name: singleLine(),
      description: multiLine(),
      tags: Type.Array(Type.String()),
      map: Type.Record(Type.String(), Type.String()),
      either: Type.Union([multiLine(), Type.Array(Type.String())]),
    });
    expect(textProblems(schema, { name: 'a', description: 'b\nc', either: 'x\ny' }, 'body')).toEqual([]);
    expect(
      textProblems(schema, { name: 'a\n', tags: ['ok', 'b\u0000'], map: { 'k\u0001': 'v', k: 'v\u0085' } }, 'body'),
    ).toEqual([
      'body/name: must not contain control characters (found U+000A)',
      'body/tags/1: must not contain control characters (found U+0000)',
      'body/map: key "k\\u0001" must not contain control characters (found U+0001)',
      'body/map/k: must not contain control characters (found U+0085)',
    ]);
  });
});

describe('asDocumented', () => {
  it('drops defaulted properties from required, adds the text pattern to free strings, and keeps typebox working', () => {
    const schema = Type.Object({
      a: Type.String(),
      b: Type.Integer({ default: 5 }),
      c: Type.String({ pattern: '^x$' }),
      d: Type.Optional(Type.Object({ e: Type.Record(Type.String(), Type.String(), { default: {} }) })),
    });
    const documented = asDocumented(schema);
    expect(documented.required).toEqual(['a', 'c']);
    expect((documented.properties.a as { pattern?: string }).pattern).toBe(singleLinePattern);
    expect((documented.properties.c as { pattern?: string }).pattern).toBe('^x$');
    expect((documented.properties.d as { required?: string[] }).required).toBeUndefined();
    expect(schema.required).toEqual(['a', 'b', 'c']);
    // Value.Default needs typebox's non-enumerable kind markers, which the copy keeps.
    const value = Value.Default(documented, { a: 'x', c: 'x', d: {} });
    expect(value).toEqual({ a: 'x', b: 5, c: 'x', d: { e: {} } });
    expect(Value.Check(documented, value)).toBe(true);
  });
});
