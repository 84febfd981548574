// Validation of a CaptureConfig before any rule is built (behaviour §2.7, §2.9.2 pre-checks). Every value that
// ends up in an iptables-restore line or an nft script is checked here, so a newline or a stray token can never
// inject a rule, and the error names the field and the bad item.
import type { CaptureConfig } from './capture-config.ts';
import { AppError, quoted } from '../errors.ts';
import { formatPrefix, isLoopback, parseAddress, parsePrefix } from './ip.ts';

export interface ValidatedLists {
  readonly excludeInterfaces: readonly string[];
  readonly rerouteVirtualInterfaces: readonly string[];
  readonly inboundPortsInclude: readonly string[];
  readonly inboundPortsExclude: readonly string[];
  readonly outboundPortsInclude: readonly string[];
  readonly outboundPortsExclude: readonly string[];
  readonly outboundIpRangesInclude: {
    readonly wildcard: boolean;
    readonly v4: readonly string[];
    readonly v6: readonly string[];
  };
  readonly outboundIpRangesExclude: { readonly v4: readonly string[]; readonly v6: readonly string[] };
  readonly ownerGroupsInclude: readonly string[];
  readonly ownerGroupsExclude: readonly string[];
  /** Any include CIDR (either family) contains a loopback address. */
  readonly loopbackIncluded: boolean;
}

export const MAX_OWNER_GROUPS_INCLUDE = 64;

function invalid(field: string, value: string, why: string): AppError {
  return new AppError('RULES_INVALID', `invalid ${field} ${quoted(value)}: ${why}`);
}

function split(value: string): string[] {
  return value.split(',').filter((item) => item !== '');
}

const NUMBER = /^(0|[1-9]\d*)$/;

function checkPort(field: string, value: string): void {
  if (!NUMBER.test(value) || Number(value) > 65535)
    throw invalid(field, value, 'not a port number (0-65535)');
}

/** Ports: comma list; items may carry white space around them (upstream validates them after Go's TrimSpace, and
 * iptables-restore splits its lines on tabs as on spaces). */
function portList(field: string, value: string, allowWildcard: boolean): string[] {
  if (allowWildcard && value === '*') return [];
  const items = split(value);
  for (const item of items) {
    if (item.trim() === '*') {
      throw invalid(field, value, allowWildcard ? '"*" must be the whole value' : '"*" is not allowed here');
    }
    if (!/^\s*(0|[1-9]\d*)\s*$/.test(item) || Number(item) > 65535) {
      throw invalid(field, value, `${quoted(item)} is not a port number (0-65535)`);
    }
  }
  // Deliberate: trimmed, so " 80" renders `--dport 80` (upstream would print two spaces; same rule).
  return items.map((item) => item.trim());
}

const INTERFACE_NAME = /^[A-Za-z0-9_.@+-]{1,15}$/;

/** Items are trimmed: upstream renders `-i  eth2` for "eth1, eth2", which iptables reads as eth2. */
function interfaceList(field: string, value: string): string[] {
  const items = split(value)
    .map((item) => item.trim())
    .filter((item) => item !== '');
  for (const item of items) {
    if (!INTERFACE_NAME.test(item) || item === '.' || item === '..') {
      throw invalid(field, value, `${quoted(item)} is not a valid interface name`);
    }
  }
  return items;
}

function cidrList(field: string, value: string): { v4: string[]; v6: string[]; loopback: boolean } {
  const result = { v4: [] as string[], v6: [] as string[], loopback: false };
  for (const item of split(value)) {
    const prefix = parsePrefix(item);
    if (prefix === undefined) throw invalid(field, value, `${quoted(item)} is not a CIDR prefix`);
    result[prefix.family].push(formatPrefix(prefix));
    if (isLoopback(prefix)) result.loopback = true;
  }
  return result;
}

const GROUP = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Spaces around a name are dropped: upstream passes them on to iptables-restore, whose tokenizer drops them too, so
 * `ISTIO_OUTBOUND_OWNER_GROUPS="java, 202"` works there and must here. */
function groupList(field: string, value: string): string[] {
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  for (const item of items) {
    if (!GROUP.test(item)) throw invalid(field, value, `${quoted(item)} is not a group name or id`);
  }
  return items;
}

export function validateCaptureConfig(config: CaptureConfig): ValidatedLists {
  checkPort('proxy port', config.proxyPort);
  checkPort('inbound capture port', config.inboundCapturePort);
  checkPort('inbound tunnel port', config.inboundTunnelPort);
  for (const [field, value] of [
    ['proxy UID', config.proxyUid],
    ['proxy GID', config.proxyGid],
  ] as const) {
    const items = split(value);
    if (items.length === 0) throw invalid(field, value, 'empty');
    for (const item of items) if (!NUMBER.test(item)) throw invalid(field, value, `${item} is not a number`);
  }
  if (config.inboundInterceptionMode !== 'REDIRECT' && config.inboundInterceptionMode !== 'TPROXY') {
    throw invalid('interception mode', String(config.inboundInterceptionMode), 'must be REDIRECT or TPROXY');
  }
  if (!NUMBER.test(config.inboundTProxyMark))
    throw invalid('TPROXY mark', config.inboundTProxyMark, 'not a number');
  if (!NUMBER.test(config.inboundTProxyRouteTable)) {
    throw invalid('TPROXY route table', config.inboundTProxyRouteTable, 'not a number');
  }
  const loopbackCidr = parsePrefix(config.hostIpv4LoopbackCidr);
  if (
    loopbackCidr === undefined ||
    loopbackCidr.family !== 'v4' ||
    !isLoopback(loopbackCidr) ||
    loopbackCidr.bits < 8
  ) {
    throw invalid(
      'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR',
      config.hostIpv4LoopbackCidr,
      'must be an IPv4 loopback prefix with mask 8-32',
    );
  }
  for (const [field, servers, family] of [
    ['IPv4 DNS server', config.dnsServersV4, 'v4'],
    ['IPv6 DNS server', config.dnsServersV6, 'v6'],
  ] as const) {
    for (const server of servers) {
      if (parseAddress(server)?.family !== family)
        throw invalid(field, server, 'not an address of that family');
    }
  }
  if (config.outboundIpRangesExclude.split(',').includes('*')) {
    throw invalid('OUTBOUND_IP_RANGES_EXCLUDE', config.outboundIpRangesExclude, '"*" is not allowed');
  }
  const include =
    config.outboundIpRangesInclude === '*'
      ? { v4: [], v6: [], loopback: false }
      : cidrList('OUTBOUND_IP_RANGES_INCLUDE', config.outboundIpRangesInclude);
  const exclude = cidrList('OUTBOUND_IP_RANGES_EXCLUDE', config.outboundIpRangesExclude);
  const ownerGroupsInclude =
    config.ownerGroupsInclude === '*'
      ? []
      : groupList('ISTIO_OUTBOUND_OWNER_GROUPS', config.ownerGroupsInclude);
  if (ownerGroupsInclude.length > MAX_OWNER_GROUPS_INCLUDE) {
    throw invalid(
      'ISTIO_OUTBOUND_OWNER_GROUPS',
      config.ownerGroupsInclude,
      `more than ${MAX_OWNER_GROUPS_INCLUDE} groups`,
    );
  }
  return {
    excludeInterfaces: interfaceList('excluded interfaces', config.excludeInterfaces),
    rerouteVirtualInterfaces: interfaceList('reroute virtual interfaces', config.rerouteVirtualInterfaces),
    inboundPortsInclude: portList('inbound ports include', config.inboundPortsInclude, true),
    // Exclusions only apply under a wildcard include (§2.9.2 step 7); otherwise upstream ignores them, "*" too.
    inboundPortsExclude:
      config.inboundPortsInclude === '*'
        ? portList('inbound ports exclude', config.inboundPortsExclude, false)
        : [],
    outboundPortsInclude: portList('outbound ports include', config.outboundPortsInclude, false),
    outboundPortsExclude: portList('outbound ports exclude', config.outboundPortsExclude, false),
    outboundIpRangesInclude: {
      wildcard: config.outboundIpRangesInclude === '*',
      v4: include.v4,
      v6: include.v6,
    },
    outboundIpRangesExclude: { v4: exclude.v4, v6: exclude.v6 },
    ownerGroupsInclude,
    ownerGroupsExclude: groupList('ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE', config.ownerGroupsExclude),
    loopbackIncluded: include.loopback,
  };
}
