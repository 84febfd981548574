// The redirect parameters that the rule engine turns into iptables/nftables rules. This is the contract between
// the plugin's pod decision (src/plugin: pod → CaptureConfig), the `install-cni rules` CLI (flags → CaptureConfig),
// the repair controller, and the rule builder (src/rules/build.ts). Field meanings and defaults follow
// istio-iptables (behaviour §2.7, §2.9.2). String-typed list fields keep upstream's raw text on purpose: the
// generation algorithm splits them itself (`Split(x)` = split on ',' dropping empty items, no trimming).

export type InterceptionMode = 'REDIRECT' | 'TPROXY';

export interface CaptureConfig {
  /** Outbound listener port (ISTIO_REDIRECT target), default "15001". */
  readonly proxyPort: string;
  /** Inbound capture port (ISTIO_IN_REDIRECT / TPROXY target), default "15006". */
  readonly inboundCapturePort: string;
  /** HBONE tunnel port, always bypassed, default "15008". */
  readonly inboundTunnelPort: string;
  /** Proxy UID(s), comma list, default "1337". */
  readonly proxyUid: string;
  /** Proxy GID(s), comma list, default "1337". */
  readonly proxyGid: string;
  readonly inboundInterceptionMode: InterceptionMode;
  /** TPROXY mark, default "1337". */
  readonly inboundTProxyMark: string;
  /** TPROXY policy-routing table, default "133". */
  readonly inboundTProxyRouteTable: string;
  /** "*" = all, "" = none, else comma list of ports. */
  readonly inboundPortsInclude: string;
  readonly inboundPortsExclude: string;
  readonly outboundPortsInclude: string;
  readonly outboundPortsExclude: string;
  /** "*" = all, "" = none, else comma list of CIDRs (v4 and v6 mixed). */
  readonly outboundIpRangesInclude: string;
  readonly outboundIpRangesExclude: string;
  /** Comma list of interface names whose traffic is never captured. */
  readonly excludeInterfaces: string;
  /** Comma list of virtual (kubevirt) interfaces whose inbound traffic is rerouted to the outbound listener. */
  readonly rerouteVirtualInterfaces: string;
  readonly redirectDns: boolean;
  readonly captureAllDns: boolean;
  /** DNS servers (from resolv.conf) used when redirectDns && !captureAllDns. Empty on the CNI path. */
  readonly dnsServersV4: readonly string[];
  readonly dnsServersV6: readonly string[];
  readonly dropInvalid: boolean;
  readonly dualStack: boolean;
  /** Whether IPv6 rules are generated (decided by local IP detection in the pod netns, §2.8). */
  readonly enableIpv6: boolean;
  /** ISTIO_OUTBOUND_OWNER_GROUPS, default "*". */
  readonly ownerGroupsInclude: string;
  /** ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE, default "". */
  readonly ownerGroupsExclude: string;
  /** ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR, default "127.0.0.1/32". */
  readonly hostIpv4LoopbackCidr: string;
}

/** istio-iptables' defaults (contract.md, `install-cni rules` without --pod). */
export const DEFAULT_CAPTURE_CONFIG: CaptureConfig = Object.freeze({
  proxyPort: '15001',
  inboundCapturePort: '15006',
  inboundTunnelPort: '15008',
  proxyUid: '1337',
  proxyGid: '1337',
  inboundInterceptionMode: 'REDIRECT',
  inboundTProxyMark: '1337',
  inboundTProxyRouteTable: '133',
  inboundPortsInclude: '',
  inboundPortsExclude: '',
  outboundPortsInclude: '',
  outboundPortsExclude: '',
  outboundIpRangesInclude: '',
  outboundIpRangesExclude: '',
  excludeInterfaces: '',
  rerouteVirtualInterfaces: '',
  redirectDns: false,
  captureAllDns: false,
  dnsServersV4: [],
  dnsServersV6: [],
  dropInvalid: false,
  dualStack: false,
  enableIpv6: false,
  ownerGroupsInclude: '*',
  ownerGroupsExclude: '',
  hostIpv4LoopbackCidr: '127.0.0.1/32',
});
