// Pure parsing of the probe of the pod netns before applying rules: four /proc/net files, read in-process by the
// compiled plugin (src/sys/thread-netns.ts) or by one command inside the netns elsewhere:
// `head -n 100000 /proc/net/ip_tables_names /proc/net/ip6_tables_names /proc/net/if_inet6 /proc/net/fib_trie`.
// /proc/net follows the reader's netns, so one cheap read tells us (a) whether legacy xtables tables exist per
// family (a fresh pod netns has none → no legacy rules → no `iptables-legacy-save` needed) and (b) the local
// addresses for IPv6 on/off (behaviour §2.8): IPv4 from fib_trie's `/32 host LOCAL` entries, IPv6 from if_inet6.
import { AppError } from '../errors.ts';
import type { ParsedAddress } from './ip.ts';
import { formatAddress, isLinkLocal, isLoopback, parseAddress, parseIpv4 } from './ip.ts';

/** The /proc/net files the probe reads. */
export const PROBE_FILES = ['ip_tables_names', 'ip6_tables_names', 'if_inet6', 'fib_trie'] as const;

export const PROBE_ARGV: readonly string[] = [
  'head',
  '-n',
  '100000',
  ...PROBE_FILES.map((name) => `/proc/net/${name}`),
];

export interface NetnsProbe {
  /** Legacy xtables tables that exist in this netns, per family. */
  readonly legacyTables: { readonly v4: readonly string[]; readonly v6: readonly string[] };
  /** Usable local addresses (no loopback/link-local), IPv4 first as the kernel's AF_UNSPEC dump lists them. */
  readonly addresses: readonly ParsedAddress[];
}

/** `head`'s output → the text of each /proc/net file it printed, by name (PROBE_FILES). */
export function probeFilesFromHead(output: string): Map<string, string> {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of output.split('\n')) {
    const header = /^==> \/proc\/net\/(.*) <==$/.exec(line);
    if (header !== null) {
      current = [];
      sections.set(header[1] ?? '', current);
    } else {
      current?.push(line);
    }
  }
  return new Map([...sections].map(([name, lines]) => [name, lines.join('\n')]));
}

/** `files`: the text of each /proc/net file that could be read, by name (PROBE_FILES). */
export function parseNetnsProbe(files: ReadonlyMap<string, string>): NetnsProbe {
  const lines = (name: string) => (files.get(name) ?? '').split('\n').filter((line) => line !== '');
  const addresses: ParsedAddress[] = [];
  const seen = new Set<string>();
  const push = (address: ParsedAddress) => {
    const key = formatAddress(address);
    if (isLoopback(address) || isLinkLocal(address) || seen.has(key)) return;
    seen.add(key);
    addresses.push(address);
  };
  let last: string | undefined;
  for (const line of lines('fib_trie')) {
    const leaf = /\|-- (\S+)$/.exec(line);
    if (leaf !== null) last = leaf[1];
    else if (line.trim() === '/32 host LOCAL' && last !== undefined) {
      const bytes = parseIpv4(last);
      if (bytes !== undefined) push({ family: 'v4', bytes });
    }
  }
  for (const line of lines('if_inet6')) {
    const hex = line.trim().split(/\s+/)[0] ?? '';
    if (!/^[0-9a-f]{32}$/.test(hex)) continue;
    const bytes: number[] = [];
    for (let i = 0; i < 32; i += 2) bytes.push(parseInt(hex.slice(i, i + 2), 16));
    push({ family: 'v6', bytes });
  }
  return {
    legacyTables: {
      v4: lines('ip_tables_names').map((t) => t.trim()),
      v6: lines('ip6_tables_names').map((t) => t.trim()),
    },
    addresses,
  };
}

/** §2.8: without dual-stack the first usable address decides; with dual-stack any IPv6 address enables IPv6. */
export function decideIpv6(addresses: readonly ParsedAddress[], dualStack: boolean): boolean {
  const first = addresses[0];
  if (first === undefined) throw new AppError('NETNS', 'no valid local IP address found');
  return dualStack ? addresses.some((a) => a.family === 'v6') : first.family === 'v6';
}

/** Fallback source of addresses: `ip -o addr show` (IPv4 listed first, as the kernel's AF_UNSPEC dump does). */
export function parseIpAddrOutput(output: string): ParsedAddress[] {
  const v4: ParsedAddress[] = [];
  const v6: ParsedAddress[] = [];
  // A point-to-point address prints as `inet <local> peer <remote>/<bits>`: the local one counts.
  for (const match of output.matchAll(/\sinet6?\s+([0-9a-fA-F:.]+)(?:\/|\s+peer\s)/g)) {
    const address = parseAddress(match[1] ?? '');
    if (address === undefined || isLoopback(address) || isLinkLocal(address)) continue;
    (address.family === 'v4' ? v4 : v6).push(address);
  }
  return [...v4, ...v6];
}
