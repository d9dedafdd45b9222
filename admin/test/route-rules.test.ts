import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const routesDir = fileURLToPath(new URL('../src/routes/', import.meta.url));

/** What the route rules (no-restricted-syntax) of the repository's eslint config say of `source` as a route file. */
async function lintAsRoute(source: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root });
  const [result] = await eslint.lintText(source, { filePath: `${routesDir}probe.ts` });
  return (result?.messages ?? [])
    .filter((message) => message.ruleId === 'no-restricted-syntax')
    .map((message) => message.message);
}

const prelude = `import { Type, type Static } from 'typebox';
const body = Type.Object({ name: Type.String() });
declare const request: { body: unknown; query: unknown; params: unknown };
declare const db: { query(sql: string, params?: unknown[]): Promise<unknown[]> };
declare const name: string;
`;

/**
 * Route files (admin/src/routes) stay typed plugins over core/src/db: the class of defect the
 * refactor removed — request data cast instead of typed by its schema, SQL beside the handler,
 * the app imported back by its routes — is refused by lint, in every spelling seen before.
 */
describe('route files', () => {
  it.each([
    ['a cast to the schema type', 'export const x = request.body as Static<typeof body>;'],
    ['a cast of request data to anything', 'export const x = request.query as { name: string };'],
    ['a cast of params', 'export const x = (request.params as Static<typeof body>).name;'],
    ['a query call', 'export const rows = db.query(`SELECT 1`);'],
    ['a SELECT in a string', "export const sql = 'SELECT name FROM users';"],
    ['a FROM … WHERE fragment in a template', 'export const sql = `FROM usage_aggregates a WHERE a.x = ${name}`;'],
    ['an INSERT', "export const sql = 'INSERT INTO users (name) VALUES ($1)';"],
    ['an UPDATE', "export const sql = 'UPDATE users SET name = $1';"],
    ['a DELETE', "export const sql = 'DELETE FROM users';"],
  ])('refuses %s', async (what, line) => {
    const messages = await lintAsRoute(prelude + line);
    expect(messages.length, what).toBeGreaterThan(0);
    expect(messages.every((message) => /cast|Static|SQL/.test(message))).toBe(true);
  });

  it('accepts what routes legitimately say (HTTP methods, plain messages)', async () => {
    const ok = `export const routes = { 'DELETE /admin/api/users/:id': 1, 'GET /admin/api/usage': 2 };
export const message = \`ProxyUser \${name} still has access keys; delete them first\`;
export const hint = 'from must not be after to; select a shorter range';
export const typed = Type.Object({ body }) satisfies object;
`;
    expect(await lintAsRoute(prelude + ok)).toEqual([]);
  });

  it('every route file passes, and none imports the app that registers it', async () => {
    const files = (await readdir(routesDir)).filter((file) => file.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(3);
    const results = await new ESLint({ cwd: root }).lintFiles(files.map((file) => `${routesDir}${file}`));
    expect(
      results.flatMap((result) => result.messages.map((message) => `${result.filePath}: ${message.message}`)),
    ).toEqual([]);
    for (const file of files)
      expect({ file, importsApp: /from '\.\.\/app\.ts'/.test(await readFile(`${routesDir}${file}`, 'utf8')) }).toEqual({
        file,
        importsApp: false,
      });
  });
});
