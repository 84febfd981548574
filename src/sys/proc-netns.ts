// Finds a pod's network namespace under a proc root (/host/proc in the image) by the pod IP (behaviour §3.4
// "repair"). Upstream enters every /proc/<pid>/ns/net and lists interface addresses over netlink. Node cannot
// setns, and one `nsenter ip addr` per PID would cost a process per PID, so we read the same information that
// the kernel exposes per process without entering: /proc/<pid>/net/fib_trie (IPv4 LOCAL addresses) and
// /proc/<pid>/net/if_inet6 (IPv6 addresses). PIDs are grouped by netns inode (readlink ns/net) so each netns is
// read once; the host netns (that of pid 1) is never chosen. Among processes in a matching netns the smallest start time wins (the pause/infra process); a
// process whose start time can't be read is used only if nothing else matches. Entries that vanish mid-scan
// are skipped.
import { open, readdir, readFile, readlink } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { ExecError, errorMessage } from '../errors.ts';

export interface PodNetns {
  readonly pid: number;
  /** `<procRoot>/<pid>/ns/net`, usable as an Exec `netns` (see pinNetns before running commands in it). */
  readonly netnsPath: string;
  /** What `ns/net` read during the scan, e.g. `net:[4026532410]`. */
  readonly netnsId: string;
}

export interface FindPodNetnsOptions {
  readonly procRoot: string;
  readonly podIp: string;
  /** Called for entries skipped because they vanished or could not be read (debug logging). */
  readonly onSkip?: (pid: number, reason: string) => void;
}

/** Expands an IPv6 address to the 32 lowercase hex digits used by /proc/net/if_inet6. */
export function ipv6Hex(address: string): string {
  let text = address.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // Embedded IPv4 tail (::ffff:1.2.3.4).
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const octets = tail.split('.').map((part) => Number(part));
    const hex = [((octets[0] ?? 0) << 8) | (octets[1] ?? 0), ((octets[2] ?? 0) << 8) | (octets[3] ?? 0)]
      .map((n) => n.toString(16))
      .join(':');
    text = text.slice(0, lastColon + 1) + hex;
  }
  const [head = '', rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [
    ...headGroups,
    ...Array.from({ length: rest === undefined ? 0 : missing }, () => '0'),
    ...tailGroups,
  ];
  return groups.map((group) => group.padStart(4, '0')).join('');
}

/** IPv4 addresses of type LOCAL in a /proc/<pid>/net/fib_trie text. */
export function localIpv4FromFibTrie(text: string): Set<string> {
  const found = new Set<string>();
  let leaf: string | undefined;
  for (const line of text.split('\n')) {
    const leafMatch = /\|--\s+(\d+\.\d+\.\d+\.\d+)/.exec(line);
    if (leafMatch?.[1] !== undefined) {
      leaf = leafMatch[1];
      continue;
    }
    if (leaf !== undefined && /\/32\s+\S+\s+LOCAL\b/.test(line)) found.add(leaf);
  }
  return found;
}

/** IPv6 addresses (32 hex digits) in a /proc/<pid>/net/if_inet6 text. */
export function ipv6HexFromIfInet6(text: string): Set<string> {
  const found = new Set<string>();
  for (const line of text.split('\n')) {
    const first = line.trim().split(/\s+/)[0];
    if (first !== undefined && /^[0-9a-f]{32}$/i.test(first)) found.add(first.toLowerCase());
  }
  return found;
}

/** Process start time in clock ticks (field 22 of /proc/<pid>/stat), parsed after the `comm` field. */
export function startTimeFromStat(text: string): bigint | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const value = fields[19];
  return value !== undefined && /^\d+$/.test(value) ? BigInt(value) : undefined;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function netnsHoldsIp(procRoot: string, pid: number, podIp: string): Promise<boolean | undefined> {
  if (isIPv4(podIp)) {
    const text = await readOptional(`${procRoot}/${pid}/net/fib_trie`);
    return text === undefined ? undefined : localIpv4FromFibTrie(text).has(podIp);
  }
  const text = await readOptional(`${procRoot}/${pid}/net/if_inet6`);
  return text === undefined ? undefined : ipv6HexFromIfInet6(text).has(ipv6Hex(podIp));
}

/** Finds the netns holding `podIp`. Rejects with ExecError 'NETNS' when the IP is unparsable, when no netns
 * holds it, or when several distinct network namespaces hold it (ambiguous: we refuse to program rules into a
 * namespace that may not be the pod's). */
export async function findPodNetns(options: FindPodNetnsOptions): Promise<PodNetns> {
  const { procRoot, podIp } = options;
  if (!isIPv4(podIp) && !isIPv6(podIp)) {
    throw new ExecError('NETNS', `failed to parse pod IP ${JSON.stringify(podIp)}`);
  }
  const skip = options.onSkip ?? (() => {});
  let entries: string[];
  try {
    entries = await readdir(procRoot);
  } catch (error) {
    throw new ExecError('NETNS', `failed to read ${procRoot}`, { cause: error });
  }
  const byNetns = new Map<string, number[]>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const link = await readlink(`${procRoot}/${pid}/ns/net`);
      const pids = byNetns.get(link);
      if (pids === undefined) byNetns.set(link, [pid]);
      else pids.push(pid);
    } catch {
      skip(pid, 'ns/net unreadable (process gone?)');
    }
  }

  // Never the host's own netns (pid 1): a host-network pod's IP is the node's, and rules there would capture the
  // whole node's traffic.
  // Unreadable where pid 1 is sandboxed from us (a nested container, as in this project's test lab), the guard
  // cannot run: said through onSkip, not failed, because the controller refuses host-network pods before it gets
  // here (this is the second line of defence), and failing would stop every in-place repair on such a node.
  let hostNetns: string | undefined;
  try {
    hostNetns = await readlink(`${procRoot}/1/ns/net`);
  } catch (error) {
    skip(1, `ns/net unreadable (${errorMessage(error)}): the host netns cannot be ruled out by id`);
  }
  const matches: { netns: string; pids: number[] }[] = [];
  for (const [netns, pids] of byNetns) {
    if (netns === hostNetns) continue;
    for (const pid of pids) {
      const holds = await netnsHoldsIp(procRoot, pid, podIp);
      if (holds === undefined) {
        skip(pid, 'net/ unreadable (process gone?)');
        continue;
      }
      if (holds) matches.push({ netns, pids });
      break;
    }
  }
  if (matches.length === 0) {
    throw new ExecError('NETNS', `failed to find network namespace for pod IP ${podIp} under ${procRoot}`);
  }
  if (matches.length > 1) {
    throw new ExecError(
      'NETNS',
      `pod IP ${podIp} found in ${matches.length} network namespaces (${matches.map((m) => m.netns).join(', ')}); refusing to guess`,
    );
  }
  const candidates = matches[0]?.pids ?? [];
  let best: { pid: number; start: bigint } | undefined;
  let fallback: number | undefined;
  for (const pid of candidates) {
    const stat = await readOptional(`${procRoot}/${pid}/stat`);
    const start = stat === undefined ? undefined : startTimeFromStat(stat);
    if (start === undefined) {
      fallback ??= pid;
      continue;
    }
    if (best === undefined || start < best.start) best = { pid, start };
  }
  const pid = best?.pid ?? fallback;
  if (pid === undefined) {
    throw new ExecError('NETNS', `failed to find network namespace for pod IP ${podIp} under ${procRoot}`);
  }
  return { pid, netnsPath: `${procRoot}/${pid}/ns/net`, netnsId: matches[0]?.netns ?? '' };
}

/** Holds a found netns open for the commands run in it. A PID can be reused once the pod's process exits, so a path
 * through `/proc/<pid>` re-read by each command could name another namespace (the host's, even) half-way through;
 * the namespace is opened once, proved to be the one the scan matched, and named through this process's own fd,
 * which stays that namespace until `close`. */
export async function pinNetns(found: PodNetns): Promise<{ readonly path: string; close(): Promise<void> }> {
  const handle = await open(found.netnsPath, 'r');
  try {
    // A namespace file's inode is the number in its `net:[…]` name, whichever path opened it.
    const opened = `net:[${(await handle.stat()).ino}]`;
    if (opened !== found.netnsId) {
      throw new ExecError(
        'NETNS',
        `${found.netnsPath} is ${opened} now, not the ${found.netnsId} found for the pod (its process exited?)`,
      );
    }
  } catch (error) {
    await handle.close();
    throw error;
  }
  return { path: `/proc/${process.pid}/fd/${handle.fd}`, close: () => handle.close() };
}
