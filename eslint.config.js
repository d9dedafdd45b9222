// Lint runs on the TypeScript sources as-is (no build step): type stripping runs them directly.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettierConfig from 'eslint-config-prettier';

const mockRule = {
  selector: "CallExpression[callee.object.name='vi'][callee.property.name='mock']",
  message: 'Inject dependencies instead of mocking our own modules.',
};

/** SQL as we write it (upper-case keywords): a `SELECT `, `FROM table`, `WHERE`, `JOIN`, `INSERT INTO`, `UPDATE t SET`, `DELETE FROM`. */
const sqlText = String.raw`/\b(SELECT\s|FROM\s+[a-z_]+|WHERE\b|JOIN\s|INSERT\s+INTO|UPDATE\s+[a-z_]+\s+SET|DELETE\s+FROM)/`;
const routeRules = [
  {
    selector: "TSAsExpression > TSTypeReference[typeName.name='Static']",
    message: 'Route handlers read request data typed by the route schema (TypeBox type provider); no `as Static<…>`.',
  },
  {
    selector: "TSAsExpression[expression.object.name='request']",
    message: 'Request data is typed by the route schema; do not cast it.',
  },
  {
    selector: "CallExpression[callee.property.name='query'], CallExpression[callee.property.name='transaction']",
    message: 'No SQL in route files: read through a function of core/src/db.',
  },
  { selector: `Literal[value=${sqlText}]`, message: 'No SQL in route files: it belongs in core/src/db.' },
  { selector: `TemplateElement[value.raw=${sqlText}]`, message: 'No SQL in route files: it belongs in core/src/db.' },
];

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', '**/dist/**', 'crds/**', 'charts/**'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', mockRule],
    },
  },
  // Nowhere in the admin is request data cast to its schema's type: it is typed by the schema.
  {
    files: ['admin/src/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', mockRule, routeRules[0]],
    },
  },
  // Admin route files stay typed plugins over the store and core/src/db: request data typed by
  // the route's schemas (TypeBox type provider), never cast; no SQL (it lives in core/src/db).
  {
    files: ['admin/src/routes/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', mockRule, ...routeRules],
    },
  },
  // Formatting is Prettier's (npm run format); eslint keeps to correctness.
  prettierConfig,
);
