import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dbDir = fileURLToPath(new URL('../src/db/', import.meta.url));

/**
 * The items of every ORDER BY in `source`, each without its direction. The clause ends at
 * LIMIT/OFFSET/FOR, at the end of the SQL string, or at the `)` closing the subquery it is in.
 */
function orderByItems(source: string): string[] {
  const items: string[] = [];
  for (const match of source.matchAll(/ORDER BY\s/g)) {
    let depth = 0;
    let item = '';
    for (let at = match.index + match[0].length; at < source.length; at++) {
      const char = source[at] as string;
      if (depth === 0 && /^(LIMIT|OFFSET|FOR)\b/.test(source.slice(at))) break;
      if (depth === 0 && (char === '`' || char === "'" || char === ')')) break;
      if (char === '(' || char === '{') depth++;
      if (char === ')' || char === '}') depth--;
      if (depth === 0 && char === ',') {
        items.push(item);
        item = '';
      } else item += char;
    }
    items.push(item);
  }
  return items.map((item) =>
    item
      .replace(/\s+NULLS\s+(FIRST|LAST)\s*$/i, '')
      .replace(/\s+(ASC|DESC|\$\{[a-z]+\})\s*$/i, '')
      .trim(),
  );
}

/** A bare name: Postgres sorts by the output column of that name first (`id::text` AS id: 10 before 9). */
const bare = (item: string) => /^[a-z_][a-z0-9_]*$/i.test(item);

/**
 * Postgres resolves a simple name in ORDER BY to an output column before a table column: with
 * `SELECT id::text …  ORDER BY id` the audit trail sorted its ids as text (9, 8, …, 3, 26, 25 …).
 * Every ORDER BY of core/src/db names a qualified column, a position or an expression, never a
 * bare name, so no output column (a `::text` id, an alias) can take its place.
 */
describe('ORDER BY in core/src/db', () => {
  it('sorts by a qualified column, a position or an expression, never a bare name', async () => {
    // The scan itself: what it reads as bare, and what not.
    expect(orderByItems('`SELECT id::text FROM t ORDER BY ${column} ${direction}, id ${direction} LIMIT 1`')).toEqual([
      '${column}',
      'id',
    ]);
    expect(
      orderByItems("'(SELECT a FROM t WHERE x ORDER BY crossed_at LIMIT $1 FOR UPDATE) ORDER BY a.b DESC NULLS LAST'"),
    ).toEqual(['crossed_at', 'a.b']);
    expect(orderByItems('`GROUP BY 1, 2 ORDER BY 1, sum(a.x + a.y) DESC LIMIT $3`').filter(bare)).toEqual([]);
    const files = (await readdir(dbDir)).filter((file) => file.endsWith('.ts'));
    const found: string[] = [];
    const bareOnes: string[] = [];
    for (const file of files) {
      const items = orderByItems(await readFile(`${dbDir}${file}`, 'utf8'));
      found.push(...items);
      bareOnes.push(...items.filter(bare).map((item) => `${file}: ORDER BY ${item}`));
    }
    expect(found.length).toBeGreaterThan(8);
    expect(bareOnes).toEqual([]);
  });
});
