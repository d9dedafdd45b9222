import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { admissionPolicyFile, renderAdmissionPolicy, renderCrds, toStructural } from '@ccproxy/operator';

const dir = fileURLToPath(new URL('../../crds/', import.meta.url));

describe('CRDs', () => {
  it('are committed exactly as generated from the typebox schemas, with the admission policy (run `npm run crds` after changing them)', () => {
    const rendered = { ...renderCrds(), [admissionPolicyFile]: renderAdmissionPolicy() };
    expect(readdirSync(dir).sort()).toEqual(Object.keys(rendered).sort());
    for (const [file, yaml] of Object.entries(rendered)) expect(readFileSync(`${dir}${file}`, 'utf8'), file).toBe(yaml);
  });

  it('document every field, so `kubectl explain` is useful at every level', () => {
    const undocumented: string[] = [];
    const walk = (schema: Record<string, unknown>, path: string): void => {
      // metadata may carry nothing but its type (the API server's rule); kubectl explains ObjectMeta itself.
      if (path.endsWith('.metadata')) return;
      if (typeof schema.description !== 'string' || schema.description.length < 5) undocumented.push(path);
      for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>))
        walk(child, `${path}.${name}`);
      if (typeof schema.items === 'object') walk(schema.items as Record<string, unknown>, `${path}[]`);
    };
    for (const [file, yaml] of Object.entries(renderCrds())) {
      const crd = parse(yaml) as {
        spec: { versions: Array<{ schema: { openAPIV3Schema: Record<string, unknown> } }> };
      };
      walk(crd.spec.versions[0]?.schema.openAPIV3Schema ?? {}, file);
    }
    expect(undocumented).toEqual([]);
  });

  it('are structural: a type everywhere, no typebox-only keywords, defaulted fields not required', () => {
    const walk = (schema: Record<string, unknown>, path: string): void => {
      expect(schema.type, path).toBeDefined();
      for (const keyword of ['anyOf', 'const', 'patternProperties'])
        expect(schema[keyword], `${path}.${keyword}`).toBeUndefined();
      expect(schema.additionalProperties === false, `${path}.additionalProperties`).toBe(false);
      for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>))
        walk(child, `${path}.${name}`);
      if (typeof schema.additionalProperties === 'object')
        walk(schema.additionalProperties as Record<string, unknown>, `${path}[*]`);
      if (typeof schema.items === 'object') walk(schema.items as Record<string, unknown>, `${path}[]`);
    };
    for (const [file, yaml] of Object.entries(renderCrds())) {
      const crd = parse(yaml) as {
        spec: { versions: Array<{ schema: { openAPIV3Schema: Record<string, unknown> } }> };
      };
      walk(crd.spec.versions[0]?.schema.openAPIV3Schema ?? {}, file);
    }
    expect(
      toStructural({
        type: 'object',
        required: ['a', 'b'],
        properties: { a: { type: 'string' }, b: { type: 'boolean', default: false } },
      }),
    ).toEqual({
      type: 'object',
      required: ['a'],
      properties: { a: { type: 'string' }, b: { type: 'boolean', default: false } },
    });
  });
});
