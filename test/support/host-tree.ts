// A temp directory tree standing in for the agent's host paths (CNI net dir, bin dir, the image's plugin source dir,
// run dir, service-account dir), shared by the agent's unit tests and its spawned-process integration tests.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface HostTree {
  readonly root: string;
  readonly net: string;
  readonly bin: string;
  readonly src: string;
  readonly run: string;
  readonly sa: string;
  remove(): void;
}

export interface HostTreeFiles {
  /** The files of the plugin source dir (CNI_BIN_SOURCE_DIR), by name; written executable. */
  readonly sources: Readonly<Record<string, string | Buffer>>;
  readonly token: string | Buffer;
  readonly ca: string | Buffer;
}

export function makeHostTree(prefix: string, files: HostTreeFiles): HostTree {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  const tree: HostTree = {
    root,
    net: `${root}/net`,
    bin: `${root}/bin`,
    src: `${root}/src`,
    run: `${root}/run`,
    sa: `${root}/sa`,
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
  for (const dir of [tree.net, tree.bin, tree.src, tree.run, tree.sa]) mkdirSync(dir);
  for (const [name, content] of Object.entries(files.sources)) {
    writeFileSync(`${tree.src}/${name}`, content, { mode: 0o755 });
  }
  writeFileSync(`${tree.sa}/token`, files.token);
  writeFileSync(`${tree.sa}/ca.crt`, files.ca);
  return tree;
}

/** The agent settings that point at the tree. */
export function hostTreeEnv(tree: HostTree): Record<string, string> {
  return {
    MOUNTED_CNI_NET_DIR: tree.net,
    CNI_BIN_SOURCE_DIR: tree.src,
    CNI_BIN_TARGET_DIRS: tree.bin,
    CNI_AGENT_RUN_DIR: tree.run,
    SERVICE_ACCOUNT_DIR: tree.sa,
  };
}
