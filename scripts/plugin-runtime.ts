// The plugin as it ships (contract.md "istio-cni"), in dist/ and in the image's /opt/cni/bin:
//   istio-cni                 a static launcher (scripts/istio-cni-launcher.c)
//   istio-cni.d/istio-cni     the bun-compiled plugin
//   istio-cni.d/ld.so         the glibc loader it is linked against, and beside it the shared libraries ldd names
// The runtime execs the plugin in the host's root, so it must not depend on the host's libc: see the launcher.
// Used by scripts/build.ts (dist/) and scripts/image-rootfs.ts (the image, with each library's Debian package).
import { execFileSync, spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { PLUGIN_RUNTIME_DIR } from '../src/installer/agent.ts';

const root = path.resolve(import.meta.dirname, '..');

/** The plugin's runtime directory beside it: the name the agent installs, watches and removes. */
export const RUNTIME_DIR = PLUGIN_RUNTIME_DIR;

export interface RuntimeFile {
  /** The file on this machine (symlinks resolved). */
  readonly source: string;
  /** Its name in the runtime directory: the loader is `ld.so`, each library its soname. */
  readonly name: string;
}

/** The loader and shared libraries a dynamically linked executable needs, as ldd resolves them here. */
export function runtimeFiles(executable: string): RuntimeFile[] {
  const files: RuntimeFile[] = [];
  for (const line of execFileSync('ldd', [executable], { encoding: 'utf8' }).split('\n')) {
    const library = /^\s*(\S+)\s+=>\s+(\/\S+)\s+\(0x/.exec(line);
    const loader = /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (library?.[1] !== undefined && library[2] !== undefined) {
      files.push({ source: realpathSync(library[2]), name: library[1] });
    } else if (loader?.[1] !== undefined) {
      files.push({ source: realpathSync(loader[1]), name: 'ld.so' });
    }
  }
  if (!files.some((file) => file.name === 'ld.so')) {
    throw new Error(`ldd names no loader for ${executable}: is it a dynamically linked ELF executable?`);
  }
  return files;
}

/** `gcc -static` of one C file (the Debian packages gcc and libc6-dev). */
export function compileStatic(source: string, output: string): void {
  const compiled = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-static', '-o', output, source], {
    encoding: 'utf8',
  });
  if (compiled.error !== undefined || compiled.status !== 0) {
    throw new Error(
      `building ${path.basename(source)} failed (needs the Debian packages gcc and libc6-dev): ${compiled.error?.message ?? compiled.stderr}`,
    );
  }
}

/** The plugin launcher's C source. */
export const LAUNCHER_SOURCE = path.join(root, 'scripts', 'istio-cni-launcher.c');

/** What `gcc -static` links into a launcher: glibc's libc.a (and its crt objects) and gcc's libgcc.a. */
export function staticArchives(): string[] {
  return ['-print-file-name=libc.a', '-print-libgcc-file-name'].map((flag) =>
    realpathSync(execFileSync('gcc', [flag], { encoding: 'utf8' }).trim()),
  );
}
