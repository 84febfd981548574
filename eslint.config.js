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
const sideEffectBans = sideEffectModules
  .filter((name) => !heavyForPlugin.includes(name))
  .map((name) => ({
    name,
    message: 'Side effects live in src/sys or src/kube; reach them through a port in src/sys/ports.ts.',
  }));
const heavyBans = heavyForPlugin.map((name) => ({
  name,
  message: 'Keep heavy modules off the plugin path (runtime-measurements.md).',
}));

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
    // Pure cores: no side-effect modules, and (as the plugin loads src/cni, src/plugin, src/rules) no heavy ones.
    // One rule entry per file set: a later `no-restricted-imports` for the same files replaces this one.
    files: ['src/**/*.ts'],
    ignores: ['src/sys/**', 'src/kube/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: [...sideEffectBans, ...heavyBans] }],
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
    // The adapters the plugin loads live here too (its bundle: log forwarding, exec, the pod source); the agent's
    // heavy libraries enter through bin/install-cni.ts only. The build fails on a forbidden package in the plugin
    // bundle as well (scripts/plugin-bundle-budget.ts).
    files: ['src/sys/**/*.ts', 'src/kube/**/*.ts', 'bin/istio-cni.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: heavyBans }],
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
