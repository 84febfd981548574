// Lint policy: type-aware rules catch the bugs that matter in a short-lived CNI process (a forgotten await exits
// before the work is done), and import bans keep side effects in src/sys + src/kube and heavy modules off the
// plugin's hot path (style-anchors §D3).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const sideEffectModules = [
  'node:fs',
  'node:fs/promises',
  'node:child_process',
  'node:net',
  'node:http',
  'node:https',
  'execa',
  'chokidar',
  '@kubernetes/client-node',
];
const heavyForPlugin = ['@kubernetes/client-node', 'chokidar', 'commander', 'execa'];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'build/', '.lab/', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'it', 'describe', 'suite', 'before', 'after'],
            },
          ],
        },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/sys/**', 'src/kube/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: sideEffectModules.map((name) => ({
            name,
            message:
              'Side effects live in src/sys or src/kube; reach them through a port in src/sys/ports.ts.',
          })),
        },
      ],
      'no-restricted-properties': [
        'error',
        ...['env', 'exit', 'stdout', 'stderr', 'argv'].map((property) => ({
          object: 'process',
          property,
          message: 'Only bin/ and src/sys touch the real process.',
        })),
      ],
    },
  },
  {
    files: ['src/cni/**/*.ts', 'src/plugin/**/*.ts', 'src/rules/**/*.ts', 'bin/istio-cni.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: heavyForPlugin.map((name) => ({
            name,
            message: 'Keep heavy modules off the plugin path (runtime-measurements.md).',
          })),
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-console': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
