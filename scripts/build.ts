// Builds the two shipped executables (contract.md "Build artefacts"):
//   dist/istio-cni   — the CNI plugin: esbuild bundle (metafile kept for the bundle budget check) compiled by
//                      bun into one self-contained ELF (fastest start of the measured options, runtime-measurements.md)
//   dist/install-cni — the node agent, compiled by bun the same way, so the image needs no Node.js at all.
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const bun = path.join(root, 'node_modules', '.bin', 'bun');
mkdirSync(path.join(root, 'build'), { recursive: true });
mkdirSync(path.join(root, 'dist'), { recursive: true });

// The plugin's logger is pino with a plain synchronous `write` destination (src/log/plugin-logger.ts): pino's
// worker-thread transports and its SonicBoom file/stdout streams are never used. pino still requires `thread-stream`,
// `worker_threads` and `sonic-boom` at load time (only for `pino.transport()`, `pino.destination()` and the default
// stdout stream), which costs ≈ 2–3 ms of CPU per plugin process under bun. Replace them with stubs that throw if
// one is ever used (`instanceof` checks against the stub class stay false, as they are for our destination).
const noPinoTransports: Plugin = {
  name: 'no-pino-transports',
  setup(b) {
    b.onResolve({ filter: /^(thread-stream|sonic-boom|worker_threads|node:worker_threads)$/ }, (args) => ({
      path: args.path,
      namespace: 'stub',
    }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
      contents: [
        'class Unbundled { constructor() { throw new Error("pino transports and destinations are not bundled in istio-cni"); } }',
        'module.exports = Object.assign(Unbundled, { isMainThread: true, Worker: Unbundled });',
      ].join('\n'),
      loader: 'js',
    }));
  },
};

async function bundle(entry: string, name: string, plugins: Plugin[] = []): Promise<string> {
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
    plugins,
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
  compile(await bundle('bin/istio-cni.ts', 'istio-cni', [noPinoTransports]), 'istio-cni', true);
}
if (only === undefined || only === 'agent') {
  // The agent is compiled from source: bun resolves its dependencies' package exports itself.
  compile(path.join(root, 'bin/install-cni.ts'), 'install-cni', false);
}
