import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCodes } from '../src/errors.ts';

/** The README's error table is the one place a user reads what each proxy or admin error means. */
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function documentedRows(): Map<string, { status: number; type: string }> {
  const rows = new Map<string, { status: number; type: string }>();
  for (const match of readme.matchAll(/^\| `((?:PRX|ADM)_[A-Z_]+)` \| (\d{3}) \| `([a-z_]+)` \|/gm))
    rows.set(match[1] ?? '', { status: Number(match[2]), type: match[3] ?? '' });
  return rows;
}

describe('the error model is documented', () => {
  it('every code in core/src/errors.ts has a README row with its status and type', () => {
    const rows = documentedRows();
    for (const [code, spec] of Object.entries(errorCodes))
      expect(rows.get(code), `README error table row for ${code}`).toEqual({ status: spec.status, type: spec.type });
  });

  it('the README documents no code that does not exist', () => {
    const known = new Set(Object.keys(errorCodes));
    expect([...documentedRows().keys()].filter((code) => !known.has(code))).toEqual([]);
  });
});
