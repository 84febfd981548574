// One `bun build --compile` of an executable, with the options the shipped ones are built with (scripts/build.ts);
// the plugin bench compiles an empty program the same way, to measure the runtime's own start as a floor.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const bun = path.join(root, 'node_modules', '.bin', 'bun');

/** Bun's compile target for a Node.js `process.arch`: the image is built natively per platform (the Dockerfile's
 * build stage runs on the target platform), so the build machine's architecture is the image's. */
export function bunTarget(arch: string): string {
  if (arch === 'x64') return 'bun-linux-x64';
  if (arch === 'arm64') return 'bun-linux-arm64';
  throw new Error(`no bun executable target for ${arch}: bun compiles for linux x64 and arm64 only`);
}

/** Bun's options for one executable. `shortLived`: the plugin lives ~15 ms per pod, so it gets bytecode (parsing is
 * most of a cold start) and a 100× JIT tier-up threshold (compiling hot code on background threads cannot pay off
 * before the process ends; measured −0.5–1 ms wall and −1.5 ms CPU per ADD). The agent is long-lived: defaults. */
export function bunCompile(input: string, outfile: string, shortLived: boolean): void {
  const args = [
    'build',
    '--compile',
    '--minify',
    ...(shortLived ? ['--bytecode', '--compile-jit-policy=100'] : []),
    '--no-compile-autoload-dotenv',
    '--no-compile-autoload-bunfig',
    `--target=${bunTarget(process.arch)}`,
    input,
    '--outfile',
    outfile,
  ];
  execFileSync(bun, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
