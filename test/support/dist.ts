// The shipped executables as the integration tests run them: `npm test` builds dist/ first; a single test file run
// on its own builds what it needs once.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

/** Path of dist/<name>, built with scripts/build.ts when missing. */
export function distExecutable(name: 'istio-cni' | 'install-cni'): string {
  const executable = path.join(REPO_ROOT, 'dist', name);
  if (!existsSync(executable)) {
    execFileSync(
      path.join(REPO_ROOT, 'node_modules/.bin/node'),
      [path.join(REPO_ROOT, 'scripts/build.ts'), name === 'istio-cni' ? 'plugin' : 'agent'],
      { stdio: 'inherit' },
    );
  }
  return executable;
}
