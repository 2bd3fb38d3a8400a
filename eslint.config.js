import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  // examples/ are user projects with their own types; test/e2e/examples.test.ts type-checks each one.
  { ignores: ['node_modules/', 'dist/', '**/.wrangler/', 'test-results/', 'examples/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  ...tseslint.configs.stylistic,
  {
    rules: {
      // Handlers may return anything; `void | Promise<void>` callbacks are part of the runtime contract.
      '@typescript-eslint/no-invalid-void-type': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error', 'warn'] }],
    },
  },
  {
    files: ['test/**', 'bench/**', 'scripts/**', '*.config.ts'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
)
