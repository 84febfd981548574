// `npm run image:rootfs`: assembles the install-cni image's filesystem into build/rootfs, exactly as the
// Dockerfile's final stage lays it out (the Dockerfile runs this same script in its build stage and copies the
// result onto `scratch`, so the two cannot differ). Contents, and nothing else:
//   /usr/local/bin/install-cni       a static launcher (scripts/install-cni-launcher.c) that drops BUN_* and bun's
//                                    NODE_* variables from the environment and execs the agent
//   /usr/local/lib/istio-cni/install-cni  the agent (dist/install-cni, bun-compiled)
//   /opt/cni/bin/istio-cni           the plugin the agent copies to each host: a static launcher (dist/istio-cni)
//   /opt/cni/bin/istio-cni.d/        and its runtime, the bun-compiled plugin with its glibc loader and libraries
//                                    (scripts/plugin-runtime.ts), copied beside it
//   /usr/sbin/xtables-{legacy,nft}-multi + every iptables/ip6tables{,-legacy,-nft}{,-save,-restore} link
//                                    the repair controller re-programs rules inside running pods from this
//                                    container; both variants because the pod's existing rules decide which one
//                                    (istio/istio#49279), plus the xtables match/target modules they dlopen
//   /usr/sbin/nft                    the repair path when NATIVE_NFTABLES=true
//   /usr/bin/nsenter                 the Exec port enters pod network (and user) namespaces through it
//   /usr/sbin/ip                     ip rule/route inside pods for TPROXY interception
//   /usr/bin/head                    the repair path's netns probe prints the pod's /proc/net files through it
//                                    (without it the probe falls back to `ip addr` and a legacy-save per pod)
//   the shared libraries of all of the above (ldd, taken from this machine's Debian packages), the CA bundle,
//   /etc/{passwd,group,nsswitch.conf,protocols,services,iproute2}, empty mount points. No shell, no package
//   manager, no coreutils but head.
// Also writes <out>.files.json (every file, its Debian package and version, for the SBOM) and <out>.config.json
// (Env/Cmd/WorkingDir/Labels, the same values as the Dockerfile; the integration test runs the root with them).
// Options: --out DIR (default build/rootfs), --dist DIR (default dist).
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compileStatic, RUNTIME_DIR, runtimeFiles, staticArchives } from './plugin-runtime.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(root, 'build', 'rootfs') },
    dist: { type: 'string', default: path.join(root, 'dist') },
  },
});
const out = path.resolve(values.out);
const dist = path.resolve(values.dist);
const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string })
  .version;

const IMAGE_CONFIG = {
  Env: [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/cni/bin',
    // The read-only root has no writable /run; legacy iptables takes its lock here (an emptyDir in manifests/).
    'XTABLES_LOCKFILE=/tmp/xtables.lock',
  ],
  Cmd: ['install-cni'],
  WorkingDir: '/opt/cni/bin',
  Labels: {
    'org.opencontainers.image.source': 'https://github.com/istio-cni-node-ts/istio-cni-node-ts',
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.licenses': 'Apache-2.0',
    'org.opencontainers.image.title': 'install-cni',
  },
};

const MULTI = {
  'xtables-legacy-multi': ['iptables-legacy', 'ip6tables-legacy'],
  'xtables-nft-multi': ['iptables-nft', 'ip6tables-nft'],
} as const;
// Debian's alternatives default: plain iptables is the nf_tables variant.
const DEFAULT_LINKS = ['iptables', 'ip6tables'];
// Debian's multiarch directory of this build (x86_64-linux-gnu, aarch64-linux-gnu): the image is built natively.
const MULTIARCH = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).trim();
const XTABLES_MODULES = `/usr/lib/${MULTIARCH}/xtables`;

interface FileRecord {
  path: string;
  source: string;
  package: string | undefined;
  version: string | undefined;
  /** Debian packages whose code is statically linked into this file (the launcher's libc and libgcc). */
  linked?: Array<{ package: string; version: string }>;
}
const records: FileRecord[] = [];
const copied = new Set<string>();

/** Debian 12 is usr-merged: /lib, /bin, /sbin, /lib64 are links into /usr. Canonical in-image path. */
function canonical(p: string): string {
  for (const top of ['/lib64/', '/lib/', '/bin/', '/sbin/']) {
    if (p.startsWith(top)) return `/usr${p}`;
  }
  return p;
}

/** Owning Debian package and version of each file, in two dpkg-query calls (one per file is ~30x slower). */
function dpkgOwners(files: string[]): Map<string, { package: string; version: string }> {
  const spellings = (file: string): string[] => [
    file,
    file.replace(/^\/usr(\/(?:lib64|lib|bin|sbin)\/)/, '$1'),
  ];
  const query = spawnSync('dpkg-query', ['-S', ...new Set(files.flatMap(spellings))], { encoding: 'utf8' });
  const byPath = new Map<string, string>();
  for (const line of query.stdout.split('\n')) {
    const match = /^([^:]+(?::[^:\s]+)?(?:, [^:]+)*): (\/.*)$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    byPath.set(match[2], match[1].split(',')[0]?.trim() ?? '');
  }
  const packages = [...new Set(byPath.values())];
  const versions = new Map<string, string>();
  if (packages.length > 0) {
    const list = spawnSync('dpkg-query', ['-W', '-f=${binary:Package} ${Version}\\n', ...packages], {
      encoding: 'utf8',
    });
    for (const line of list.stdout.split('\n')) {
      const [name, pkgVersion] = line.split(' ');
      if (name === undefined || pkgVersion === undefined) continue;
      versions.set(name, pkgVersion);
      versions.set(name.replace(/:.*$/, ''), pkgVersion);
    }
  }
  const owners = new Map<string, { package: string; version: string }>();
  for (const file of files) {
    const pkg = spellings(file)
      .map((p) => byPath.get(p))
      .find((p) => p !== undefined);
    if (pkg !== undefined)
      owners.set(file, { package: pkg.replace(/:.*$/, ''), version: versions.get(pkg) ?? '' });
  }
  return owners;
}

function put(source: string, dest: string, owner?: { package: string; version: string }): void {
  const target = path.join(out, dest);
  if (copied.has(dest)) return;
  copied.add(dest);
  if (!existsSync(source)) {
    throw new Error(
      `${source} missing: the image root is assembled from Debian packages; install ` +
        'iptables nftables iproute2 util-linux ca-certificates netbase',
    );
  }
  mkdirSync(path.dirname(target), { recursive: true });
  const real = realpathSync(source);
  copyFileSync(real, target);
  chmodSync(target, lstatSync(real).mode & 0o7777);
  records.push({ path: dest, source: real, package: owner?.package, version: owner?.version });
}

function link(dest: string, to: string): void {
  const target = path.join(out, dest);
  mkdirSync(path.dirname(target), { recursive: true });
  symlinkSync(to, target);
}

/** A binary or library from the host plus, recursively, every shared library ldd resolves for it. */
function putWithLibraries(file: string, dest = canonical(realpathSync(file))): void {
  put(file, dest);
  const text = execFileSync('ldd', [file], { encoding: 'utf8' });
  for (const line of text.split('\n')) {
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (match?.[1] === undefined) continue;
    const lib = match[1];
    // Keep the loader at the path the ELF interpreter field names (/lib64/ld-linux-x86-64.so.2 → usr/lib64,
    // /lib/ld-linux-aarch64.so.1 → usr/lib).
    const libDest = canonical(lib);
    if (copied.has(libDest)) continue;
    put(lib, libDest);
    if (!lib.includes('ld-linux')) putWithLibraries(lib, libDest);
  }
}

function which(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} not found: install the Debian packages iptables nftables iproute2 util-linux`);
}

// ---- assemble ---------------------------------------------------------------------------------------------

for (const name of ['install-cni', 'istio-cni']) {
  if (!existsSync(path.join(dist, name))) throw new Error(`${dist}/${name} missing: run npm run build first`);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// usr-merge links and mount points (runc/containerd create missing ones, but not on a read-only root).
for (const dir of [
  'usr/bin',
  'usr/sbin',
  'usr/lib',
  'usr/lib64',
  'usr/local/bin',
  'opt/cni/bin',
  'etc',
  'run',
]) {
  mkdirSync(path.join(out, dir), { recursive: true });
}
link('bin', 'usr/bin');
link('sbin', 'usr/sbin');
link('lib', 'usr/lib');
link('lib64', 'usr/lib64');
mkdirSync(path.join(out, 'var'), { recursive: true });
link('var/run', '../run');
for (const dir of [
  'proc',
  'sys',
  'dev',
  'tmp',
  'host/opt/cni/bin',
  'host/etc/cni/net.d',
  'host/proc',
  'host/var/run/netns',
  'run/istio-cni',
  'run/secrets/kubernetes.io/serviceaccount',
]) {
  mkdirSync(path.join(out, dir), { recursive: true });
}
chmodSync(path.join(out, 'tmp'), 0o1777);

const ours = { package: 'istio-cni-node-ts', version };
// The launchers are static: the agent's must run before, and independently of, anything the environment could
// change; the plugin's runs on hosts without glibc.
const launcher = `${out}.launcher`;
compileStatic(path.join(root, 'scripts', 'install-cni-launcher.c'), launcher);
put(launcher, '/usr/local/bin/install-cni', ours);
put(path.join(dist, 'istio-cni'), '/opt/cni/bin/istio-cni', ours);
// What -static linked into them: glibc's libc.a (and its crt objects) and gcc's libgcc.a, each from a Debian
// package the SBOM must name, like the shared libraries the other executables bring.
const archives = staticArchives();
const archiveOwners = dpkgOwners(archives);
for (const file of ['/usr/local/bin/install-cni', '/opt/cni/bin/istio-cni']) {
  const record = records.find((r) => r.path === file);
  if (record === undefined) throw new Error(`${file} is not in the root`);
  record.linked = archives.map((archive) => {
    const owner = archiveOwners.get(archive);
    if (owner === undefined) throw new Error(`no Debian package owns ${archive}, which ${file} links`);
    return owner;
  });
}
// The plugin's runtime (scripts/plugin-runtime.ts), its loader and libraries taken from their Debian packages.
const pluginRuntime = `/opt/cni/bin/${RUNTIME_DIR}`;
const bunPlugin = path.join(dist, RUNTIME_DIR, 'istio-cni');
put(bunPlugin, `${pluginRuntime}/istio-cni`, ours);
for (const file of runtimeFiles(bunPlugin)) put(file.source, `${pluginRuntime}/${file.name}`);
put(path.join(dist, 'install-cni'), '/usr/local/lib/istio-cni/install-cni', ours);
// The compiled executables need only glibc; ldd proves it and brings the exact libraries in.
putWithLibraries(path.join(dist, 'install-cni'), '/usr/local/lib/istio-cni/install-cni');

for (const [multi, variants] of Object.entries(MULTI)) {
  putWithLibraries(which(multi), `/usr/sbin/${multi}`);
  for (const variant of variants) {
    for (const suffix of ['', '-save', '-restore']) link(`usr/sbin/${variant}${suffix}`, multi);
  }
}
for (const name of DEFAULT_LINKS) {
  for (const suffix of ['', '-save', '-restore']) link(`usr/sbin/${name}${suffix}`, 'xtables-nft-multi');
}
for (const module of readdirSync(XTABLES_MODULES)) {
  const file = path.join(XTABLES_MODULES, module);
  if (lstatSync(file).isSymbolicLink()) {
    link(path.join(XTABLES_MODULES.slice(1), module), readlinkSync(file));
    continue;
  }
  putWithLibraries(file, path.join(XTABLES_MODULES, module));
}
putWithLibraries(which('nft'), '/usr/sbin/nft');
putWithLibraries(which('nsenter'), '/usr/bin/nsenter');
putWithLibraries(which('ip'), '/usr/sbin/ip');
putWithLibraries(which('head'), '/usr/bin/head');

// Data files the tools and glibc read.
// Generated by update-ca-certificates from the ca-certificates package's certificates.
const caOwner = dpkgOwners(['/usr/sbin/update-ca-certificates']).get('/usr/sbin/update-ca-certificates');
put('/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs/ca-certificates.crt', caOwner);
put('/etc/protocols', '/etc/protocols');
put('/etc/services', '/etc/services');
for (const entry of readdirSync('/etc/iproute2', { recursive: true, withFileTypes: true })) {
  if (!entry.isFile()) continue;
  const file = path.join(entry.parentPath, entry.name);
  put(file, file);
}
const generated = {
  'etc/passwd':
    'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  'etc/group': 'root:x:0:\nnogroup:x:65534:\n',
  'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\nprotocols: files\nservices: files\n',
};
for (const [file, content] of Object.entries(generated)) {
  writeFileSync(path.join(out, file), content);
  records.push({ path: `/${file}`, source: 'generated', package: undefined, version: undefined });
}

const owners = dpkgOwners(
  records.filter((r) => r.package === undefined && r.source !== 'generated').map((r) => r.source),
);
for (const record of records) {
  const owner = owners.get(record.source);
  if (record.package === undefined && owner !== undefined) Object.assign(record, owner);
}
records.sort((a, b) => a.path.localeCompare(b.path));
writeFileSync(`${out}.files.json`, `${JSON.stringify(records, null, 2)}\n`);
writeFileSync(`${out}.config.json`, `${JSON.stringify(IMAGE_CONFIG, null, 2)}\n`);
const packages = new Set(records.map((r) => r.package).filter((p) => p !== undefined));
console.log(`rootfs: ${out} (${records.length} files from ${packages.size} packages)`);
