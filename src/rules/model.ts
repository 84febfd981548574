// Rules as data (behaviour §2.9.1–§2.9.3): the builder produces them, the iptables and nftables renderers print
// them, apply/check compare them. One rule = one `-A`/`-I` line of an iptables-restore document.

export type IpFamily = 'v4' | 'v6';
export type TableName = 'filter' | 'mangle' | 'nat' | 'raw';

export interface Rule {
  readonly table: TableName;
  readonly chain: string;
  /** `-I <chain> <insertAt>` when set, `-A <chain>` otherwise. */
  readonly insertAt?: number;
  /** The match/target tokens after the chain (and position), e.g. ['-p', 'tcp', '-j', 'ISTIO_INBOUND']. */
  readonly params: readonly string[];
}

export interface RuleSet {
  readonly v4: readonly Rule[];
  /** Empty unless IPv6 is enabled. */
  readonly v6: readonly Rule[];
}

/** Iptables tables in restore-document order (alphabetical, §2.9.3). */
export const TABLE_ORDER: readonly TableName[] = ['filter', 'mangle', 'nat', 'raw'];

export const BUILTIN_CHAINS: ReadonlySet<string> = new Set([
  'INPUT',
  'OUTPUT',
  'FORWARD',
  'PREROUTING',
  'POSTROUTING',
]);

export const BUILTIN_TARGETS: ReadonlySet<string> = new Set(['ACCEPT', 'RETURN', 'DROP']);

export const ISTIO_INBOUND = 'ISTIO_INBOUND';
export const ISTIO_REDIRECT = 'ISTIO_REDIRECT';
export const ISTIO_IN_REDIRECT = 'ISTIO_IN_REDIRECT';
export const ISTIO_OUTPUT = 'ISTIO_OUTPUT';
export const ISTIO_OUTPUT_DNS = 'ISTIO_OUTPUT_DNS';
export const ISTIO_DIVERT = 'ISTIO_DIVERT';
export const ISTIO_TPROXY = 'ISTIO_TPROXY';
export const ISTIO_DROP = 'ISTIO_DROP';

/** The port the proxy's DNS listener uses (fixed upstream). */
export const DNS_CAPTURE_PORT = '15053';
