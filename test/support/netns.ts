// Test helpers for real network namespaces (root). Reused by the rules, plugin, repair and e2e tests.
//
//   const pair = await createPodPair({ prefix: 'ib', ipv6: true });
//     Creates two named netns `<prefix>-<rand>-pod` and `<prefix>-<rand>-peer` joined by a veth pair
//     (pod side `eth0`), with lo up in both. IPv4 10.<a>.<b>.2/24 (pod) ↔ .1 (peer); with `ipv6: true` also
//     fd00:<a>:<b>::2/64 ↔ ::1/64 (nodad), and `ipv6Only: true` drops the IPv4 addresses. Default routes point
//     at the peer, so any destination outside the pod goes to the peer netns.
//     pair.pod / pair.peer: { name, path: '/run/netns/<name>', ip, ip6? }
//   await runIn(path, argv, { input?, uid? })  → { exitCode, stdout, stderr } (argv run with nsenter --net=path;
//     `uid` wraps with `setpriv --reuid U --regid U --clear-groups`).
//   const server = await startOrigDstServer(path, { tcp: [15001, 15006], udp: [15053], transparent?, uid? })
//     Starts test/support/orig-dst-server.py inside the netns and resolves once it listens; server.stop().
//   await connectFrom(path, host, port, { udp?, uid?, timeoutS? }) → the server's reply line or 'error: …'
//     (replies are "<listen-port> <orig-ip> <orig-port>" for TCP, "<listen-port> udp" for UDP).
//   await pair.destroy()   — deletes both namespaces (idempotent; call it in `after`/`finally`).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/** Absolute, so it also works after setpriv (a pyenv shim under /root is not readable by uid 1337). */
export const PYTHON = '/usr/bin/python3';
export const ORIG_DST_SERVER = fileURLToPath(new URL('./orig-dst-server.py', import.meta.url));

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(argv: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    const child = spawn(file ?? 'false', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.stdin.on('error', () => {
      // EPIPE when the child exits without reading stdin.
    });
    child.on('close', (code) => resolve({ exitCode: code ?? 1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

async function must(argv: readonly string[], input?: string): Promise<string> {
  const result = await run(argv, input);
  if (result.exitCode !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

function asUser(argv: readonly string[], uid: number | undefined): string[] {
  return uid === undefined
    ? [...argv]
    : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv];
}

/** The `-A …` lines of a netns's nat table as `<save> -t nat` prints them (chains and counters left out). */
export async function natRuleLines(netnsPath: string, save = 'iptables-save'): Promise<string> {
  const saved = await runIn(netnsPath, [save, '-t', 'nat']);
  if (saved.exitCode !== 0) throw new Error(`${save} failed: ${saved.stderr}`);
  return saved.stdout
    .split('\n')
    .filter((line) => line.startsWith('-A'))
    .join('\n');
}

export function runIn(
  netnsPath: string,
  argv: readonly string[],
  options: { input?: string; uid?: number } = {},
): Promise<RunResult> {
  return run(['nsenter', `--net=${netnsPath}`, ...asUser(argv, options.uid)], options.input);
}

export interface NetnsEnd {
  readonly name: string;
  readonly path: string;
  readonly ip: string;
  readonly ip6?: string;
}

export interface PodPair {
  readonly pod: NetnsEnd;
  readonly peer: NetnsEnd;
  destroy(): Promise<void>;
}

export async function createPodPair(options: {
  prefix: string;
  ipv6?: boolean;
  ipv6Only?: boolean;
}): Promise<PodPair> {
  const id = `${options.prefix}-${randomBytes(3).toString('hex')}`;
  const a = 100 + ((randomBytes(1)[0] ?? 0) % 100);
  // Never 0: `fd00:<a>:0::2` is not the canonical text of the address the kernel reports (fd00:<a>::2).
  const b = 1 + ((randomBytes(1)[0] ?? 0) % 254);
  const withV6 = options.ipv6 === true || options.ipv6Only === true;
  const withV4 = options.ipv6Only !== true;
  const pod: NetnsEnd = {
    name: `${id}-pod`,
    path: `/run/netns/${id}-pod`,
    ip: withV4 ? `10.${a}.${b}.2` : '',
    ...(withV6 ? { ip6: `fd00:${a}:${b}::2` } : {}),
  };
  const peer: NetnsEnd = {
    name: `${id}-peer`,
    path: `/run/netns/${id}-peer`,
    ip: withV4 ? `10.${a}.${b}.1` : '',
    ...(withV6 ? { ip6: `fd00:${a}:${b}::1` } : {}),
  };
  const destroy = async () => {
    await run(['ip', 'netns', 'del', pod.name]);
    await run(['ip', 'netns', 'del', peer.name]);
  };
  try {
    await must(['ip', 'netns', 'add', pod.name]);
    await must(['ip', 'netns', 'add', peer.name]);
    const veth = `${id}-v`.slice(0, 15);
    await must([
      'ip',
      'link',
      'add',
      veth,
      'netns',
      pod.name,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      peer.name,
    ]);
    // The pod side is called eth0 (as in a real pod); rename after the move.
    const batch = (end: NetnsEnd, ifName: string, newName: string) =>
      [
        ...(ifName === newName ? [] : [`link set ${ifName} name ${newName}`]),
        `link set lo up`,
        `link set ${newName} up`,
        ...(withV4 ? [`address add ${end.ip}/24 dev ${newName}`] : []),
        ...(withV6 ? [`address add ${end.ip6}/64 dev ${newName} nodad`] : []),
      ].join('\n') + '\n';
    await must(['ip', '-n', pod.name, '-batch', '-'], batch(pod, veth, 'eth0'));
    await must(['ip', '-n', peer.name, '-batch', '-'], batch(peer, 'eth0', 'eth0'));
    const routes = (via: NetnsEnd) =>
      [
        ...(withV4 ? [`route add default via ${via.ip}`] : []),
        ...(withV6 ? [`route add default via ${via.ip6}`] : []),
      ].join('\n') + '\n';
    await must(['ip', '-n', pod.name, '-batch', '-'], routes(peer));
    await must(['ip', '-n', peer.name, '-batch', '-'], routes(pod));
  } catch (error) {
    await destroy();
    throw error;
  }
  return { pod, peer, destroy };
}

export interface OrigDstServer {
  stop(): void;
}

export function startOrigDstServer(
  netnsPath: string,
  options: { tcp: readonly number[]; udp?: readonly number[]; transparent?: boolean; uid?: number },
): Promise<OrigDstServer> {
  const args = [PYTHON, ORIG_DST_SERVER, 'serve', options.tcp.join(',')];
  if (options.udp !== undefined && options.udp.length > 0) args.push('--udp', options.udp.join(','));
  if (options.transparent === true) args.push('--transparent');
  const child = spawn('nsenter', [`--net=${netnsPath}`, ...asUser(args, options.uid)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve({ stop: () => child.kill('SIGKILL') });
    });
    child.on('close', (code) => reject(new Error(`orig-dst-server exited ${code}: ${stderr}`)));
    child.on('error', reject);
  });
}

export async function connectFrom(
  netnsPath: string,
  host: string,
  port: number,
  options: { udp?: boolean; uid?: number; timeoutS?: number; bind?: string } = {},
): Promise<string> {
  const argv = [
    PYTHON,
    ORIG_DST_SERVER,
    'client',
    host,
    String(port),
    '--timeout',
    String(options.timeoutS ?? 2),
  ];
  if (options.udp === true) argv.push('--udp');
  if (options.bind !== undefined) argv.push('--bind', options.bind);
  const result = await runIn(netnsPath, argv, options.uid === undefined ? {} : { uid: options.uid });
  return result.stdout.trim() || `error: ${result.stderr.trim()}`;
}
