import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  // examples/ are user projects with their own types; test/e2e/examples.test.ts type-checks each one.
  { ignores: ['node_modules/', 'dist/', '**/.wrangler/', 'test-results/', 'examples/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  ...tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // Each file is checked with the tsconfig that covers it (src/, test/*/, bench/); the few that no
        // tsconfig includes get the root one's options.
        projectService: {
          allowDefaultProject: ['*.config.ts'],
          defaultProject: 'tsconfig.json',
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Handlers may return anything; `void | Promise<void>` callbacks are part of the runtime contract.
      '@typescript-eslint/no-invalid-void-type': 'off',
      // `(ping) => socket.send(ping)` as a callback is plain; the rule still catches a void value used as one.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error', 'warn'] }],
      // A caught value is passed on as it came; asserting it is an Error would only hide what it is.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    // Plain JavaScript outside every tsconfig: the syntax rules only.
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['test/**', 'bench/**', 'scripts/**', 'tools/**', '*.config.ts'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
)
