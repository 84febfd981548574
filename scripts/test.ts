// `npm test`: builds the shipped executables (integration and e2e tests run dist/ as the runtime would), then
// runs every suite with node's own test runner, and the Bun-only ports' contract tests under `bun test`.
// `npm test -- unit` (or `npm run test:unit`) runs only the fast unit suite; `--update-golden` rewrites golden
// files (t.assert.fileSnapshot).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const updateGolden = args.includes('--update-golden');
const requested = args.filter((arg) => !arg.startsWith('--'));
const suites = requested.length > 0 ? requested : ['unit', 'integration', 'e2e'];

function run(command: string, commandArgs: string[]): number {
  const result = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit' });
  return result.status ?? 1;
}

// The host tools the integration and e2e suites drive (iptables, nft, nsenter, containerd, runc, python3, openssl,
// gcc, ...) are installed when missing (idempotent; root), so `npm ci && npm test` works on a fresh Debian machine.
// The unit suite alone (`npm run test:unit`, a developer's loop) installs nothing.
if (suites.some((suite) => suite !== 'unit') && existsSync('/usr/bin/dpkg-query')) {
  const status = run('bash', [path.join(root, 'scripts', 'install-host-packages.sh')]);
  if (status !== 0) {
    console.error('npm test: installing the host packages failed (the tests need root on Debian)');
    process.exit(status);
  }
}

if (suites.some((suite) => suite !== 'unit')) {
  const status = run(process.execPath, [path.join(root, 'scripts', 'build.ts')]);
  if (status !== 0) process.exit(status);
}

// Unit and integration files run two at a time (each integration test makes uniquely named namespaces); the
// end-to-end files share one containerd lab per file and run one at a time.
// Every test has a time limit, so a regression that stops an awaited event from ever coming fails its test
// instead of hanging the run (the slowest test of each group takes a small fraction of its limit).
const groups: Array<{ globs: string[]; concurrency: number; timeoutMs: number }> = [];
const parallel = suites.filter((suite) => suite === 'unit' || suite === 'integration');
if (parallel.length > 0) {
  groups.push({
    globs: parallel.map((suite) => `test/${suite}/**/*.test.ts`),
    concurrency: 2,
    timeoutMs: 180_000,
  });
}
if (suites.includes('e2e'))
  groups.push({ globs: ['test/e2e/**/*.test.ts'], concurrency: 1, timeoutMs: 600_000 });

let failed = 0;
for (const group of groups) {
  const status = run(process.execPath, [
    '--test',
    `--test-concurrency=${group.concurrency}`,
    `--test-timeout=${group.timeoutMs}`,
    ...(updateGolden ? ['--test-update-snapshots'] : []),
    ...group.globs,
  ]);
  if (status !== 0) failed = status;
}
// The compiled plugin's Bun-only ports (Bun.spawn, …) run their contract tests under bun itself: `bun test` runs
// node:test files, and Node cannot load those modules.
if (suites.includes('integration')) {
  const status = run(path.join(root, 'node_modules', '.bin', 'bun'), ['test', './test/bun']);
  if (status !== 0) failed = status;
}
process.exitCode = failed;
