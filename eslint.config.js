// Lint rules, including the layering of DESIGN.md: a layer imports only from
// the layers below it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const LAYERS = ['runtime', 'behaviours', 'missions', 'wire', 'security', 'transport', 'proxy', 'cli'];

/** For each layer, forbid importing any layer above it (and the public index). */
const layerRules = LAYERS.map((layer, i) => ({
  files: [`lib/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: [...LAYERS.slice(i + 1).map((above) => `**/${above}/**`), '**/index.js'],
            message: `lib/${layer} may import only from layers below it (${LAYERS.slice(0, i).join(', ') || 'none'}); see DESIGN.md.`,
          },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'docs/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', setTimeout: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  ...layerRules,
);
