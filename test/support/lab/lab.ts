// The end-to-end lab: one Kubernetes node on this machine. A private containerd (own config, root, state, socket,
// runc root) runs inside its own network namespace — the "node" netns — so the node's bridge, veths, routes and any
// iptables state the CNI chain creates never touch the host's. A kubelet stand-in drives it over CRI; the CNI
// conf/bin dirs are lab directories the agent under test manages. Everything is torn down by close(), and
// reapLabLeftovers() removes what a crashed run left behind (found by the `id-` prefix and a dead owner pid).
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CriClient, SandboxSpec } from './cri-client.ts';
import { createCriClient } from './cri-client.ts';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..', '..');
const LAB_PREFIX = 'id-lab-';
const NODE_NETNS_PREFIX = 'id-node-';
export const PAUSE_IMAGE = 'localhost/pause:3.10';

export type RunResult = { exitCode: number; stdout: string; stderr: string };

export function run(
  argv: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) {
      reject(new Error('empty argv'));
      return;
    }
    const child = execFile(
      file,
      args,
      { env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(new Error(`${argv.join(' ')}: ${error.message}`));
          return;
        }
        resolve({ exitCode: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export async function mustRun(argv: string[], options: Parameters<typeof run>[1] = {}): Promise<string> {
  const result = await run(argv, options);
  if (result.exitCode !== 0) {
    throw new Error(
      `${argv.join(' ')} exited ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result.stdout;
}

export type LabPod = {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  ip: string;
  netnsPath: string;
  pid: number;
};

export type Lab = {
  id: string;
  root: string;
  /** CNI bin dir containerd executes plugins from (the agent's CNI_BIN_TARGET_DIRS). */
  binDir: string;
  /** CNI conf dir containerd reads (the agent's MOUNTED_CNI_NET_DIR). */
  confDir: string;
  /** Name of the primary conflist in confDir. */
  conflistName: string;
  nodeNetns: string;
  nodeNetnsPath: string;
  bridge: string;
  subnet: string;
  gateway: string;
  criSocket: string;
  cri: CriClient;
  /** Writes (or rewrites) the node's primary CNI conflist, like a primary CNI's own agent would. */
  writePrimaryConflist(extra?: Record<string, unknown>): void;
  primaryConflist(extra?: Record<string, unknown>): Record<string, unknown>;
  /** The host end of the node's link to the host: servers listening there (the API test server) are reachable at
   * this address from the host and from the node netns alike, through the kernel only. */
  hostAddress: string;
  runPod(spec: SandboxSpec): Promise<LabPod>;
  removePod(id: string): Promise<void>;
  /** Runs argv in the node netns. */
  nodeExec(argv: string[], options?: Parameters<typeof run>[1]): Promise<RunResult>;
  /** Runs argv in a pod's netns. */
  podExec(pod: LabPod, argv: string[], options?: Parameters<typeof run>[1]): Promise<RunResult>;
  containerdLog(): string;
  close(): Promise<void>;
};

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function ensureHostPackages(): Promise<void> {
  const needed = ['containerd', 'ctr', 'runc', 'umoci', 'nsenter', 'ip', 'iptables-save'];
  const missing = [];
  for (const binary of needed) {
    const found = await run(['sh', '-c', `command -v ${binary}`]);
    if (found.exitCode !== 0) missing.push(binary);
  }
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].some((p) => existsSync(p));
  if (missing.length > 0 || !busybox || !existsSync('/usr/lib/cni/bridge')) {
    await mustRun(['bash', path.join(repoRoot, 'scripts', 'install-host-packages.sh')], {
      timeoutMs: 600_000,
    });
  }
  // the SO_ORIGINAL_DST probe (test/support/orig-dst-server.py) needs Debian's python3
  if (!existsSync('/usr/bin/python3')) {
    await mustRun(['apt-get', 'update', '-qq'], { timeoutMs: 600_000 });
    await mustRun(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'python3'], {
      timeoutMs: 600_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
}

/** Processes of a lab: containerd and shims (their command line names the lab directory) and the
 * sandboxes' own processes (their root filesystem is a snapshot under the lab directory). */
export function labProcesses(root: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const rootMount =
        readFileSync(`/proc/${entry}/mountinfo`, 'utf8').split('\n', 1)[0]?.split(' ')[3] ?? '';
      if (cmdline.includes(root) || rootMount.startsWith(root + '/')) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/** runc state directories of a lab (containerd's runc shim nests them per containerd namespace). */
function runcStateDirs(root: string): string[] {
  const base = path.join(root, 'runc');
  if (!existsSync(base)) return [];
  const dirs: string[] = [];
  for (const ns of readdirSync(base)) {
    dirs.push(path.join(base, ns));
    try {
      for (const inner of readdirSync(path.join(base, ns))) dirs.push(path.join(base, ns, inner));
    } catch {
      // not a directory
    }
  }
  return dirs;
}

function removeSandboxCgroups(ids: string[]): void {
  const cgroupRoot = '/sys/fs/cgroup';
  const hierarchies = [cgroupRoot, ...readdirSync(cgroupRoot).map((c) => path.join(cgroupRoot, c))];
  for (const id of ids) {
    for (const hierarchy of hierarchies) {
      const dir = path.join(hierarchy, 'k8s.io', id);
      try {
        rmdirSync(dir);
      } catch {
        // absent, or not a cgroup hierarchy
      }
    }
  }
}

function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountPoint) => mountPoint.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

async function killAndWait(pids: number[], signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
  // These are not our children (shims re-parent them): no exit event to await, so poll, and say so if any outlive
  // the deadline instead of leaving them behind unnoticed.
  const deadline = Date.now() + 5000;
  while (pids.some(pidAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const left = pids.filter(pidAlive);
  if (left.length > 0) throw new Error(`lab processes still alive 5 s after ${signal}: ${left.join(', ')}`);
}

/** Removes one lab's leftovers: processes, sandboxes' netns, mounts, the node netns, the directory. */
async function teardownLabDir(root: string): Promise<void> {
  // The shims re-parent the sandbox processes; runc state lives under the lab, so remove the containers through it.
  const ids: string[] = [];
  for (const stateDir of runcStateDirs(root)) {
    const listed = await run(['runc', '--root', stateDir, 'list', '-q']).catch(() => undefined);
    for (const id of listed?.stdout.split('\n').filter((l) => l !== '') ?? []) {
      ids.push(id);
      await run(['runc', '--root', stateDir, 'delete', '--force', id]).catch(() => undefined);
    }
  }
  await killAndWait(labProcesses(root));
  removeSandboxCgroups(ids);
  const netnsList = path.join(root, 'netns.list');
  if (existsSync(netnsList)) {
    for (const netnsPath of readFileSync(netnsList, 'utf8').split('\n')) {
      if (netnsPath === '' || !existsSync(netnsPath)) continue;
      await run(['umount', netnsPath]).catch(() => undefined);
      rmSync(netnsPath, { force: true });
    }
  }
  for (const mountPoint of mountsUnder(root + '/')) {
    await run(['umount', '-l', mountPoint]).catch(() => undefined);
  }
  const nodeNetnsFile = path.join(root, 'node-netns');
  if (existsSync(nodeNetnsFile)) {
    const name = readFileSync(nodeNetnsFile, 'utf8').trim();
    if (name.startsWith(NODE_NETNS_PREFIX)) await run(['ip', 'netns', 'delete', name]).catch(() => undefined);
  }
  rmSync(root, { recursive: true, force: true });
}

/** Reaps labs whose creating process is gone (a crashed or killed test run), and orphan node netns. */
export async function reapLabLeftovers(): Promise<void> {
  const tmp = os.tmpdir();
  const live = new Set<string>();
  for (const entry of readdirSync(tmp)) {
    if (!entry.startsWith(LAB_PREFIX)) continue;
    const root = path.join(tmp, entry);
    let owner = 0;
    try {
      owner = Number(readFileSync(path.join(root, 'owner.pid'), 'utf8'));
    } catch {
      // no owner file: a lab that died while starting
    }
    if (owner > 0 && pidAlive(owner)) {
      live.add(entry.slice(LAB_PREFIX.length));
      continue;
    }
    await teardownLabDir(root);
  }
  const netns = await run(['ip', 'netns', 'list']);
  for (const line of netns.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.startsWith(NODE_NETNS_PREFIX) && !live.has(name.slice(NODE_NETNS_PREFIX.length))) {
      await run(['ip', 'netns', 'delete', name]);
    }
  }
}

async function buildPauseImage(root: string, socket: string): Promise<void> {
  const work = path.join(root, 'pause');
  mkdirSync(work, { recursive: true });
  const layout = path.join(work, 'oci');
  const image = `${layout}:3.10`;
  const bundle = path.join(work, 'bundle');
  await mustRun(['umoci', 'init', '--layout', layout]);
  await mustRun(['umoci', 'new', '--image', image]);
  await mustRun(['umoci', 'unpack', '--rootless', '--image', image, bundle]);
  const bin = path.join(bundle, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  const busybox = existsSync('/bin/busybox') ? '/bin/busybox' : '/usr/bin/busybox';
  copyFileSync(busybox, path.join(bin, 'busybox'));
  chmodSync(path.join(bin, 'busybox'), 0o755);
  for (const applet of ['sleep', 'sh', 'nc', 'wget']) symlinkSync('busybox', path.join(bin, applet));
  await mustRun(['umoci', 'repack', '--image', image, bundle]);
  await mustRun([
    'umoci',
    'config',
    '--image',
    image,
    '--config.entrypoint',
    '/bin/sleep',
    '--config.cmd',
    'infinity',
  ]);
  const tar = path.join(work, 'pause.tar');
  await mustRun(['tar', '-C', layout, '-cf', tar, '.']);
  await mustRun([
    'ctr',
    '-a',
    socket,
    '-n',
    'k8s.io',
    'images',
    'import',
    '--base-name',
    'localhost/pause',
    tar,
  ]);
  rmSync(bundle, { recursive: true, force: true });
}

function containerdConfig(defaults: string, root: string, binDir: string, confDir: string): string {
  const replace = (text: string, pattern: RegExp, value: string): string => {
    if (!pattern.test(text)) throw new Error(`containerd default config has no ${String(pattern)}`);
    return text.replace(pattern, value);
  };
  let config = defaults;
  config = replace(config, /^root = ".*"$/m, `root = "${root}/root"`);
  config = replace(config, /^state = ".*"$/m, `state = "${root}/state"`);
  config = replace(config, /(\[grpc\][^[]*?address = )".*"/, `$1"${root}/containerd.sock"`);
  config = replace(config, /restrict_oom_score_adj = false/, 'restrict_oom_score_adj = true');
  config = replace(config, /sandbox_image = ".*"/, `sandbox_image = "${PAUSE_IMAGE}"`);
  config = replace(config, /bin_dir = ".*"/, `bin_dir = "${binDir}"`);
  config = replace(config, /conf_dir = ".*"/, `conf_dir = "${confDir}"`);
  config = replace(config, /snapshotter = "overlayfs"/, 'snapshotter = "native"');
  config = replace(config, /( +)Root = ""/, `$1Root = "${root}/runc"`);
  config = replace(config, /path = "\/opt\/containerd"/, `path = "${root}/opt"`);
  config = config.replace(
    /^disabled_plugins = \[\]$/m,
    'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
  );
  return config;
}

/** Resolves when `socketPath` appears (inotify on its directory), rejects when `process` exits first or after
 * `timeoutMs`. */
function untilSocketOrExit(
  socketPath: string,
  child: ChildProcess,
  timeoutMs: number,
  log: () => string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const watcher = watch(path.dirname(socketPath));
    const finish = (error?: Error): void => {
      watcher.close();
      clearTimeout(timer);
      child.off('exit', onExit);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onExit = (): void => finish(new Error(`containerd exited: ${log()}`));
    const timer = setTimeout(
      () => finish(new Error(`containerd did not come up in ${timeoutMs} ms`)),
      timeoutMs,
    );
    watcher.on('change', () => {
      if (existsSync(socketPath)) finish();
    });
    child.once('exit', onExit);
    if (existsSync(socketPath)) finish();
    else if (child.exitCode !== null) onExit();
  });
}

export async function startLab(
  options: {
    name?: string;
    /** false: the primary CNI has not written its conflist yet */ primaryConflist?: boolean;
  } = {},
): Promise<Lab> {
  await ensureHostPackages();
  await reapLabLeftovers();
  const id = hex(3);
  const root = path.join(os.tmpdir(), `${LAB_PREFIX}${id}`);
  mkdirSync(root, { recursive: true });
  writeFileSync(path.join(root, 'owner.pid'), String(process.pid));
  const nodeNetns = `${NODE_NETNS_PREFIX}${id}`;
  const nodeNetnsPath = `/var/run/netns/${nodeNetns}`;
  const bridge = `idbr${id}`;
  const [random1 = 0, random2 = 0, random3 = 0] = randomBytes(3);
  const subnetBase = `10.${64 + (random1 % 64)}.${random2}`;
  // The node's link to the host, a /30 on a veth pair (a real node reaches its API server over the network; a
  // userspace relay here added ~8 ms to every pod lookup and skewed the end-to-end figures).
  // 198.18.0.0/15 is reserved for network test labs (RFC 2544): no host route, VPN or container network uses it.
  const linkAddress = (host: 1 | 2) => `198.${18 + (random1 % 2)}.${random2}.${(random3 % 64) * 4 + host}`;
  const hostAddress = linkAddress(1);
  const hostLink = `iah${id}`;
  const subnet = `${subnetBase}.0/24`;
  const gateway = `${subnetBase}.1`;
  const binDir = path.join(root, 'cni-bin');
  const confDir = path.join(root, 'cni-conf');
  const criSocket = path.join(root, 'containerd.sock');
  const conflistName = '10-lab-bridge.conflist';
  const children: ChildProcess[] = [];
  const pods = new Map<string, LabPod>();
  let cri: CriClient | undefined;

  const primaryConflist = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    cniVersion: '1.0.0',
    name: options.name ?? 'lab',
    plugins: [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true }, ...extra },
    ],
  });
  const writePrimaryConflist = (extra: Record<string, unknown> = {}): void => {
    const target = path.join(confDir, conflistName);
    writeFileSync(`${target}.tmp`, JSON.stringify(primaryConflist(extra), null, 2) + '\n');
    // rename, as a primary CNI's installer does, so containerd never reads a half-written file
    renameSync(`${target}.tmp`, target);
  };

  const close = async (): Promise<void> => {
    if (cri) {
      for (const podId of pods.keys()) {
        await cri.stopPodSandbox(podId).catch(() => undefined);
        await cri.removePodSandbox(podId).catch(() => undefined);
      }
      cri.close();
    }
    const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
    const exits = running.map((child) => once(child, 'exit'));
    for (const child of running) child.kill('SIGTERM');
    let bound: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(exits), new Promise((resolve) => (bound = setTimeout(resolve, 5000)))]);
    clearTimeout(bound);
    for (const child of running)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await teardownLabDir(root);
  };

  try {
    mkdirSync(binDir, { recursive: true });
    mkdirSync(confDir, { recursive: true });
    for (const plugin of readdirSync('/usr/lib/cni'))
      copyFileSync(path.join('/usr/lib/cni', plugin), path.join(binDir, plugin));
    for (const plugin of readdirSync(binDir)) chmodSync(path.join(binDir, plugin), 0o755);
    if (options.primaryConflist !== false) writePrimaryConflist();

    writeFileSync(path.join(root, 'node-netns'), nodeNetns);
    await mustRun(['ip', 'netns', 'add', nodeNetns]);
    await mustRun(['ip', '-n', nodeNetns, 'link', 'set', 'lo', 'up']);
    // Deleting the node netns (teardown) destroys both ends of the pair.
    await mustRun([
      'ip',
      'link',
      'add',
      hostLink,
      'type',
      'veth',
      'peer',
      'name',
      `ian${id}`,
      'netns',
      nodeNetns,
    ]);
    await mustRun(['ip', 'addr', 'add', `${hostAddress}/30`, 'dev', hostLink]);
    await mustRun(['ip', 'link', 'set', hostLink, 'up']);
    await mustRun(['ip', '-n', nodeNetns, 'addr', 'add', `${linkAddress(2)}/30`, 'dev', `ian${id}`]);
    await mustRun(['ip', '-n', nodeNetns, 'link', 'set', `ian${id}`, 'up']);

    const defaults = await mustRun(['containerd', 'config', 'default']);
    const configFile = path.join(root, 'containerd.toml');
    writeFileSync(configFile, containerdConfig(defaults, root, binDir, confDir));
    const logFd = openSync(path.join(root, 'containerd.log'), 'a');
    const containerd = spawn('nsenter', [`--net=${nodeNetnsPath}`, 'containerd', '--config', configFile], {
      stdio: ['ignore', logFd, logFd],
    });
    children.push(containerd);
    await untilSocketOrExit(criSocket, containerd, 30_000, () =>
      readFileSync(path.join(root, 'containerd.log'), 'utf8').slice(-2000),
    );
    cri = createCriClient(criSocket, { timeoutMs: 60_000 });
    await cri.waitForReady();
    await cri.version();
    await buildPauseImage(root, criSocket);
  } catch (error) {
    await close();
    throw error;
  }
  const client = cri;

  const nodeExec: Lab['nodeExec'] = (argv, runOptions) =>
    run(['nsenter', `--net=${nodeNetnsPath}`, ...argv], runOptions);

  return {
    id,
    root,
    binDir,
    confDir,
    conflistName,
    nodeNetns,
    nodeNetnsPath,
    hostAddress,
    bridge,
    subnet,
    gateway,
    criSocket,
    cri: client,
    writePrimaryConflist,
    primaryConflist,
    async runPod(spec) {
      const podId = await client.runPodSandbox({ logDirectory: path.join(root, 'logs', spec.uid), ...spec });
      const status = await client.podSandboxStatus(podId);
      const info = JSON.parse(status.info.info ?? '{}');
      const namespaces: Array<{ type: string; path?: string }> = info.runtimeSpec?.linux?.namespaces ?? [];
      const netnsPath = namespaces.find((n) => n.type === 'network')?.path ?? '';
      appendFileSync(path.join(root, 'netns.list'), netnsPath + '\n');
      const pod: LabPod = {
        id: podId,
        name: spec.name,
        namespace: spec.namespace,
        uid: spec.uid,
        ip: status.ip,
        netnsPath,
        pid: Number(info.pid ?? 0),
      };
      pods.set(podId, pod);
      return pod;
    },
    async removePod(podId) {
      await client.stopPodSandbox(podId);
      await client.removePodSandbox(podId);
      pods.delete(podId);
    },
    nodeExec,
    podExec: (pod, argv, runOptions) => run(['nsenter', `--net=${pod.netnsPath}`, ...argv], runOptions),
    containerdLog: () => readFileSync(path.join(root, 'containerd.log'), 'utf8'),
    close,
  };
}

/** A fresh pod identity (the kubelet gives each sandbox the pod's uid; a retry bumps attempt). */
export function newPodSpec(namespace: string, name: string, uid: string = randomUUID()): SandboxSpec {
  return { namespace, name, uid };
}
