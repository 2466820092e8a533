// `npm run lint`: ESLint's and typescript-eslint's recommended rules, type-aware (floating
// promises, unsafe `any`, misused promises), on everything tsc checks. Rules turned off say why.
import js from '@eslint/js'
import { defineConfig } from 'eslint/config'
import tseslint from 'typescript-eslint'

export default defineConfig(
  { ignores: ['dist/', 'data/', 'node_modules/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    // The test runner's reporter and the build script are plain JavaScript, outside tsconfig's files.
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['test/helpers/*.mjs', 'scripts/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // node:test's test() and describe() return promises that the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      // Fastify's hooks and handlers are async functions by convention (a returned promise instead
      // of done()), and the driver interfaces' methods are async whether or not they wait.
      '@typescript-eslint/require-await': 'off',
      // tsc checks this already (noUnusedLocals, noUnusedParameters).
      '@typescript-eslint/no-unused-vars': 'off',
      // String(value) of an unknown (a config value, a JSON field) is how its message shows it.
      '@typescript-eslint/no-base-to-string': 'off',
      // Start-up errors are re-thrown as one line that carries the cause's message.
      'preserve-caught-error': 'off',
      // Kysely's expression builder is destructured, as its documentation does: `({ not, exists }) => ...`.
      '@typescript-eslint/unbound-method': 'off',
      // Fixable with `eslint --fix`; off until the tree has been through it once.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
  {
    // Kysely's migrations take Kysely<any>: they run before (and define) the typed schema.
    files: ['src/store/migrations*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Tests and benchmarks read JSON answers as `any` and assert on them, and patch prototypes.
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // The few JavaScript files (bin/skiff.js, this one) are outside the TypeScript project.
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } },
  },
)
