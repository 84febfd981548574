// The shipped executables as the integration tests run them: `npm test` builds dist/ first; a single test file run
// on its own builds what it needs once.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import path from 'node:path';
import { PLUGIN_RUNTIME_DIR } from '../../src/installer/agent.ts';

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

/** The plugin as the image ships it in CNI_BIN_SOURCE_DIR: the launcher `istio-cni` and its runtime directory
 * `istio-cni.d` (scripts/plugin-runtime.ts), copied into `dir` with their modes. */
export function copyPluginInto(dir: string): void {
  const launcher = distExecutable('istio-cni');
  cpSync(launcher, path.join(dir, 'istio-cni'));
  cpSync(path.join(path.dirname(launcher), PLUGIN_RUNTIME_DIR), path.join(dir, PLUGIN_RUNTIME_DIR), {
    recursive: true,
  });
}

export interface ProcessRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the plugin as a runtime does: CNI_* env (PATH added), the netconf on stdin, both outputs collected. */
export function runPlugin(env: Record<string, string>, stdin: string): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(distExecutable('istio-cni'), [], {
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ exitCode: code ?? -1, stdout, stderr }));
    child.stdin.on('error', () => {
      // EPIPE when the plugin stops reading an oversized stdin.
    });
    child.stdin.end(stdin);
  });
}
