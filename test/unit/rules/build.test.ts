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
