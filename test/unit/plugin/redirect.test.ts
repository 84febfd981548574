import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  captureConfigFromPod,
  captureConfigFromPodWithWarnings,
  dedupPorts,
  podInfoFromManifest,
  withMandatoryInboundExclusions,
} from '../../../src/plugin/redirect.ts';
import { AppError } from '../../../src/errors.ts';

function manifest(annotations: Record<string, string> = {}, extra: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'ns', annotations, labels: { app: 'x' } },
    spec: {
      initContainers: [{ name: 'istio-validation' }],
      containers: [
        { name: 'app', image: 'busybox' },
        {
          name: 'istio-proxy',
          args: ['proxy', 'sidecar', '--domain'],
          env: [
            { name: 'ISTIO_META_DNS_CAPTURE', value: 'true' },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ],
          securityContext: { runAsUser: 1337, runAsGroup: 1337 },
          ...extra,
        },
      ],
    },
  };
}

/** The capture config the plugin derives from a pod with these annotations (and the proxy env `env`). */
function fromAnnotations(annotations: Record<string, string>, env: Record<string, string> = {}) {
  return captureConfigFromPod(podInfoFromManifest(manifest(annotations)), env);
}

test('podInfoFromManifest extracts containers (init first), proxy type, env and ids', () => {
  const pod = podInfoFromManifest(manifest());
  assert.deepEqual(pod.containers, ['istio-validation', 'app', 'istio-proxy']);
  assert.equal(pod.proxyType, 'sidecar');
  assert.deepEqual(pod.proxyEnvironments, { ISTIO_META_DNS_CAPTURE: 'true', POD_NAME: '' });
  assert.equal(pod.proxyUid, 1337);
  assert.equal(pod.name, 'p');
  assert.equal(pod.namespace, 'ns');
});

test('podInfoFromManifest rejects non-pods with a message naming the field', () => {
  assert.throws(() => podInfoFromManifest('nope'), /invalid pod object/);
  assert.throws(
    () => podInfoFromManifest({ metadata: {}, spec: { containers: [{}] } }),
    /containers\.0\.name/,
  );
  assert.throws(
    () => podInfoFromManifest(null),
    (error: unknown) => error instanceof AppError,
  );
});

test('defaults match upstream', () => {
  const config = fromAnnotations({});
  assert.equal(config.inboundInterceptionMode, 'REDIRECT');
  assert.equal(config.inboundPortsInclude, '*');
  assert.equal(config.inboundPortsExclude, '15020,15021,15090');
  assert.equal(config.outboundPortsExclude, '15020');
  assert.equal(config.outboundPortsInclude, '');
  assert.equal(config.outboundIpRangesInclude, '*');
  assert.equal(config.outboundIpRangesExclude, '');
  assert.equal(config.proxyUid, '1337');
  assert.equal(config.redirectDns, true);
  assert.equal(config.captureAllDns, true);
  assert.equal(config.ownerGroupsInclude, '*');
  assert.equal(config.hostIpv4LoopbackCidr, '127.0.0.1/32');
});

test('env supplies owner groups and loopback CIDR', () => {
  const config = fromAnnotations(
    {},
    {
      ISTIO_OUTBOUND_OWNER_GROUPS: 'a,b',
      ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: 'c',
      ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.6/32',
    },
  );
  assert.equal(config.ownerGroupsInclude, 'a,b');
  assert.equal(config.ownerGroupsExclude, 'c');
  assert.equal(config.hostIpv4LoopbackCidr, '127.0.0.6/32');
});

test('uid/gid 0 or absent fall back to 1337 independently', () => {
  const ids = (securityContext: Record<string, number>) => {
    const config = captureConfigFromPod(podInfoFromManifest(manifest({}, { securityContext })), {});
    return [config.proxyUid, config.proxyGid];
  };
  assert.deepEqual(ids({ runAsUser: 0, runAsGroup: 42 }), ['1337', '42']);
  assert.deepEqual(ids({ runAsUser: 42, runAsGroup: 0 }), ['42', '1337']);
  assert.deepEqual(ids({ runAsUser: 42 }), ['42', '1337']);
  assert.deepEqual(ids({ runAsGroup: 42 }), ['1337', '42']);
  assert.deepEqual(ids({}), ['1337', '1337']);
});

test('boundaries that are still valid: port 65535, a 15-byte interface name', () => {
  const config = fromAnnotations({
    'traffic.sidecar.istio.io/excludeOutboundPorts': '0,65535',
    'traffic.sidecar.istio.io/excludeInterfaces': 'fifteen-bytes-a',
  });
  assert.equal(config.outboundPortsExclude, '0,65535');
  assert.equal(config.excludeInterfaces, 'fifteen-bytes-a');
});

test('exclude-inbound post-processing', () => {
  assert.equal(withMandatoryInboundExclusions(''), '15020,15021,15090');
  assert.equal(withMandatoryInboundExclusions('3306'), '3306,15020,15021,15090');
  assert.equal(withMandatoryInboundExclusions('15020'), '15020,15021,15090');
  assert.equal(withMandatoryInboundExclusions(' 1,2, '), '1,2,15020,15021,15090');
  assert.equal(withMandatoryInboundExclusions('*'), '*,15020,15021,15090');
  assert.deepEqual(dedupPorts(['1', 'a', '1', '2', 'a']), ['1', 'a', '2']);
  // upstream dedupPorts keeps an empty item (once); the rule builder's Split drops it later.
  assert.equal(withMandatoryInboundExclusions('1,,2,,'), '1,,2,15020,15021,15090');
});

test('explicit annotations pass through', () => {
  const config = fromAnnotations({
    'sidecar.istio.io/interceptionMode': 'TPROXY',
    'traffic.sidecar.istio.io/includeInboundPorts': '',
    'traffic.sidecar.istio.io/excludeOutboundPorts': '',
    'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8,fd00::/8',
    'traffic.sidecar.istio.io/excludeInterfaces': 'eth1,net-2',
    'traffic.sidecar.istio.io/kubevirtInterfaces': 'old',
  });
  assert.equal(config.inboundInterceptionMode, 'TPROXY');
  assert.equal(config.inboundPortsInclude, '');
  assert.equal(config.outboundPortsExclude, '');
  assert.equal(config.outboundIpRangesInclude, '10.0.0.0/8,fd00::/8');
  assert.equal(config.excludeInterfaces, 'eth1,net-2');
  assert.equal(config.rerouteVirtualInterfaces, 'old');
  const both = fromAnnotations({
    'istio.io/reroute-virtual-interfaces': 'new',
    'traffic.sidecar.istio.io/kubevirtInterfaces': 'old',
  });
  assert.equal(both.rerouteVirtualInterfaces, 'new');
});

const invalid: readonly [string, string, string][] = [
  [
    'sidecar.istio.io/interceptionMode',
    'NONE',
    'redirectMode; annotationFound = true: interceptionMode invalid: NONE',
  ],
  ['sidecar.istio.io/interceptionMode', 'tproxy', 'interceptionMode invalid: tproxy'],
  [
    'traffic.sidecar.istio.io/includeInboundPorts',
    '80,http',
    'includeInboundPorts; annotationFound = true: portList "80,http" invalid: failed parsing port "http": strconv.ParseUint: parsing "http": invalid syntax',
  ],
  ['traffic.sidecar.istio.io/excludeOutboundPorts', '70000', 'value out of range'],
  ['traffic.sidecar.istio.io/excludeOutboundPorts', '65535,65536', 'parsing "65536": value out of range'],
  [
    'traffic.sidecar.istio.io/includeOutboundIPRanges',
    '10.0.0.0/8, 11.0.0.0/8',
    "includeIPCidrs; annotationFound = true: IPRanges invalid: failed parsing cidr ' 11.0.0.0/8'",
  ],
  ['traffic.sidecar.istio.io/excludeOutboundIPRanges', '*', "failed parsing cidr '*'"],
  ['traffic.sidecar.istio.io/excludeOutboundIPRanges', '10.0.0.1', "no '/'"],
  ['traffic.sidecar.istio.io/excludeOutboundIPRanges', '10.0.0.0/33', 'prefix length out of range'],
  ['traffic.sidecar.istio.io/excludeInterfaces', 'eth0/1', 'contains invalid characters'],
  ['traffic.sidecar.istio.io/excludeInterfaces', 'averyveryverylongname', 'too long (max 15 chars)'],
  ['traffic.sidecar.istio.io/excludeInterfaces', 'eth0,sixteen-bytes-ab', 'too long (max 15 chars)'],
  // Go's len() counts bytes: eight two-byte characters are 16, too long before the character check.
  ['traffic.sidecar.istio.io/excludeInterfaces', 'eth0,éééééééé', 'too long (max 15 chars)'],
  // upstream's ValidateInterfaceNames: an empty item is an error, not skipped.
  ['traffic.sidecar.istio.io/excludeInterfaces', 'eth0,', 'empty interface name'],
  ['traffic.sidecar.istio.io/excludeInterfaces', 'eth0,,eth1', 'empty interface name'],
  ['traffic.sidecar.istio.io/excludeInterfaces', ' , ', 'empty interface name'],
  [
    'traffic.sidecar.istio.io/excludeInterfaces',
    '-eth0',
    'interface name "-eth0" contains invalid characters',
  ],
  // only an exact "*" is the wildcard
  ['traffic.sidecar.istio.io/includeOutboundIPRanges', ' *', "IPRanges invalid: failed parsing cidr ' *'"],
  ['traffic.sidecar.istio.io/excludeOutboundIPRanges', '10.0.0.0/8,', "failed parsing cidr ''"],
  [
    'traffic.sidecar.istio.io/excludeOutboundPorts',
    '80,',
    'portList "80," invalid: failed parsing port "": strconv.ParseUint: parsing "": invalid syntax',
  ],
  ['traffic.sidecar.istio.io/includeInboundPorts', '80,,81', 'failed parsing port "": strconv.ParseUint'],
];

test('an error quotes at most 100 characters of a value (annotations hold up to 256 KiB)', () => {
  const ports = `${Array.from({ length: 20_000 }, (_, index) => String(1000 + (index % 60_000))).join(',')},http`;
  assert.throws(
    () => fromAnnotations({ 'traffic.sidecar.istio.io/excludeOutboundPorts': ports }),
    (error: unknown) =>
      error instanceof AppError &&
      error.message.length < 400 &&
      error.message.includes(`portList "${ports.slice(0, 100)}…" invalid: failed parsing port "http"`),
  );
});

for (const [key, value, message] of invalid) {
  test(`invalid annotation ${key}=${JSON.stringify(value)} fails with upstream's message`, () => {
    assert.throws(
      () => fromAnnotations({ [key]: value }),
      (error: unknown) =>
        error instanceof AppError &&
        error.code === 'ANNOTATION_INVALID' &&
        error.message.startsWith('annotation value error for value ') &&
        error.message.includes(message),
    );
  });
}

test('unparseable proxy booleans warn and default to false', () => {
  const pod = podInfoFromManifest(manifest({}, { env: [{ name: 'ISTIO_DUAL_STACK', value: 'yes' }] }));
  const { config, warnings } = captureConfigFromPodWithWarnings(pod, {});
  assert.equal(config.dualStack, false);
  assert.match(warnings[0] ?? '', /cannot parse dual stack environment variable/);
});

test('ISTIO_DUAL_STACK=true on istio-proxy turns dual-stack on (upstream TestCmdAddEnableDualStack)', () => {
  const pod = podInfoFromManifest(manifest({}, { env: [{ name: 'ISTIO_DUAL_STACK', value: 'true' }] }));
  const { config, warnings } = captureConfigFromPodWithWarnings(pod, {});
  assert.equal(config.dualStack, true);
  assert.deepEqual(warnings, []);
});

test('an explicit includeInboundPorts "*" is the wildcard, as the default (upstream TestCmdAddTwoContainersWithStarInboundPort)', () => {
  const explicit = fromAnnotations({ 'traffic.sidecar.istio.io/includeInboundPorts': '*' });
  assert.equal(explicit.inboundPortsInclude, '*');
  assert.deepEqual(explicit, fromAnnotations({}));
});

test('values upstream accepts: empty CIDR lists, blank port lists, spaces around ports, empty interface list', () => {
  const config = fromAnnotations({
    'traffic.sidecar.istio.io/includeOutboundIPRanges': '',
    'traffic.sidecar.istio.io/excludeOutboundIPRanges': '',
    'traffic.sidecar.istio.io/excludeInboundPorts': '   ',
    'traffic.sidecar.istio.io/excludeOutboundPorts': '80, 81',
    'traffic.sidecar.istio.io/excludeInterfaces': '',
  });
  assert.equal(config.outboundIpRangesInclude, '');
  assert.equal(config.outboundIpRangesExclude, '');
  assert.equal(config.inboundPortsExclude, '15020,15021,15090');
  assert.equal(config.outboundPortsExclude, '80, 81');
  assert.equal(config.excludeInterfaces, '');
});

test('reroute-virtual-interfaces is not validated (upstream alwaysValidFunc): "eth1," passes through', () => {
  for (const key of ['istio.io/reroute-virtual-interfaces', 'traffic.sidecar.istio.io/kubevirtInterfaces']) {
    const config = fromAnnotations({ [key]: 'eth1,' });
    assert.equal(config.rerouteVirtualInterfaces, 'eth1,', key);
  }
});

test('a present but empty reroute-virtual-interfaces still wins over kubevirtInterfaces (upstream isFound)', () => {
  const config = fromAnnotations({
    'istio.io/reroute-virtual-interfaces': '',
    'traffic.sidecar.istio.io/kubevirtInterfaces': 'old',
  });
  assert.equal(config.rerouteVirtualInterfaces, '');
});

test('ISTIO_OUTBOUND_OWNER_GROUPS set but empty is kept empty, not the "*" default (os.LookupEnv)', () => {
  const config = fromAnnotations({}, { ISTIO_OUTBOUND_OWNER_GROUPS: '' });
  assert.equal(config.ownerGroupsInclude, '');
});

test('the proxy type is read only from `proxy <type>` args (upstream: len(Args) >= 2 && Args[0] == "proxy")', () => {
  const type = (args: string[]) => podInfoFromManifest(manifest({}, { args })).proxyType;
  assert.equal(type(['proxy', 'router']), 'router');
  assert.equal(type(['agent', 'router']), '');
  assert.equal(type(['proxy']), '');
});
