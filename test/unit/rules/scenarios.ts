// Capture configurations for the rule-engine goldens, written by hand from behaviour §2.9.4 / §5.3 (what the
// plugin derives for upstream's dry-run test pods) and §5.4 (istio-iptables' own capture tests).
import type { CaptureConfig } from '../../../src/rules/capture-config.ts';
import { DEFAULT_CAPTURE_CONFIG } from '../../../src/rules/capture-config.ts';

/** What the plugin derives for an injected pod with no extra annotations (§2.7). */
export const POD_DEFAULT: CaptureConfig = {
  ...DEFAULT_CAPTURE_CONFIG,
  inboundPortsInclude: '*',
  inboundPortsExclude: '15020,15021,15090',
  outboundPortsExclude: '15020',
  outboundIpRangesInclude: '*',
};

/** Upstream cni/pkg/plugin/testdata/<name>.txt.golden → config. */
export const PLUGIN_SCENARIOS: Readonly<Record<string, { golden: string; config: CaptureConfig }>> = {
  basic: { golden: 'basic', config: POD_DEFAULT },
  'include-exclude-ip': {
    golden: 'include-exclude-ip',
    config: { ...POD_DEFAULT, outboundIpRangesInclude: '127.0.0.0/8', outboundIpRangesExclude: '10.0.0.0/8' },
  },
  'include-exclude-ports': {
    golden: 'include-exclude-ports',
    config: {
      ...POD_DEFAULT,
      inboundPortsInclude: '1111,2222',
      inboundPortsExclude: '3333,4444,15020,15021,15090',
      outboundPortsExclude: '5555,6666',
    },
  },
  tproxy: { golden: 'tproxy', config: { ...POD_DEFAULT, inboundInterceptionMode: 'TPROXY' } },
  dns: { golden: 'dns', config: { ...POD_DEFAULT, redirectDns: true, captureAllDns: true } },
  'invalid-drop': { golden: 'invalid-drop', config: { ...POD_DEFAULT, dropInvalid: true } },
  'custom-uid': {
    golden: 'custom-uid',
    config: { ...POD_DEFAULT, proxyUid: '1000670000', proxyGid: '1000670001' },
  },
  'custom-uid-zero': { golden: 'basic', config: POD_DEFAULT },
  'custom-uid-tproxy': {
    golden: 'custom-uid-tproxy',
    config: {
      ...POD_DEFAULT,
      proxyUid: '1000670000',
      proxyGid: '1000670001',
      inboundInterceptionMode: 'TPROXY',
    },
  },
};

const CAPTURE_BASE: CaptureConfig = DEFAULT_CAPTURE_CONFIG;

/** Our own goldens (test/unit/rules/testdata/<name>.*.golden). Entries named like an upstream case of
 * tools/istio-iptables/pkg/capture/run_test.go carry that case's inputs exactly; session 6 compared their output
 * with upstream's goldens (README "Conformance"). The `pod-*`, `ipv6-pod-*`, `ipv6-dns-servers`,
 * `ipv6-dns-no-servers` and `ipv6-tproxy-exclude-nic-dns-servers` entries are ours. */
export const OWN_SCENARIOS: Readonly<Record<string, CaptureConfig>> = {
  empty: CAPTURE_BASE,
  'pod-default': POD_DEFAULT,
  'pod-tproxy': { ...POD_DEFAULT, inboundInterceptionMode: 'TPROXY' },
  'pod-dns': { ...POD_DEFAULT, redirectDns: true, captureAllDns: true },
  'pod-drop-invalid': { ...POD_DEFAULT, dropInvalid: true },
  'ipv6-pod-default': { ...POD_DEFAULT, enableIpv6: true },
  'ipv6-pod-tproxy': { ...POD_DEFAULT, enableIpv6: true, inboundInterceptionMode: 'TPROXY' },
  'ipv6-pod-dns': { ...POD_DEFAULT, enableIpv6: true, redirectDns: true, captureAllDns: true },
  'ipv6-dns-servers': {
    ...CAPTURE_BASE,
    enableIpv6: true,
    proxyUid: '3,4',
    proxyGid: '1,2',
    redirectDns: true,
    dnsServersV4: ['127.0.0.53'],
    dnsServersV6: ['2001:4860:4860::8888', '::127.0.0.53'],
  },
  'ipv6-dns-no-servers': { ...CAPTURE_BASE, enableIpv6: true, redirectDns: true },
  'ipv6-tproxy-exclude-nic-dns-servers': {
    ...CAPTURE_BASE,
    enableIpv6: true,
    inboundInterceptionMode: 'TPROXY',
    inboundPortsInclude: '*',
    excludeInterfaces: 'not-istio-nic',
    outboundIpRangesInclude: '*',
    outboundIpRangesExclude: '1.1.0.0/16,fd00::/8',
    redirectDns: true,
    dnsServersV4: ['127.0.0.53'],
    dnsServersV6: ['fd00::53'],
  },
  // Upstream run_test.go cases, inputs as there.
  'ipv6-empty-inbound-ports': { ...CAPTURE_BASE, inboundPortsInclude: '', enableIpv6: true },
  'ip-range': {
    ...CAPTURE_BASE,
    outboundIpRangesExclude: '1.1.0.0/16',
    outboundIpRangesInclude: '9.9.0.0/16',
    redirectDns: true,
    proxyGid: '1,2',
    proxyUid: '3,4',
    dnsServersV4: ['127.0.0.53'],
  },
  tproxy: {
    ...CAPTURE_BASE,
    inboundInterceptionMode: 'TPROXY',
    inboundPortsInclude: '*',
    outboundIpRangesExclude: '1.1.0.0/16',
    outboundIpRangesInclude: '9.9.0.0/16',
    redirectDns: true,
    dnsServersV4: ['127.0.0.53'],
    proxyGid: '1337',
    proxyUid: '1337',
    excludeInterfaces: 'not-istio-nic',
    enableIpv6: true,
  },
  'ipv6-inbound-ports': { ...CAPTURE_BASE, inboundPortsInclude: '4000,5000', enableIpv6: true },
  'ipv6-virt-interfaces': {
    ...CAPTURE_BASE,
    inboundPortsInclude: '4000,5000',
    rerouteVirtualInterfaces: 'eth0,eth1',
    enableIpv6: true,
  },
  'ipv6-ipnets': {
    ...CAPTURE_BASE,
    inboundPortsInclude: '4000,5000',
    inboundPortsExclude: '6000,7000,',
    rerouteVirtualInterfaces: 'eth0,eth1',
    outboundIpRangesExclude: '2001:db8::/32',
    outboundIpRangesInclude: '2001:db8::/32',
    enableIpv6: true,
  },
  'ipv6-uid-gid': {
    ...CAPTURE_BASE,
    inboundPortsInclude: '4000,5000',
    inboundPortsExclude: '6000,7000',
    rerouteVirtualInterfaces: 'eth0,eth1',
    proxyGid: '1,2',
    proxyUid: '3,4',
    outboundIpRangesExclude: '2001:db8::/32',
    outboundIpRangesInclude: '2001:db8::/32',
    enableIpv6: true,
  },
  'ipv6-outbound-ports': {
    ...CAPTURE_BASE,
    inboundPortsInclude: '',
    outboundPortsInclude: '32000,31000',
    enableIpv6: true,
  },
  'kube-virt-interfaces': {
    ...CAPTURE_BASE,
    rerouteVirtualInterfaces: 'eth1,eth2',
    outboundIpRangesInclude: '*',
  },
  ipnets: { ...CAPTURE_BASE, outboundIpRangesInclude: '10.0.0.0/8' },
  'ipnets-with-kube-virt-interfaces': {
    ...CAPTURE_BASE,
    rerouteVirtualInterfaces: 'eth1,eth2',
    outboundIpRangesInclude: '10.0.0.0/8',
  },
  'inbound-ports-include': { ...CAPTURE_BASE, inboundPortsInclude: '32000,31000' },
  'inbound-ports-wildcard': { ...CAPTURE_BASE, inboundPortsInclude: '*' },
  'inbound-ports-tproxy': {
    ...CAPTURE_BASE,
    inboundPortsInclude: '32000,31000',
    inboundInterceptionMode: 'TPROXY',
  },
  'inbound-ports-wildcard-tproxy': {
    ...CAPTURE_BASE,
    inboundPortsInclude: '*',
    inboundInterceptionMode: 'TPROXY',
  },
  'inbound-ports-empty-tproxy': { ...CAPTURE_BASE, inboundInterceptionMode: 'TPROXY' },
  'dns-uid-gid': {
    ...CAPTURE_BASE,
    redirectDns: true,
    dnsServersV4: ['127.0.0.53'],
    dnsServersV6: ['::127.0.0.53'],
    proxyGid: '1,2',
    proxyUid: '3,4',
    enableIpv6: true,
  },
  'ipv6-dns-uid-gid': {
    ...CAPTURE_BASE,
    enableIpv6: true,
    redirectDns: true,
    proxyGid: '1,2',
    proxyUid: '3,4',
  },
  'outbound-owner-groups': { ...CAPTURE_BASE, ownerGroupsInclude: 'java,202' },
  'outbound-owner-groups-exclude': { ...CAPTURE_BASE, ownerGroupsExclude: '888,ftp' },
  'ipv6-dns-outbound-owner-groups': {
    ...CAPTURE_BASE,
    enableIpv6: true,
    redirectDns: true,
    ownerGroupsInclude: 'java,202',
  },
  'ipv6-dns-outbound-owner-groups-exclude': {
    ...CAPTURE_BASE,
    enableIpv6: true,
    redirectDns: true,
    ownerGroupsExclude: '888,ftp',
  },
  'outbound-ports-include': { ...CAPTURE_BASE, outboundPortsInclude: '32000,31000' },
  'loopback-outbound-iprange': {
    ...CAPTURE_BASE,
    outboundIpRangesInclude: '127.1.2.3/32',
    redirectDns: true,
    dnsServersV4: ['127.0.0.53'],
    proxyGid: '1,2',
    proxyUid: '3,4',
  },
  'basic-exclude-nic': { ...CAPTURE_BASE, excludeInterfaces: 'not-istio-nic' },
  'drop-invalid': { ...CAPTURE_BASE, dropInvalid: true },
  'host-ipv4-loopback-cidr': { ...CAPTURE_BASE, hostIpv4LoopbackCidr: '127.0.0.1/8' },
};

/** A meshed pod's manifest whose rules are the `basic` golden (what `install-cni rules --pod` reads). */
export const MESHED_POD_MANIFEST = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'app',
    namespace: 'default',
    annotations: {
      'sidecar.istio.io/status': '{}',
      'sidecar.istio.io/interceptionMode': 'REDIRECT',
      'traffic.sidecar.istio.io/includeInboundPorts': '*',
      'traffic.sidecar.istio.io/excludeInboundPorts': '15020',
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '*',
    },
  },
  spec: {
    containers: [
      { name: 'test', image: 'app' },
      { name: 'istio-proxy', image: 'proxyv2', securityContext: { runAsUser: 1337, runAsGroup: 1337 } },
    ],
  },
};
