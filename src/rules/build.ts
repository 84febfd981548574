// Pure: CaptureConfig → rules, exactly istio-iptables' generation order (behaviour §2.9.2). Validation runs
// first, so nothing invalid (bad ports, CIDRs, interface names, stray whitespace/newlines) ever reaches
// iptables-restore or nft.
import type { CaptureConfig } from './capture-config.ts';
import type { IpFamily, Rule, RuleSet, TableName } from './model.ts';
import {
  DNS_CAPTURE_PORT,
  ISTIO_DIVERT,
  ISTIO_DROP,
  ISTIO_INBOUND,
  ISTIO_IN_REDIRECT,
  ISTIO_OUTPUT,
  ISTIO_OUTPUT_DNS,
  ISTIO_REDIRECT,
  ISTIO_TPROXY,
} from './model.ts';
import { validateCaptureConfig } from './validate.ts';

export interface BuildResult {
  readonly rules: RuleSet;
  /** Non-fatal notes (e.g. DNS capture dropped because no DNS servers are known). */
  readonly warnings: readonly string[];
}

/** Upstream `Split`: split on ',' dropping empty items, no trimming. */
export function splitList(value: string): string[] {
  return value.split(',').filter((item) => item !== '');
}

class RuleCollector {
  readonly v4: Rule[] = [];
  readonly v6: Rule[] = [];
  readonly ipv6: boolean;
  constructor(ipv6: boolean) {
    this.ipv6 = ipv6;
  }
  add(
    family: IpFamily | 'both',
    table: TableName,
    chain: string,
    params: readonly string[],
    insertAt?: number,
  ) {
    const rule: Rule = insertAt === undefined ? { table, chain, params } : { table, chain, insertAt, params };
    if (family !== 'v6') this.v4.push(rule);
    if (family !== 'v4' && this.ipv6) this.v6.push(rule);
  }
  /** A rule whose text differs per family (the loopback or 127.0.0.6 address). */
  addPerFamily(
    table: TableName,
    chain: string,
    make: (family: IpFamily) => readonly string[],
    insertAt?: number,
  ) {
    this.add('v4', table, chain, make('v4'), insertAt);
    if (this.ipv6) this.add('v6', table, chain, make('v6'), insertAt);
  }
}

export function buildCaptureRules(config: CaptureConfig): BuildResult {
  const v = validateCaptureConfig(config);
  const warnings: string[] = [];
  const c = new RuleCollector(config.enableIpv6);
  const tproxy = config.inboundInterceptionMode === 'TPROXY';
  const T: TableName = tproxy ? 'mangle' : 'nat';
  const P = config.proxyPort;
  const Z = config.inboundCapturePort;
  const E = config.inboundTunnelPort;
  const M = config.inboundTProxyMark;
  const loopback = (family: IpFamily): string => (family === 'v4' ? config.hostIpv4LoopbackCidr : '::1/128');
  const inboundSource = (family: IpFamily): string => (family === 'v4' ? '127.0.0.6/32' : '::6/128');
  const uids = splitList(config.proxyUid);
  const gids = splitList(config.proxyGid);

  let redirectDns = config.redirectDns;
  const servers4 = config.dnsServersV4;
  const servers6 = config.enableIpv6 ? config.dnsServersV6 : [];
  // Whether any server is known, in either family (as upstream: IPv6 servers keep DNS capture in the IPv4 rules too).
  if (
    redirectDns &&
    !config.captureAllDns &&
    config.dnsServersV4.length === 0 &&
    config.dnsServersV6.length === 0
  ) {
    warnings.push(
      'REDIRECT_DNS is set, but CAPTURE_ALL_DNS is off and no DNS servers are known: DNS is not captured',
    );
    redirectDns = false;
  }

  // 1. Excluded interfaces.
  for (const name of v.excludeInterfaces) {
    c.add('both', 'nat', 'PREROUTING', ['-i', name, '-j', 'RETURN']);
    c.add('both', 'nat', 'OUTPUT', ['-o', name, '-j', 'RETURN']);
  }
  if (tproxy) {
    for (const name of v.excludeInterfaces) {
      c.add('both', 'mangle', 'PREROUTING', ['-i', name, '-j', 'RETURN']);
      c.add('both', 'mangle', 'OUTPUT', ['-o', name, '-j', 'RETURN']);
    }
  }
  // 2. Reroute-virtual interfaces bypass nat PREROUTING (the ISTIO_REDIRECT inserts of step 18 land above).
  for (const name of v.rerouteVirtualInterfaces) {
    c.add('both', 'nat', 'PREROUTING', ['-i', name, '-j', 'RETURN'], 1);
  }
  // 3. Drop invalid.
  if (config.dropInvalid) {
    c.add('both', 'mangle', 'PREROUTING', ['-m', 'conntrack', '--ctstate', 'INVALID', '-j', ISTIO_DROP]);
    c.add('both', 'mangle', ISTIO_DROP, ['-j', 'DROP']);
  }
  // 4–6.
  c.add('both', 'nat', ISTIO_INBOUND, ['-p', 'tcp', '--dport', E, '-j', 'RETURN']);
  c.add('both', 'nat', ISTIO_REDIRECT, ['-p', 'tcp', '-j', 'REDIRECT', '--to-ports', P]);
  c.add('both', 'nat', ISTIO_IN_REDIRECT, ['-p', 'tcp', '-j', 'REDIRECT', '--to-ports', Z]);
  // 7. Inbound.
  if (config.inboundPortsInclude !== '') {
    if (tproxy) {
      c.add('both', 'mangle', ISTIO_DIVERT, ['-j', 'MARK', '--set-mark', M]);
      c.add('both', 'mangle', ISTIO_DIVERT, ['-j', 'ACCEPT']);
      c.addPerFamily('mangle', ISTIO_TPROXY, (f) => [
        '!',
        '-d',
        loopback(f),
        '-p',
        'tcp',
        '-j',
        'TPROXY',
        '--tproxy-mark',
        `${M}/0xffffffff`,
        '--on-port',
        Z,
      ]);
    }
    c.add('both', T, 'PREROUTING', ['-p', 'tcp', '-j', ISTIO_INBOUND]);
    if (config.inboundPortsInclude === '*') {
      for (const port of v.inboundPortsExclude) {
        c.add('both', T, ISTIO_INBOUND, ['-p', 'tcp', '--dport', port, '-j', 'RETURN']);
      }
      if (tproxy) {
        c.add('both', 'mangle', ISTIO_INBOUND, [
          '-p',
          'tcp',
          '-m',
          'conntrack',
          '--ctstate',
          'RELATED,ESTABLISHED',
          '-j',
          ISTIO_DIVERT,
        ]);
        c.add('both', 'mangle', ISTIO_INBOUND, ['-p', 'tcp', '-j', ISTIO_TPROXY]);
      } else {
        c.add('both', 'nat', ISTIO_INBOUND, ['-p', 'tcp', '-j', ISTIO_IN_REDIRECT]);
      }
    } else {
      for (const port of v.inboundPortsInclude) {
        if (tproxy) {
          c.add('both', 'mangle', ISTIO_INBOUND, [
            '-p',
            'tcp',
            '--dport',
            port,
            '-m',
            'conntrack',
            '--ctstate',
            'RELATED,ESTABLISHED',
            '-j',
            ISTIO_DIVERT,
          ]);
          c.add('both', 'mangle', ISTIO_INBOUND, ['-p', 'tcp', '--dport', port, '-j', ISTIO_TPROXY]);
        } else {
          c.add('both', 'nat', ISTIO_INBOUND, ['-p', 'tcp', '--dport', port, '-j', ISTIO_IN_REDIRECT]);
        }
      }
    }
  }
  // 8–10.
  c.add('both', 'nat', 'OUTPUT', ['-j', ISTIO_OUTPUT]);
  for (const port of v.outboundPortsExclude) {
    c.add('both', 'nat', ISTIO_OUTPUT, ['-p', 'tcp', '--dport', port, '-j', 'RETURN']);
    c.add('both', 'nat', ISTIO_OUTPUT, ['-p', 'udp', '--dport', port, '-j', 'RETURN']);
  }
  c.addPerFamily('nat', ISTIO_OUTPUT, (f) => ['-o', 'lo', '-s', inboundSource(f), '-j', 'RETURN']);
  // 11–12. Proxy UIDs and GIDs.
  const ownerRules = (flag: '--uid-owner' | '--gid-owner', id: string, multiport: boolean) => {
    c.addPerFamily('nat', ISTIO_OUTPUT, (f) => [
      '-o',
      'lo',
      '!',
      '-d',
      loopback(f),
      '-p',
      'tcp',
      ...(multiport ? ['-m', 'multiport', '!', '--dports', `53,${E}`] : ['!', '--dport', E]),
      '-m',
      'owner',
      flag,
      id,
      '-j',
      ISTIO_IN_REDIRECT,
    ]);
    if (!v.loopbackIncluded) {
      c.add(
        'both',
        'nat',
        ISTIO_OUTPUT,
        redirectDns
          ? ['-o', 'lo', '-p', 'tcp', '!', '--dport', '53', '-m', 'owner', '!', flag, id, '-j', 'RETURN']
          : ['-o', 'lo', '-m', 'owner', '!', flag, id, '-j', 'RETURN'],
      );
    }
    c.add('both', 'nat', ISTIO_OUTPUT, ['-m', 'owner', flag, id, '-j', 'RETURN']);
  };
  for (const uid of uids) ownerRules('--uid-owner', uid, redirectDns);
  for (const gid of gids) ownerRules('--gid-owner', gid, false);
  // 13. Owner-group filter.
  if (config.ownerGroupsInclude === '*') {
    for (const group of v.ownerGroupsExclude) {
      c.add('both', 'nat', ISTIO_OUTPUT, ['-m', 'owner', '--gid-owner', group, '-j', 'RETURN']);
    }
  } else {
    c.add('both', 'nat', ISTIO_OUTPUT, [
      ...v.ownerGroupsInclude.flatMap((group) => ['-m', 'owner', '!', '--gid-owner', group]),
      '-j',
      'RETURN',
    ]);
  }
  // 14. DNS.
  if (redirectDns) {
    const all = config.captureAllDns;
    c.add('both', 'raw', 'OUTPUT', ['-j', ISTIO_OUTPUT_DNS]);
    if (all || servers4.length > 0) c.add('v4', 'nat', ISTIO_OUTPUT, ['-j', ISTIO_OUTPUT_DNS]);
    if (all || servers6.length > 0) c.add('v6', 'nat', ISTIO_OUTPUT, ['-j', ISTIO_OUTPUT_DNS]);
    for (const [proto, toPort] of [
      ['tcp', '--to-ports'],
      ['udp', '--to-port'],
    ] as const) {
      if (all) {
        c.add('both', 'nat', ISTIO_OUTPUT_DNS, [
          '-p',
          proto,
          '--dport',
          '53',
          '-j',
          'REDIRECT',
          toPort,
          DNS_CAPTURE_PORT,
        ]);
      } else {
        for (const [family, servers, bits] of [
          ['v4', servers4, '32'],
          ['v6', servers6, '128'],
        ] as const) {
          for (const server of servers) {
            c.add(family, 'nat', ISTIO_OUTPUT_DNS, [
              '-p',
              proto,
              '--dport',
              '53',
              '-d',
              `${server}/${bits}`,
              '-j',
              'REDIRECT',
              toPort,
              DNS_CAPTURE_PORT,
            ]);
          }
        }
      }
    }
    for (const [flag, ids] of [
      ['--uid-owner', uids],
      ['--gid-owner', gids],
    ] as const) {
      for (const id of ids) {
        c.add('both', 'raw', ISTIO_OUTPUT_DNS, [
          '-p',
          'udp',
          '--dport',
          '53',
          '-m',
          'owner',
          flag,
          id,
          '-j',
          'CT',
          '--zone',
          '1',
        ]);
        c.add('both', 'raw', ISTIO_OUTPUT_DNS, [
          '-p',
          'udp',
          '--sport',
          DNS_CAPTURE_PORT,
          '-m',
          'owner',
          flag,
          id,
          '-j',
          'CT',
          '--zone',
          '2',
        ]);
      }
    }
    if (all) {
      c.add('both', 'raw', 'PREROUTING', ['-j', ISTIO_INBOUND]);
      c.add('both', 'raw', ISTIO_OUTPUT_DNS, ['-p', 'udp', '--dport', '53', '-j', 'CT', '--zone', '2']);
      c.add('both', 'raw', ISTIO_INBOUND, ['-p', 'udp', '--sport', '53', '-j', 'CT', '--zone', '1']);
    } else {
      for (const [family, servers, bits] of [
        ['v4', servers4, '32'],
        ['v6', servers6, '128'],
      ] as const) {
        if (servers.length === 0) continue;
        c.add(family, 'raw', 'PREROUTING', ['-j', ISTIO_INBOUND]);
        for (const server of servers) {
          const cidr = `${server}/${bits}`;
          c.add(family, 'raw', ISTIO_OUTPUT_DNS, [
            '-p',
            'udp',
            '--dport',
            '53',
            '-d',
            cidr,
            '-j',
            'CT',
            '--zone',
            '2',
          ]);
          c.add(family, 'raw', ISTIO_INBOUND, [
            '-p',
            'udp',
            '--sport',
            '53',
            '-s',
            cidr,
            '-j',
            'CT',
            '--zone',
            '1',
          ]);
        }
      }
    }
  }
  // 15–16.
  c.addPerFamily('nat', ISTIO_OUTPUT, (f) => ['-d', loopback(f), '-j', 'RETURN']);
  for (const cidr of v.outboundIpRangesExclude.v4)
    c.add('v4', 'nat', ISTIO_OUTPUT, ['-d', cidr, '-j', 'RETURN']);
  for (const cidr of v.outboundIpRangesExclude.v6)
    c.add('v6', 'nat', ISTIO_OUTPUT, ['-d', cidr, '-j', 'RETURN']);
  // 17.
  for (const port of v.outboundPortsInclude) {
    c.add('both', 'nat', ISTIO_OUTPUT, ['-p', 'tcp', '--dport', port, '-j', ISTIO_REDIRECT]);
  }
  // 18. Included CIDRs.
  for (const family of ['v4', 'v6'] as const) {
    if (v.outboundIpRangesInclude.wildcard) {
      c.add(family, 'nat', ISTIO_OUTPUT, ['-j', ISTIO_REDIRECT]);
      for (const name of v.rerouteVirtualInterfaces) {
        c.add(family, 'nat', 'PREROUTING', ['-i', name, '-j', ISTIO_REDIRECT], 1);
      }
    } else {
      for (const cidr of v.outboundIpRangesInclude[family]) {
        for (const name of v.rerouteVirtualInterfaces) {
          c.add(family, 'nat', 'PREROUTING', ['-i', name, '-d', cidr, '-j', ISTIO_REDIRECT], 1);
        }
        c.add(family, 'nat', ISTIO_OUTPUT, ['-d', cidr, '-j', ISTIO_REDIRECT]);
      }
    }
  }
  // 19. TPROXY marks and routing.
  if (tproxy) {
    c.add('both', 'mangle', 'PREROUTING', [
      '-p',
      'tcp',
      '-m',
      'mark',
      '--mark',
      M,
      '-j',
      'CONNMARK',
      '--save-mark',
    ]);
    c.add('both', 'mangle', 'OUTPUT', ['-p', 'tcp', '-o', 'lo', '-m', 'mark', '--mark', M, '-j', 'RETURN']);
    for (const [flag, ids] of [
      ['--uid-owner', uids],
      ['--gid-owner', gids],
    ] as const) {
      for (const id of ids) {
        c.addPerFamily('mangle', 'OUTPUT', (f) => [
          '!',
          '-d',
          loopback(f),
          '-p',
          'tcp',
          '-o',
          'lo',
          '-m',
          'owner',
          flag,
          id,
          '-j',
          'MARK',
          '--set-mark',
          '1338',
        ]);
      }
    }
    c.add('both', 'mangle', 'OUTPUT', [
      '-p',
      'tcp',
      '-m',
      'connmark',
      '--mark',
      M,
      '-j',
      'CONNMARK',
      '--restore-mark',
    ]);
    c.add('both', 'mangle', ISTIO_INBOUND, ['-p', 'tcp', '-m', 'mark', '--mark', M, '-j', 'RETURN'], 1);
    c.addPerFamily(
      'mangle',
      ISTIO_INBOUND,
      (f) => ['-p', 'tcp', '-s', inboundSource(f), '-i', 'lo', '-j', 'RETURN'],
      2,
    );
    c.add(
      'both',
      'mangle',
      ISTIO_INBOUND,
      ['-p', 'tcp', '-i', 'lo', '-m', 'mark', '!', '--mark', '1338', '-j', 'RETURN'],
      3,
    );
  }
  return { rules: { v4: c.v4, v6: c.v6 }, warnings };
}
