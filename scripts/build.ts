// Builds the two shipped executables (contract.md "Build artefacts"):
//   dist/istio-cni   — the CNI plugin: esbuild bundle (metafile kept for the bundle budget check) compiled by
//                      bun into one ELF (fastest start of the measured options, runtime-measurements.md), in
//                      dist/istio-cni.d with the glibc it runs on, behind a static launcher (scripts/plugin-runtime.ts)
//   dist/install-cni — the node agent, compiled by bun the same way, so the image needs no Node.js at all.
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bunCompile } from './bun-compile.ts';
import { forbiddenPackagesIn } from './plugin-bundle-budget.ts';
import { compileStatic, LAUNCHER_SOURCE, RUNTIME_DIR, runtimeFiles } from './plugin-runtime.ts';

const root = path.resolve(import.meta.dirname, '..');
mkdirSync(path.join(root, 'build'), { recursive: true });
mkdirSync(path.join(root, 'dist'), { recursive: true });

// The plugin's logger is pino with a plain synchronous `write` destination (src/log/plugin-logger.ts): pino's
// worker-thread transports, its SonicBoom file/stdout streams and its caller lookup (only used to resolve transport
// targets) are never used, and its `hostname` is never emitted (our `base` replaces pino's). Loading them anyway
// costs ≈ 3–4 ms of every plugin process under bun, mostly in the Node built-ins they pull in (node:util, node:os,
// node:url, module, worker_threads, diagnostics_channel; node:events alone ≈ 1 ms): replace them, for pino's own
// modules only, with stubs.
// Anything that would need a real transport or destination throws instead of misbehaving.
const PINO_STUBS: Readonly<Record<string, string>> = {
  // pino.transport(), and the destinations that need thread-stream / sonic-boom.
  'thread-stream': 'module.exports = unbundled;',
  'sonic-boom': 'module.exports = unbundled;',
  './transport': 'module.exports = unbundled;',
  './lib/transport': 'module.exports = unbundled;',
  worker_threads: 'module.exports = { isMainThread: true, Worker: unbundled };',
  // getCallers(): only consulted to resolve relative transport targets.
  './caller': 'module.exports = () => [];',
  './lib/caller': 'module.exports = () => [];',
  // pino's default `base` ({pid, hostname}) is replaced by ours.
  'node:os': 'module.exports = { hostname: () => "" };',
  // The logger's prototype is an EventEmitter only for 'level-change' listeners (the plugin registers none).
  'node:events': `class EventEmitter {
    on(name, fn) { ((this._ev ??= {})[name] ??= []).push(fn); return this; }
    emit(name, ...args) { const fns = this._ev?.[name]; for (const fn of fns ?? []) fn.apply(this, args); return !!fns; }
    listenerCount(name) { return this._ev?.[name]?.length ?? 0; }
  }
  module.exports = { EventEmitter };`,
  // Tracing of asJson for diagnostics_channel subscribers: a CNI plugin process has none.
  'node:diagnostics_channel':
    'module.exports = { tracingChannel: () => ({ hasSubscribers: false, traceSync: (fn, _ctx, self, ...args) => fn.apply(self, args) }) };',
};
const leanPino: Plugin = {
  name: 'lean-pino',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const fromPino = /[\\/]node_modules[\\/]pino[\\/]/.test(args.importer);
      const bare = args.path.replace(/^node:(?=worker_threads$)/, '');
      if (fromPino && Object.hasOwn(PINO_STUBS, bare)) return { path: bare, namespace: 'pino-stub' };
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'pino-stub' }, (args) => ({
      contents: [
        'function unbundled() { throw new Error("pino transports and destinations are not bundled in istio-cni"); }',
        PINO_STUBS[args.path],
      ].join('\n'),
      loader: 'js',
    }));
  },
};

async function bundle(
  entry: string,
  name: string,
  plugins: Plugin[] = [],
): Promise<{ outfile: string; inputs: string[] }> {
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
  return { outfile, inputs: Object.keys(result.metafile.inputs) };
}

const only = process.argv[2];
if (only === undefined || only === 'plugin') {
  // dist/istio-cni is the launcher, dist/istio-cni.d its runtime (scripts/plugin-runtime.ts): tests and the bench run
  // the plugin as it ships.
  const runtime = path.join(root, 'dist', RUNTIME_DIR);
  rmSync(runtime, { recursive: true, force: true });
  mkdirSync(runtime);
  const plugin = path.join(runtime, 'istio-cni');
  const pluginBundle = await bundle('bin/istio-cni.ts', 'istio-cni', [leanPino]);
  const forbidden = forbiddenPackagesIn(pluginBundle.inputs);
  if (forbidden.length > 0) {
    console.error(`build: the plugin bundle contains forbidden packages: ${forbidden.join(', ')}`);
    process.exit(1);
  }
  bunCompile(pluginBundle.outfile, plugin, true);
  for (const file of runtimeFiles(plugin)) {
    const target = path.join(runtime, file.name);
    copyFileSync(file.source, target);
    chmodSync(target, statSync(file.source).mode & 0o7777);
  }
  compileStatic(LAUNCHER_SOURCE, path.join(root, 'dist', 'istio-cni'));
}
if (only === undefined || only === 'agent') {
  // The agent is compiled from source: bun resolves its dependencies' package exports itself.
  bunCompile(path.join(root, 'bin/install-cni.ts'), path.join(root, 'dist', 'install-cni'), false);
}
