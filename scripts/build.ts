// Builds the two shipped executables (contract.md "Build artefacts"):
//   dist/istio-cni   — the CNI plugin: esbuild bundle (metafile kept for the bundle budget check) compiled by
//                      bun into one self-contained ELF (fastest start of the measured options, runtime-measurements.md)
//   dist/install-cni — the node agent, compiled by bun the same way, so the image needs no Node.js at all.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const bun = path.join(root, 'node_modules', '.bin', 'bun');
mkdirSync(path.join(root, 'build'), { recursive: true });
mkdirSync(path.join(root, 'dist'), { recursive: true });

async function bundle(entry: string, name: string): Promise<string> {
  const outfile = path.join(root, 'build', `${name}.cjs`);
  const result = await build({
    entryPoints: [path.join(root, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  writeFileSync(path.join(root, 'build', `${name}.meta.json`), JSON.stringify(result.metafile));
  return outfile;
}

function compile(input: string, name: string, bytecode: boolean): void {
  const args = [
    'build',
    '--compile',
    '--minify',
    ...(bytecode ? ['--bytecode'] : []),
    '--no-compile-autoload-dotenv',
    '--no-compile-autoload-bunfig',
    '--target=bun-linux-x64',
    input,
    '--outfile',
    path.join(root, 'dist', name),
  ];
  execFileSync(bun, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}

const only = process.argv[2];
if (only === undefined || only === 'plugin') {
  compile(await bundle('bin/istio-cni.ts', 'istio-cni'), 'istio-cni', true);
}
if (only === undefined || only === 'agent') {
  // The agent is compiled from source: bun resolves its dependencies' package exports itself.
  compile(path.join(root, 'bin/install-cni.ts'), 'install-cni', false);
}
