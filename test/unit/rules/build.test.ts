// Golden tests of the rule builder + iptables-restore renderer: every upstream plugin golden byte for byte, plus
// our own goldens for the §5.4 scenarios and IPv6 documents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildCaptureRules } from '../../../src/rules/build.ts';
import { renderRestoreDocument } from '../../../src/rules/render-iptables.ts';
import { renderNftTransaction } from '../../../src/rules/render-nft.ts';
import { AppError } from '../../../src/errors.ts';
import { OWN_SCENARIOS, PLUGIN_SCENARIOS, POD_DEFAULT } from './scenarios.ts';

const UPSTREAM = fileURLToPath(
  new URL('../../../../shared/conformance/istio-plugin-goldens/', import.meta.url),
);
const TESTDATA = fileURLToPath(new URL('./testdata/', import.meta.url));
const raw = { serializers: [(value: unknown) => String(value)] };

for (const [name, scenario] of Object.entries(PLUGIN_SCENARIOS)) {
  test(`upstream plugin golden: ${name}`, () => {
    const expected = readFileSync(`${UPSTREAM}${scenario.golden}.txt.golden`, 'utf8');
    const { rules } = buildCaptureRules(scenario.config);
    assert.equal(rules.v6.length, 0);
    assert.equal(renderRestoreDocument(rules.v4), expected);
  });
}

test('status-ports.txt.golden is stale upstream and deliberately not matched', () => {
  const stale = readFileSync(`${UPSTREAM}status-ports.txt.golden`, 'utf8');
  assert.notEqual(renderRestoreDocument(buildCaptureRules(POD_DEFAULT).rules.v4), stale);
});

for (const [name, config] of Object.entries(OWN_SCENARIOS)) {
  test(`own golden: ${name}`, (t) => {
    const { rules } = buildCaptureRules(config);
    const text = `# IPv4\n${renderRestoreDocument(rules.v4)}# IPv6\n${renderRestoreDocument(rules.v6)}`;
    t.assert.fileSnapshot(text, `${TESTDATA}${name}.iptables.golden`, raw);
    t.assert.fileSnapshot(renderNftTransaction(rules), `${TESTDATA}${name}.nft.golden`, raw);
  });
}

test('building is pure and repeatable', () => {
  const first = buildCaptureRules(POD_DEFAULT);
  assert.deepEqual(buildCaptureRules(POD_DEFAULT), first);
});

test('DNS capture without capture-all and without servers is dropped with a warning', () => {
  const result = buildCaptureRules(OWN_SCENARIOS['ipv6-dns-no-servers'] ?? POD_DEFAULT);
  assert.equal(result.warnings.length, 1);
  assert.ok(!renderRestoreDocument(result.rules.v4).includes('ISTIO_OUTPUT_DNS'));
});

test('the IPv4 rules never depend on the IPv6 decision (the plugin restores them before it is made)', () => {
  const configs = [
    ...Object.values(PLUGIN_SCENARIOS).map((scenario) => scenario.config),
    ...Object.values(OWN_SCENARIOS),
  ];
  assert.ok(configs.length > 40);
  for (const config of configs) {
    const v4 = (enableIpv6: boolean) =>
      renderRestoreDocument(buildCaptureRules({ ...config, enableIpv6 }).rules.v4);
    assert.equal(v4(true), v4(false), JSON.stringify(config));
  }
});

test('IPv6 DNS servers alone keep DNS capture, in the IPv4 rules too, with or without IPv6 (as upstream)', () => {
  const config = { ...POD_DEFAULT, redirectDns: true, captureAllDns: false, dnsServersV6: ['fd00::53'] };
  for (const enableIpv6 of [false, true]) {
    const result = buildCaptureRules({ ...config, enableIpv6 });
    assert.deepEqual(result.warnings, []);
    assert.match(renderRestoreDocument(result.rules.v4), /--dport 53/);
  }
});

test('an explicit inbound include list ignores the exclusions, "*" too (upstream starts the pod)', () => {
  const withInclude = { ...POD_DEFAULT, inboundPortsInclude: '8080' };
  assert.deepEqual(
    buildCaptureRules({ ...withInclude, inboundPortsExclude: '*,15020,15021,15090' }),
    buildCaptureRules({ ...withInclude, inboundPortsExclude: '' }),
  );
});

test('interface list items are trimmed: "eth1, eth2" is eth1 and eth2', () => {
  for (const field of ['excludeInterfaces', 'rerouteVirtualInterfaces'] as const) {
    assert.deepEqual(
      buildCaptureRules({ ...POD_DEFAULT, [field]: 'eth1, eth2' }),
      buildCaptureRules({ ...POD_DEFAULT, [field]: 'eth1,eth2' }),
    );
  }
});

const invalidCases: ReadonlyArray<[string, Partial<typeof POD_DEFAULT>, RegExp]> = [
  ['port out of range', { inboundPortsInclude: '70000' }, /inbound ports include.*70000/],
  ['star in exclude inbound ports (quirk §8.7)', { inboundPortsExclude: '*,15020' }, /"\*" is not allowed/],
  ['newline injection in ports', { outboundPortsExclude: '80\n-A OUTPUT -j DROP' }, /outbound ports exclude/],
  ['bad CIDR', { outboundIpRangesInclude: '10.0.0.0/33' }, /OUTBOUND_IP_RANGES_INCLUDE/],
  ['star exclude CIDR', { outboundIpRangesExclude: '*' }, /OUTBOUND_IP_RANGES_EXCLUDE/],
  ['space in CIDR', { outboundIpRangesInclude: '10.0.0.0/8, 11.0.0.0/8' }, /is not a CIDR prefix/],
  ['bad interface', { excludeInterfaces: 'eth0 -j DROP' }, /excluded interfaces/],
  ['too-long interface', { rerouteVirtualInterfaces: 'abcdefghijklmnop' }, /reroute virtual interfaces/],
  ['bad uid', { proxyUid: '13a7' }, /proxy UID/],
  ['bad loopback CIDR', { hostIpv4LoopbackCidr: '10.0.0.1/8' }, /LOOPBACK_CIDR/],
  ['bad owner group', { ownerGroupsInclude: 'a b' }, /OWNER_GROUPS/],
  ['loopback CIDR wider than /8', { hostIpv4LoopbackCidr: '126.0.0.0/7' }, /LOOPBACK_CIDR/],
  [
    '65 owner groups to include (the limit is 64)',
    { ownerGroupsInclude: Array.from({ length: 65 }, (_, index) => String(index + 1)).join(',') },
    /OWNER_GROUPS/,
  ],
  ['bad DNS server', { redirectDns: true, dnsServersV4: ['::1'] }, /IPv4 DNS server/],
  [
    'IPv4 address as an IPv6 DNS server',
    { redirectDns: true, dnsServersV6: ['10.0.0.53'] },
    /IPv6 DNS server/,
  ],
  ['proxy port out of range', { proxyPort: '65536' }, /proxy port/],
  [
    'newline injection in the inbound capture port',
    { inboundCapturePort: '15006\n-A OUTPUT -j DROP' },
    /inbound capture port/,
  ],
  [
    'port 65536 in a list (the first port out of range)',
    { inboundPortsInclude: '80,65536' },
    /"65536" is not a port/,
  ],
  // iptables parses ports with strtoul base 0: "010" would be octal 8, "080" no port at all.
  ['leading zero in a port', { outboundPortsExclude: '080' }, /outbound ports exclude/],
  ['star in exclude outbound ports', { outboundPortsExclude: '*' }, /"\*" is not allowed here/],
  ['star in include outbound ports', { outboundPortsInclude: '*' }, /"\*" is not allowed here/],
  [
    'star with spaces in exclude inbound ports',
    { inboundPortsExclude: ' * ,15020' },
    /"\*" is not allowed here/,
  ],
  ['"." as an interface name', { excludeInterfaces: '.' }, /excluded interfaces/],
  ['".." as an interface name', { rerouteVirtualInterfaces: 'eth0,..' }, /reroute virtual interfaces/],
  ['owner group that reads as an option', { ownerGroupsInclude: 'java,-j' }, /ISTIO_OUTBOUND_OWNER_GROUPS/],
  ['owner group excluded that reads as an option', { ownerGroupsExclude: '-j' }, /OWNER_GROUPS_EXCLUDE/],
  ['spaced star as owner groups to include', { ownerGroupsInclude: ' *' }, /ISTIO_OUTBOUND_OWNER_GROUPS/],
  ['no proxy UID at all (the proxy would capture itself)', { proxyUid: ',' }, /proxy UID/],
  ['newline injection in the proxy GID', { proxyGid: '1337\n-A OUTPUT -j DROP' }, /proxy GID/],
  ['unknown interception mode', { inboundInterceptionMode: 'NONE' as 'REDIRECT' }, /interception mode/],
  ['non-numeric TPROXY mark', { inboundTProxyMark: '1337 -j DROP' }, /TPROXY mark/],
  ['non-numeric TPROXY route table', { inboundTProxyRouteTable: 'main' }, /TPROXY route table/],
  ['IPv6 loopback as the IPv4 loopback CIDR', { hostIpv4LoopbackCidr: '::1/128' }, /LOOPBACK_CIDR/],
  ['loopback CIDR with a /7 mask', { hostIpv4LoopbackCidr: '127.0.0.0/7' }, /LOOPBACK_CIDR/],
];
for (const [name, patch, message] of invalidCases) {
  test(`validation: ${name}`, () => {
    assert.throws(
      () => buildCaptureRules({ ...POD_DEFAULT, ...patch }),
      (error: unknown) =>
        error instanceof AppError && error.code === 'RULES_INVALID' && message.test(error.message),
    );
  });
}

test('64 owner groups to include are accepted, and a /8 loopback CIDR', () => {
  const groups = Array.from({ length: 64 }, (_, index) => String(index + 1)).join(',');
  assert.doesNotThrow(() =>
    buildCaptureRules({ ...POD_DEFAULT, ownerGroupsInclude: groups, hostIpv4LoopbackCidr: '127.0.0.0/8' }),
  );
});

test('port lists tolerate white space around items (validated trimmed, as Go TrimSpace)', () => {
  const doc = renderRestoreDocument(
    buildCaptureRules({ ...POD_DEFAULT, outboundPortsExclude: '80, 81,\t82 ' }).rules.v4,
  );
  assert.ok(doc.includes('--dport 81 -j RETURN'));
  assert.ok(doc.includes('--dport 82 -j RETURN'));
});

test('owner group lists tolerate white space around names (upstream hands them to iptables-restore, which drops it)', () => {
  for (const [spaced, plain] of [
    [{ ownerGroupsInclude: 'java, 202 ' }, { ownerGroupsInclude: 'java,202' }],
    [{ ownerGroupsExclude: ' 888 ,ftp' }, { ownerGroupsExclude: '888,ftp' }],
  ] as const) {
    const withSpaces = buildCaptureRules({ ...POD_DEFAULT, ...spaced }).rules;
    const without = buildCaptureRules({ ...POD_DEFAULT, ...plain }).rules;
    assert.equal(renderRestoreDocument(withSpaces.v4), renderRestoreDocument(without.v4));
    assert.equal(renderNftTransaction(withSpaces), renderNftTransaction(without));
    assert.match(renderRestoreDocument(withSpaces.v4), /--gid-owner (java|888) /);
  }
});

test('CIDRs are rendered in canonical form (upstream prints netip.Prefix.String())', () => {
  const config = {
    ...POD_DEFAULT,
    enableIpv6: true,
    outboundIpRangesInclude: '2001:0DB8:0:0::/32',
    outboundIpRangesExclude: '2001:db8:0000:1::/64',
  };
  const { rules } = buildCaptureRules(config);
  const v6 = renderRestoreDocument(rules.v6);
  assert.match(v6, /^-A ISTIO_OUTPUT -d 2001:db8::\/32 -j ISTIO_REDIRECT$/m);
  assert.match(v6, /^-A ISTIO_OUTPUT -d 2001:db8:0:1::\/64 -j RETURN$/m);
  assert.match(renderNftTransaction(rules), /ip6 daddr 2001:db8::\/32 counter jump istio-redirect/);
});

test('an empty owner-group include list captures no group: one bare RETURN (upstream InterceptOnly())', () => {
  const doc = renderRestoreDocument(buildCaptureRules({ ...POD_DEFAULT, ownerGroupsInclude: '' }).rules.v4);
  assert.match(doc, /^-A ISTIO_OUTPUT -j RETURN$/m);
  assert.doesNotMatch(
    renderRestoreDocument(buildCaptureRules(POD_DEFAULT).rules.v4),
    /^-A ISTIO_OUTPUT -j RETURN$/m,
  );
});

test('IPv6 DNS servers alone: the nat jump to ISTIO_OUTPUT_DNS is IPv6-only (upstream SetupDNSRedir)', () => {
  const { rules } = buildCaptureRules({
    ...POD_DEFAULT,
    enableIpv6: true,
    redirectDns: true,
    captureAllDns: false,
    dnsServersV6: ['fd00::53'],
  });
  const jump = /^-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS$/m;
  assert.doesNotMatch(renderRestoreDocument(rules.v4), jump);
  assert.match(renderRestoreDocument(rules.v6), jump);
});

test('the nftables translation refuses what it cannot translate instead of emitting a wrong rule', () => {
  const refuses = (table: 'filter' | 'nat', chain: string, params: readonly string[]) =>
    assert.throws(
      () => renderNftTransaction({ v4: [{ table, chain, params }], v6: [] }),
      (error: unknown) => error instanceof AppError && error.code === 'RULES_INVALID',
      params.join(' '),
    );
  refuses('nat', 'ISTIO_OUTPUT', ['-j', 'LOG']);
  refuses('nat', 'ISTIO_OUTPUT', ['-j', 'ISTIO_REDIRECT', '--extra']);
  refuses('nat', 'ISTIO_OUTPUT', ['-p', 'tcp', '--dport', '80']);
  refuses('nat', 'ISTIO_OUTPUT', ['--dport', '80', '-j', 'RETURN']);
  refuses('filter', 'INPUT', ['-j', 'RETURN']);
});

test('only included CIDRs count as "loopback included": excluding 127.0.0.0/8 keeps the lo RETURN rules', () => {
  const doc = renderRestoreDocument(
    buildCaptureRules({ ...POD_DEFAULT, outboundIpRangesExclude: '127.0.0.0/8' }).rules.v4,
  );
  assert.match(doc, /^-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN$/m);
  assert.match(doc, /^-A ISTIO_OUTPUT -d 127\.0\.0\.0\/8 -j RETURN$/m);
});

test('an included IPv4-mapped loopback (::ffff:127.0.0.1/128) counts as loopback included, as Go netip unmaps before IsLoopback', () => {
  const lo = /^-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN$/m;
  const mapped = buildCaptureRules({
    ...POD_DEFAULT,
    enableIpv6: true,
    outboundIpRangesInclude: '::ffff:127.0.0.1/128',
  }).rules;
  for (const family of [mapped.v4, mapped.v6]) assert.doesNotMatch(renderRestoreDocument(family), lo);
  // A plain IPv6 include that is not loopback keeps them.
  const plain = buildCaptureRules({
    ...POD_DEFAULT,
    enableIpv6: true,
    outboundIpRangesInclude: '2001:db8::/32',
  });
  assert.match(renderRestoreDocument(plain.rules.v6), lo);
});

test('drop-invalid applies to IPv6 too: ISTIO_DROP drops in both documents', () => {
  const { rules } = buildCaptureRules({ ...POD_DEFAULT, dropInvalid: true, enableIpv6: true });
  for (const family of [rules.v4, rules.v6]) {
    const doc = renderRestoreDocument(family);
    assert.match(doc, /^-A PREROUTING -m conntrack --ctstate INVALID -j ISTIO_DROP$/m);
    assert.match(doc, /^-A ISTIO_DROP -j DROP$/m);
  }
});
