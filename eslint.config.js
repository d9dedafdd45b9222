// Lint runs on the TypeScript sources as-is (no build step): type stripping runs them directly.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettierConfig from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', '**/dist/**', 'crds/**', 'charts/**'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.object.name='vi'][callee.property.name='mock']",
          message: 'Inject dependencies instead of mocking our own modules.',
        },
      ],
    },
  },
  // Formatting is Prettier's (npm run format); eslint keeps to correctness.
  prettierConfig,
);
