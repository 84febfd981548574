// privileged: the image's filesystem (npm run image:rootfs, the same layout the Dockerfile ships) runs the agent
// under runc the way the DaemonSet does: read-only root, the five capabilities, the chart's host mounts (temp dirs
// standing in for /host/opt/cni/bin, /host/etc/cni/net.d, /var/run/istio-cni, the service-account dir, /host/proc)
// and a tmpfs /tmp (the manifests' emptyDir), in a network namespace of its own. It must install (binary copied,
// conflist merged, kubeconfig written, /readyz 200), contain no shell, and clean up and exit 0 on SIGTERM.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PROBE_ARGV, probeFilesFromHead } from '../../src/rules/netns-probe.ts';
import { VERSION } from '../../src/version.ts';
import { bunTarget } from '../../scripts/bun-compile.ts';
import { within } from '../support/within.ts';

const root = path.resolve(import.meta.dirname, '../..');
const node = process.execPath;
const suffix = randomBytes(4).toString('hex');
const netns = `ie-img-${suffix}`;
const containerId = `ie-img-${suffix}`;
const work = mkdtempSync(path.join(tmpdir(), 'ie-img-'));
const rootfs = path.join(work, 'rootfs');
const host = {
  bin: path.join(work, 'host-opt-cni-bin'),
  net: path.join(work, 'host-etc-cni-net.d'),
  run: path.join(work, 'var-run-istio-cni'),
  sa: path.join(work, 'serviceaccount'),
};
const runcRoot = path.join(work, 'runc-state');
const bundle = path.join(work, 'bundle');

function sh(argv: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const [file, ...args] = argv;
  assert.ok(file !== undefined);
  const result = spawnSync(file, args, { encoding: 'utf8', input, timeout: 60_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

const primaryConflist = {
  cniVersion: '1.0.0',
  name: 'ie-bridge',
  plugins: [{ type: 'bridge', bridge: 'ie0', ipam: { type: 'host-local', subnet: '10.244.7.0/24' } }],
};

before(() => {
  for (const name of ['install-cni', 'istio-cni']) {
    assert.ok(existsSync(path.join(root, 'dist', name)), `dist/${name} missing: run npm run build`);
  }
  const built = sh([node, path.join(root, 'scripts', 'image-rootfs.ts'), '--out', rootfs]);
  assert.equal(built.status, 0, built.stderr);
  for (const dir of Object.values(host)) mkdirSync(dir, { recursive: true });
  mkdirSync(bundle);
  mkdirSync(runcRoot);
  writeFileSync(
    path.join(host.net, '10-ie-bridge.conflist'),
    `${JSON.stringify(primaryConflist, null, 2)}\n`,
  );
  writeFileSync(path.join(host.sa, 'token'), 'ie-test-token');
  writeFileSync(path.join(host.sa, 'namespace'), 'istio-system');
  writeFileSync(
    path.join(host.sa, 'ca.crt'),
    '-----BEGIN CERTIFICATE-----\nTUlJQ2llLXRlc3QtY2E=\n-----END CERTIFICATE-----\n',
  );
  const added = sh(['ip', 'netns', 'add', netns]);
  assert.equal(added.status, 0, added.stderr);
  sh(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
});

after(() => {
  sh(['runc', '--root', runcRoot, 'delete', '--force', containerId]);
  sh(['ip', 'netns', 'del', netns]);
  rmSync(work, { recursive: true, force: true });
});

interface ImageConfig {
  Env: string[];
  Cmd: string[];
  WorkingDir: string;
  Labels: Record<string, string>;
}

function imageConfig(): ImageConfig {
  return JSON.parse(readFileSync(`${rootfs}.config.json`, 'utf8')) as ImageConfig;
}

test("the executables are built for the build machine's architecture, as the per-platform image build needs", () => {
  assert.equal(bunTarget('x64'), 'bun-linux-x64');
  assert.equal(bunTarget('arm64'), 'bun-linux-arm64');
  assert.throws(() => bunTarget('s390x'), /no bun executable target for s390x/);
  // ELF e_machine (offset 18, little-endian): 62 is x86-64, 183 is AArch64.
  const machine = { x64: 62, arm64: 183 }[process.arch as 'x64' | 'arm64'];
  for (const name of ['istio-cni', 'istio-cni.d/istio-cni', 'istio-cni.d/ld.so', 'install-cni']) {
    const header = Buffer.alloc(20);
    const fd = openSync(path.join(root, 'dist', name), 'r');
    readSync(fd, header, 0, 20, 0);
    closeSync(fd);
    assert.equal(header.readUInt16LE(18), machine, name);
  }
});

test('the root holds what runs and nothing to get a shell with', () => {
  for (const file of [
    'usr/local/bin/install-cni',
    'usr/local/lib/istio-cni/install-cni',
    'opt/cni/bin/istio-cni',
    'opt/cni/bin/istio-cni.d/istio-cni',
    'opt/cni/bin/istio-cni.d/ld.so',
    'opt/cni/bin/istio-cni.d/libc.so.6',
    'usr/sbin/iptables-legacy-restore',
    'usr/sbin/ip6tables-nft-save',
    'usr/sbin/nft',
    'usr/bin/nsenter',
    'usr/sbin/ip',
    'usr/bin/head',
    'etc/ssl/certs/ca-certificates.crt',
  ]) {
    assert.ok(existsSync(path.join(rootfs, file)), file);
  }
  const forbidden = /^(sh|bash|dash|ash|busybox|zsh|apt|apt-get|dpkg|env|su|sudo|python3?|perl|node)$/;
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(path.join(dir, entry.name)) : [entry.name],
    );
  const present = walk(rootfs).filter((name) => forbidden.test(name));
  assert.deepEqual(present, []);
  // The Dockerfile states the same runtime config the test runs with.
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const config = imageConfig();
  for (const env of config.Env) assert.ok(dockerfile.includes(`ENV ${env}`), `Dockerfile lacks ENV ${env}`);
  assert.ok(dockerfile.includes(`WORKDIR ${config.WorkingDir}`));
  assert.ok(dockerfile.includes(`CMD ${JSON.stringify(config.Cmd)}`));
  for (const [label, value] of Object.entries(config.Labels)) {
    assert.ok(dockerfile.includes(`${label}="${value}"`), `Dockerfile lacks LABEL ${label}="${value}"`);
  }
  assert.equal(config.Labels['org.opencontainers.image.licenses'], 'Apache-2.0');
});

/** Runs `argv` in the image root (own mount and pid namespace, /proc mounted) with exactly `env`. */
function inRoot(
  argv: string[],
  env: Record<string, string>,
): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(
    'unshare',
    ['--mount', '--fork', '--pid', '--mount-proc', `--root=${rootfs}`, ...argv],
    { encoding: 'utf8', env, timeout: 60_000 },
  );
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

test("the launcher keeps BUN_OPTIONS, BUN_BE_BUN and bun's NODE_* variables from the agent (a ConfigMap could set them); the rest passes", () => {
  const hostile = {
    BUN_OPTIONS: '--preload /etc/passwd',
    NODE_OPTIONS: '--require /etc/passwd',
    NODE_TLS_REJECT_UNAUTHORIZED: '0',
    LD_PRELOAD: '/etc/passwd',
  };
  // The control: the agent itself does run the preload (here a file that is no JavaScript, so it fails).
  const bare = inRoot(['/usr/local/lib/istio-cni/install-cni', 'version'], hostile);
  assert.notEqual(bare.status, 0, bare.stdout);
  assert.match(bare.stdout + bare.stderr, /root:x:0:0/);
  const launched = inRoot(['/usr/local/bin/install-cni', 'version', '-s'], hostile);
  assert.deepEqual([launched.status, launched.stdout], [0, `${VERSION}\n`], launched.stderr);
  // glibc's loader complains about a preload that is no ELF object: unshare's loader (on the host) does once in
  // both runs; the agent's loader only when LD_PRELOAD reached it.
  const preloads = (stderr: string) =>
    stderr.split('\n').filter((line) => line.includes('from LD_PRELOAD')).length;
  assert.equal(preloads(bare.stderr), 2, bare.stderr);
  assert.equal(preloads(launched.stderr), 1, launched.stderr);
  const beBun = inRoot(['/usr/local/bin/install-cni', 'version', '-s'], { BUN_BE_BUN: '1' });
  assert.deepEqual([beBun.status, beBun.stdout], [0, `${VERSION}\n`], beBun.stderr);
  // Settings still arrive (an invalid one is named), and so do the arguments.
  const setting = inRoot(['/usr/local/bin/install-cni', '--log_as_json'], {
    ...hostile,
    KUBECONFIG_MODE: '0999',
  });
  assert.equal(setting.status, 1);
  assert.match(setting.stderr, /KUBECONFIG_MODE="0999"/);
});

function ociConfig(): object {
  const config = imageConfig();
  const caps = ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_PTRACE', 'CAP_SYS_ADMIN', 'CAP_DAC_OVERRIDE'];
  const bind = (source: string, destination: string, ro = false): object => ({
    destination,
    type: 'bind',
    source,
    options: ['rbind', ro ? 'ro' : 'rw'],
  });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['install-cni', '--log_output_level=info'],
      env: [
        ...config.Env,
        'KUBERNETES_SERVICE_HOST=10.96.0.1',
        'KUBERNETES_SERVICE_PORT=443',
        'REPAIR_ENABLED=false',
        'NODE_NAME=ie-node',
        'POD_NAME=istio-cni-node-ie',
        'POD_NAMESPACE=istio-system',
        'EXCLUDE_NAMESPACES=kube-system',
      ],
      cwd: config.WorkingDir,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: true },
    hostname: 'ie-node',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
      bind(host.bin, '/host/opt/cni/bin'),
      bind(host.net, '/host/etc/cni/net.d'),
      bind(host.run, '/var/run/istio-cni'),
      bind(host.sa, '/var/run/secrets/kubernetes.io/serviceaccount', true),
      bind('/proc', '/host/proc', true),
    ],
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'network', path: `/var/run/netns/${netns}` },
      ],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list'],
      readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** The kubelet's readiness probe, run inside the pod's netns: one GET /readyz, its status printed. */
async function probeReady(signal: AbortSignal): Promise<{ status: number; stdout: string; stderr: string }> {
  const script = `console.log(await fetch('http://127.0.0.1:8000/readyz').then((r) => r.status, () => 0));`;
  const argv = [`--net=/var/run/netns/${netns}`, node, '--input-type=module', '-e', script];
  const child = spawn('nsenter', argv, { signal });
  child.on('error', () => undefined); // aborted: the agent exited first
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [status] = (await once(child, 'close')) as [number | null];
  return { status: status ?? -1, stdout, stderr };
}

test('runc: installs, serves /readyz, has no shell, cleans up on SIGTERM', { timeout: 60_000 }, async () => {
  writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(ociConfig(), null, 2));
  const agent = spawn('runc', ['--root', runcRoot, 'run', '--bundle', bundle, containerId], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  agent.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  agent.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(agent, 'exit') as Promise<[number | null, string | null]>;
  try {
    // Every transition to ready is logged: wait for that line (or the agent's exit), then probe once.
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (!output.includes('CNI plugin installed; ready') && agent.exitCode === null) return;
        agent.stdout.off('data', check);
        resolve();
      };
      agent.stdout.on('data', check);
      void exited.then(check);
    });
    // Stop probing if the agent exits (it must not before SIGTERM).
    const stopProbe = new AbortController();
    void exited.then(() => stopProbe.abort());
    const probe = await probeReady(stopProbe.signal);
    assert.equal(agent.exitCode, null, `agent exited before SIGTERM:\n${output}`);
    assert.equal(probe.stdout.trim(), '200', `readyz never 200\n${probe.stderr}\nagent output:\n${output}`);

    // Installed: plugin binary, merged conflist, kubeconfig.
    const installed = path.join(host.bin, 'istio-cni');
    assert.ok(existsSync(installed), output);
    assert.equal(statSync(installed).size, statSync(path.join(root, 'dist', 'istio-cni')).size);
    assert.ok((statSync(installed).mode & 0o111) !== 0);
    const conflist = JSON.parse(readFileSync(path.join(host.net, '10-ie-bridge.conflist'), 'utf8')) as {
      plugins: Array<{ type: string }>;
    };
    assert.deepEqual(
      conflist.plugins.map((p) => p.type),
      ['bridge', 'istio-cni'],
    );
    const kubeconfig = path.join(host.run, 'istio-cni-kubeconfig');
    assert.equal(statSync(kubeconfig).mode & 0o777, 0o600);
    assert.match(readFileSync(kubeconfig, 'utf8'), /server: https:\/\/10\.96\.0\.1:443/);

    // No shell to exec into.
    const shell = sh(['runc', '--root', runcRoot, 'exec', containerId, '/bin/sh', '-c', 'true']);
    assert.notEqual(shell.status, 0);

    // The tools the repair controller execs work from the read-only root, inside the container's own netns
    // (one this test made): both iptables variants write rules (legacy takes its lock via XTABLES_LOCKFILE in
    // /tmp), save/restore round-trip, nft and ip run, nsenter enters a namespace.
    const inContainer = (...argv: string[]): string => {
      const result = sh(['runc', '--root', runcRoot, 'exec', containerId, ...argv]);
      assert.equal(result.status, 0, `${argv.join(' ')}: ${result.stderr}`);
      return result.stdout;
    };
    for (const variant of ['legacy', 'nft']) {
      inContainer(`iptables-${variant}`, '-t', 'nat', '-N', 'IE_IMAGE');
      const saved = inContainer(`iptables-${variant}-save`, '-t', 'nat');
      assert.match(saved, /^:IE_IMAGE /m);
      inContainer(`ip6tables-${variant}-save`);
      inContainer(`iptables-${variant}-restore`, '--noflush', '--test', '/proc/self/fd/0');
    }
    inContainer('nft', 'list', 'tables');
    assert.match(inContainer('ip', '-o', 'link', 'show', 'lo'), /lo/);
    inContainer('nsenter', '--net=/proc/1/ns/net', '--', 'ip', 'route', 'show');
    // The repair path's netns probe, exactly as it runs (head exits 1 where a file is absent: parse what it printed).
    const netnsProbe = sh([
      'runc',
      '--root',
      runcRoot,
      'exec',
      containerId,
      'nsenter',
      '--net=/proc/1/ns/net',
      '--',
      ...PROBE_ARGV,
    ]);
    assert.ok(probeFilesFromHead(netnsProbe.stdout).has('fib_trie'), netnsProbe.stderr);

    // The installed plugin runs on a node without glibc (k3d's k3s image, Talos, Alpine): in a root holding only the
    // bin dir the agent filled and /proc, the launcher runs it on the runtime copied beside it. The bun executable
    // alone cannot start there, so the root really has no loader of its own.
    const bare = path.join(work, 'no-libc-root');
    for (const dir of ['opt/cni/bin', 'proc']) mkdirSync(path.join(bare, dir), { recursive: true });
    const inBareRoot = (plugin: string) =>
      spawnSync(
        'unshare',
        [
          '--mount',
          'sh',
          '-c',
          'mount --bind "$1" "$2/opt/cni/bin" && mount -t proc proc "$2/proc" && exec chroot "$2" "$3"',
          'sh',
          host.bin,
          bare,
          plugin,
        ],
        {
          encoding: 'utf8',
          env: { CNI_COMMAND: 'VERSION', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
          input: '',
        },
      );
    const version = inBareRoot('/opt/cni/bin/istio-cni');
    assert.equal(version.status, 0, version.stderr);
    assert.deepEqual(JSON.parse(version.stdout), {
      cniVersion: '1.1.0',
      supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
    const alone = inBareRoot('/opt/cni/bin/istio-cni.d/istio-cni');
    assert.equal(alone.status, 127, `the bun executable ran without the launcher: ${alone.stdout}`);

    const killed = sh(['runc', '--root', runcRoot, 'kill', containerId, 'TERM']);
    assert.equal(killed.status, 0, killed.stderr);
    const [code] = await within(exited, 30_000, () => `the agent's exit after SIGTERM (output: ${output})`);
    assert.equal(code, 0, output);
  } finally {
    if (agent.exitCode === null) {
      sh(['runc', '--root', runcRoot, 'kill', containerId, 'KILL']);
      await within(exited, 30_000, "the agent's exit after SIGKILL");
    }
  }

  // Cleaned up: binary gone, entry removed (primary untouched otherwise), kubeconfig gone.
  assert.deepEqual(readdirSync(host.bin), [], 'the launcher and its runtime dir are removed');
  assert.deepEqual(
    JSON.parse(readFileSync(path.join(host.net, '10-ie-bridge.conflist'), 'utf8')),
    primaryConflist,
  );
  assert.ok(!existsSync(path.join(host.run, 'istio-cni-kubeconfig')));
});

test(
  'the SBOM names every Debian package in the root, those statically linked into the launcher, and our files by hash',
  { timeout: 60_000 },
  () => {
    const out = path.join(work, 'sbom.cdx.json');
    const made = sh([
      node,
      path.join(root, 'scripts', 'sbom.ts'),
      '--files',
      `${rootfs}.files.json`,
      '--out',
      out,
    ]);
    assert.equal(made.status, 0, made.stderr);
    const bom = JSON.parse(readFileSync(out, 'utf8')) as {
      bomFormat: string;
      specVersion: string;
      metadata: { component: { type: string; name: string } };
      components: Array<{
        type: string;
        name: string;
        purl?: string;
        hashes?: Array<{ content: string }>;
        evidence?: { occurrences: Array<{ location: string; additionalContext?: string }> };
      }>;
      dependencies: Array<{ ref: string; dependsOn?: string[] }>;
    };
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.deepEqual(bom.metadata.component.type, 'container');
    const records = JSON.parse(readFileSync(`${rootfs}.files.json`, 'utf8')) as Array<{
      package?: string;
    }>;
    const debs = new Set(records.map((r) => r.package).filter((p) => p != null && p !== 'istio-cni-node-ts'));
    // The packages of the tools the image exists for (so an empty dpkg lookup cannot pass).
    for (const deb of ['iptables', 'nftables', 'iproute2', 'util-linux', 'coreutils', 'libc6']) {
      assert.ok(debs.has(deb), `${deb} in ${[...debs].join(', ')}`);
    }
    for (const deb of debs) {
      assert.ok(
        bom.components.some((c) => c.purl?.startsWith(`pkg:deb/debian/${deb}@`)),
        deb,
      );
    }
    // Each package's purl carries its own architecture: the build's, or `all` for architecture-independent ones.
    const buildArch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
    const purlOf = (deb: string) =>
      bom.components.find((c) => c.purl?.startsWith(`pkg:deb/debian/${deb}@`))?.purl ?? '';
    assert.match(purlOf('iptables'), new RegExp(`\\?arch=${buildArch}&`));
    assert.match(purlOf('ca-certificates'), /\?arch=all&/);
    for (const npm of ['zod', 'pino', 'bun']) {
      assert.ok(
        bom.components.some((c) => c.purl?.startsWith(`pkg:npm/${npm}@`)),
        npm,
      );
    }
    assert.ok(
      !bom.components.some((c) => c.purl?.startsWith('pkg:npm/typescript@')),
      'dev deps are not in the image',
    );
    for (const [file, built] of [
      ['/usr/local/lib/istio-cni/install-cni', path.join(root, 'dist', 'install-cni')],
      ['/opt/cni/bin/istio-cni', path.join(root, 'dist', 'istio-cni')],
      ['/opt/cni/bin/istio-cni.d/istio-cni', path.join(root, 'dist', 'istio-cni.d', 'istio-cni')],
      ['/usr/local/bin/install-cni', path.join(rootfs, 'usr/local/bin/install-cni')],
    ] as const) {
      const component = bom.components.find((c) => c.type === 'file' && c.name === file);
      const digest = createHash('sha256').update(readFileSync(built)).digest('hex');
      assert.equal(component?.hashes?.[0]?.content, digest, file);
    }
    // The static launchers carry glibc's and libgcc's code: their packages are named, with each launcher as a
    // statically linked occurrence and a dependency of its file component.
    const launchers = ['/opt/cni/bin/istio-cni', '/usr/local/bin/install-cni'];
    for (const deb of ['libc6-dev', 'libgcc-12-dev']) {
      const component = bom.components.find((c) => c.purl?.startsWith(`pkg:deb/debian/${deb}@`));
      assert.deepEqual(
        component?.evidence?.occurrences
          .filter((o) => o.additionalContext === 'statically linked')
          .map((o) => o.location)
          .sort(),
        launchers,
        deb,
      );
      for (const launcher of launchers) {
        const deps = bom.dependencies.find((d) => d.ref === `file:${launcher}`)?.dependsOn;
        assert.ok(component?.purl !== undefined && deps?.includes(component.purl), `${deb} ${launcher}`);
      }
    }
    // The plugin's runtime loader is glibc's, from its Debian package.
    const libc = bom.components.find((c) => c.purl?.startsWith('pkg:deb/debian/libc6@'));
    assert.ok(
      libc?.evidence?.occurrences.some((o) => o.location === '/opt/cni/bin/istio-cni.d/ld.so'),
      'ld.so in the plugin runtime is attributed to libc6',
    );
  },
);
