// `install-cni rules`: flag forms, env vars, --pod (JSON/YAML, file/stdin), --ipv6, --nft, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runRulesCommand } from '../../../src/rules/cli.ts';
import type { RulesCommandIo } from '../../../src/rules/cli.ts';
import { buildCaptureRules } from '../../../src/rules/build.ts';
import { renderNftTransaction } from '../../../src/rules/render-nft.ts';
import { renderRestoreDocument } from '../../../src/rules/render-iptables.ts';
import { DEFAULT_CAPTURE_CONFIG } from '../../../src/rules/capture-config.ts';
import { MESHED_POD_MANIFEST as POD, POD_DEFAULT } from './scenarios.ts';

const UPSTREAM = fileURLToPath(
  new URL('../../../../shared/conformance/istio-plugin-goldens/', import.meta.url),
);
const golden = (name: string) => readFileSync(`${UPSTREAM}${name}.txt.golden`, 'utf8');

const POD_YAML = `apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: default
  annotations:
    sidecar.istio.io/status: '{}'
    sidecar.istio.io/interceptionMode: TPROXY
    traffic.sidecar.istio.io/includeInboundPorts: '*'
    traffic.sidecar.istio.io/excludeInboundPorts: "15020"
    traffic.sidecar.istio.io/includeOutboundIPRanges: '*'
spec:
  containers:
  - name: istio-proxy
    image: proxyv2
`;

function io(overrides: Partial<RulesCommandIo> = {}): RulesCommandIo {
  return {
    env: {},
    readStdin: () => Promise.reject(new Error('no stdin')),
    readFile: (path) => Promise.reject(new Error(`no file ${path}`)),
    ...overrides,
  };
}

test('no flags: istio-iptables defaults (no inbound capture, no outbound CIDRs)', async () => {
  const result = await runRulesCommand([], io());
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, renderRestoreDocument(buildCaptureRules(DEFAULT_CAPTURE_CONFIG).rules.v4));
  assert.doesNotMatch(result.stdout, /PREROUTING|-j ISTIO_REDIRECT$/m);
});

test('flags reproduce the basic golden; = and space forms are equivalent', async () => {
  const spaced = [
    '--istio-inbound-ports',
    '*',
    '--istio-local-exclude-ports',
    '15020,15021,15090',
    '--istio-local-outbound-ports-exclude',
    '15020',
    '--istio-service-cidr',
    '*',
  ];
  const equals = [
    '--istio-inbound-ports=*',
    '--istio-local-exclude-ports=15020,15021,15090',
    '--istio-local-outbound-ports-exclude=15020',
    '--istio-service-cidr=*',
  ];
  assert.equal((await runRulesCommand(spaced, io())).stdout, golden('basic'));
  assert.equal((await runRulesCommand(equals, io())).stdout, golden('basic'));
  assert.equal(
    (await runRulesCommand(['-b', '*', '-d=15020,15021,15090', '-o', '15020', '-i', '*'], io())).stdout,
    golden('basic'),
  );
});

test('an empty value is a value', async () => {
  const withEmpty = await runRulesCommand(['--istio-service-cidr=*', '--istio-inbound-ports='], io());
  const withSpaceEmpty = await runRulesCommand(
    ['--istio-service-cidr', '*', '--istio-inbound-ports', ''],
    io(),
  );
  assert.equal(withEmpty.exitCode, 0);
  assert.equal(withEmpty.stdout, withSpaceEmpty.stdout);
  assert.doesNotMatch(withEmpty.stdout, /PREROUTING/);
});

test('bool flags, DNS servers and --ipv6 (IPv4 document first, then IPv6)', async () => {
  const result = await runRulesCommand(
    [
      '--redirect-dns',
      '--dns-servers-v4=10.96.0.10',
      '--dns-servers-v6',
      'fd00::a',
      '--ipv6',
      '--drop-invalid=true',
    ],
    io(),
  );
  assert.equal(result.exitCode, 0);
  const config = {
    ...DEFAULT_CAPTURE_CONFIG,
    redirectDns: true,
    dropInvalid: true,
    enableIpv6: true,
    dnsServersV4: ['10.96.0.10'],
    dnsServersV6: ['fd00::a'],
  };
  const { rules } = buildCaptureRules(config);
  assert.equal(result.stdout, renderRestoreDocument(rules.v4) + renderRestoreDocument(rules.v6));
  assert.match(
    result.stdout,
    /-d 10\.96\.0\.10\/32 -j REDIRECT --to-ports 15053[\s\S]*-d fd00::a\/128 -j REDIRECT/,
  );
});

test('env vars ISTIO_OUTBOUND_OWNER_GROUPS(_EXCLUDE) and the loopback CIDR apply', async () => {
  const result = await runRulesCommand(
    ['--istio-service-cidr=*'],
    io({
      env: {
        ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888,ftp',
        ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8',
      },
    }),
  );
  assert.match(result.stdout, /-A ISTIO_OUTPUT -m owner --gid-owner ftp -j RETURN/);
  assert.match(result.stdout, /-A ISTIO_OUTPUT -d 127\.0\.0\.1\/8 -j RETURN/);
});

test('--nft prints the nftables transaction', async () => {
  const result = await runRulesCommand(['--nft', '--istio-service-cidr=*', '--istio-inbound-ports=*'], io());
  const config = { ...DEFAULT_CAPTURE_CONFIG, outboundIpRangesInclude: '*', inboundPortsInclude: '*' };
  assert.equal(result.stdout, renderNftTransaction(buildCaptureRules(config).rules));
  assert.match(result.stdout, /^add table inet istio-proxy-nat$/m);
});

test('--pod FILE (JSON) renders what the plugin programs: the basic golden', async () => {
  const result = await runRulesCommand(
    ['--pod', '/pods/app.json'],
    io({
      readFile: (path) =>
        path === '/pods/app.json' ? Promise.resolve(JSON.stringify(POD)) : Promise.reject(new Error(path)),
    }),
  );
  assert.equal(result.stderr, '');
  assert.equal(result.stdout, golden('basic'));
});

test('--pod - (YAML on stdin), TPROXY, with --ipv6', async () => {
  const result = await runRulesCommand(
    ['--pod=-', '--ipv6'],
    io({ readStdin: () => Promise.resolve(POD_YAML) }),
  );
  assert.equal(result.exitCode, 0);
  const { rules } = buildCaptureRules({
    ...POD_DEFAULT,
    inboundInterceptionMode: 'TPROXY',
    enableIpv6: true,
  });
  assert.equal(result.stdout, renderRestoreDocument(rules.v4) + renderRestoreDocument(rules.v6));
  assert.ok(result.stdout.startsWith(golden('tproxy')));
});

test('--pod the plugin would skip (opted out, no istio-proxy): no rules, the reason on stderr, exit 0', async () => {
  const pod = POD as { metadata: { annotations?: Record<string, string> } };
  const optedOut = {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: { ...pod.metadata.annotations, 'sidecar.istio.io/inject': 'false' },
    },
  };
  const result = await runRulesCommand(
    ['--pod', '-'],
    io({ readStdin: () => Promise.resolve(JSON.stringify(optedOut)) }),
  );
  assert.deepEqual(result, {
    exitCode: 0,
    stdout: '',
    stderr:
      'the plugin programs no rules for this pod: excluded due to inject-disabled (sidecar.istio.io/inject=false)\n',
  });
});

test('errors: unknown flag and --pod with istio-iptables flags are usage errors (2); bad values exit 1', async () => {
  const unknown = await runRulesCommand(['--bogus'], io());
  assert.equal(unknown.exitCode, 2);
  assert.match(unknown.stderr, /unknown flag: --bogus/);
  const combined = await runRulesCommand(['--pod', '-', '--envoy-port=1'], io());
  assert.equal(combined.exitCode, 2);
  const missing = await runRulesCommand(['--envoy-port'], io());
  assert.equal(missing.exitCode, 2);
  const bad = await runRulesCommand(['--istio-inbound-ports=99999'], io());
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stderr, /inbound ports include/);
  const mode = await runRulesCommand(['-m', 'NONE'], io());
  assert.equal(mode.exitCode, 2);
  const badPod = await runRulesCommand(['--pod', '-'], io({ readStdin: () => Promise.resolve('kind: [') }));
  assert.equal(badPod.exitCode, 1);
  assert.match(badPod.stderr, /^Error: --pod stdin: not one YAML or JSON document: /);
  const twoDocs = await runRulesCommand(
    ['--pod', '-'],
    io({ readStdin: () => Promise.resolve('kind: Pod\n---\nkind: Pod\n') }),
  );
  assert.match(twoDocs.stderr, /^Error: --pod stdin: not one YAML or JSON document: /);
  const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/nope.yaml'"), {
    code: 'ENOENT',
  });
  const noFile = await runRulesCommand(
    ['--pod', '/nope.yaml'],
    io({ readFile: () => Promise.reject(enoent) }),
  );
  assert.equal(noFile.exitCode, 1);
  assert.equal(noFile.stderr, 'Error: --pod /nope.yaml: cannot read it: ENOENT: no such file or directory\n');
});

test('--help prints usage', async () => {
  const result = await runRulesCommand(['--help'], io());
  assert.equal(result.exitCode, 0);
  assert.match(result.stdout, /install-cni rules/);
});

/** The v4 document `install-cni rules` prints for `config` (no IPv6, no nft). */
const v4Document = (config: typeof DEFAULT_CAPTURE_CONFIG) =>
  renderRestoreDocument(buildCaptureRules(config).rules.v4);

test('each istio-iptables value flag sets its own parameter, in its long and its short form (-p15101 too)', async () => {
  // TPROXY with inbound and outbound capture on, so that every parameter shows in the rules.
  const base = {
    ...DEFAULT_CAPTURE_CONFIG,
    inboundInterceptionMode: 'TPROXY' as const,
    inboundPortsInclude: '*',
    outboundIpRangesInclude: '*',
  };
  const baseArgs = ['--istio-inbound-interception-mode=TPROXY', '-b', '*', '-i', '*'];
  const baseline = await runRulesCommand(baseArgs, io());
  assert.equal(baseline.stdout, v4Document(base));
  const cases: [string, string, keyof typeof DEFAULT_CAPTURE_CONFIG, string][] = [
    ['envoy-port', 'p', 'proxyPort', '15101'],
    ['inbound-capture-port', 'z', 'inboundCapturePort', '15106'],
    ['inbound-tunnel-port', 'e', 'inboundTunnelPort', '15108'],
    ['proxy-uid', 'u', 'proxyUid', '1400'],
    ['proxy-gid', 'g', 'proxyGid', '1401'],
    ['istio-inbound-ports', 'b', 'inboundPortsInclude', '8080'],
    ['istio-local-exclude-ports', 'd', 'inboundPortsExclude', '9090'],
    ['istio-exclude-interfaces', 'c', 'excludeInterfaces', 'eth9'],
    ['istio-service-cidr', 'i', 'outboundIpRangesInclude', '10.0.0.0/8'],
    ['istio-service-exclude-cidr', 'x', 'outboundIpRangesExclude', '10.1.0.0/16'],
    ['istio-outbound-ports', 'q', 'outboundPortsInclude', '7070'],
    ['istio-local-outbound-ports-exclude', 'o', 'outboundPortsExclude', '6060'],
    ['kube-virt-interfaces', 'k', 'rerouteVirtualInterfaces', 'veth7'],
    ['istio-inbound-tproxy-mark', 't', 'inboundTProxyMark', '1500'],
  ];
  for (const [long, short, field, value] of cases) {
    const expected = v4Document({ ...base, [field]: value });
    assert.notEqual(expected, baseline.stdout, `${field} shows in the rules`);
    for (const args of [
      [...baseArgs, `--${long}=${value}`],
      [...baseArgs, `--${long}`, value],
      [...baseArgs, `-${short}`, value],
      [...baseArgs, `-${short}${value}`],
    ]) {
      const result = await runRulesCommand(args, io());
      assert.deepEqual(
        { exitCode: result.exitCode, stdout: result.stdout },
        { exitCode: 0, stdout: expected },
        args.join(' '),
      );
    }
  }
  // The route table is not in the restore document; the flag is accepted in both forms.
  for (const args of [['--istio-inbound-tproxy-route-table=150'], ['-r', '150']])
    assert.equal((await runRulesCommand(args, io())).exitCode, 0, args.join(' '));
});

test('-h prints usage; a short alias is no long flag and a long name no short one; a bare argument is a usage error (2) with the usage', async () => {
  const help = await runRulesCommand(['-h'], io());
  assert.deepEqual(help, {
    exitCode: 0,
    stdout: (await runRulesCommand(['--help'], io())).stdout,
    stderr: '',
  });
  for (const [args, message] of [
    [['--p=15101'], 'unknown flag: --p\n'],
    [['--bogus=1'], 'unknown flag: --bogus\n'],
    [['-y', '1'], 'unknown flag: -y\n'],
    [['pod.yaml'], 'unexpected argument "pod.yaml"\n'],
    [['--redirect-dns=maybe'], 'invalid argument "maybe" for "--redirect-dns": not a boolean\n'],
  ] as const) {
    const result = await runRulesCommand(args, io());
    assert.equal(result.exitCode, 2, args.join(' '));
    assert.equal(result.stdout, '');
    assert.ok(result.stderr.startsWith(`Error: ${message}Usage: install-cni rules`), result.stderr);
  }
});

test('bool flags take =true/=false; --capture-all-dns applies (--dual-stack is accepted: it only picks the IP families, not the rules); --nft=false prints iptables; DNS lists split on commas, empty items dropped', async () => {
  const off = await runRulesCommand(['--istio-service-cidr=*', '--redirect-dns=false', '--nft=false'], io());
  assert.deepEqual(off, {
    exitCode: 0,
    stdout: v4Document({ ...DEFAULT_CAPTURE_CONFIG, outboundIpRangesInclude: '*' }),
    stderr: '',
  });
  const allDns = await runRulesCommand(
    ['--istio-service-cidr=*', '--redirect-dns', '--capture-all-dns=true', '--dual-stack'],
    io(),
  );
  const allDnsConfig = {
    ...DEFAULT_CAPTURE_CONFIG,
    outboundIpRangesInclude: '*',
    redirectDns: true,
    captureAllDns: true,
    dualStack: true,
  };
  assert.equal(allDns.stdout, v4Document(allDnsConfig));
  assert.notEqual(allDns.stdout, v4Document({ ...allDnsConfig, captureAllDns: false }));
  const servers = await runRulesCommand(
    ['--istio-service-cidr=*', '--redirect-dns', '--dns-servers-v4=10.96.0.10,,10.96.0.11,'],
    io(),
  );
  assert.equal(
    servers.stdout,
    v4Document({
      ...DEFAULT_CAPTURE_CONFIG,
      outboundIpRangesInclude: '*',
      redirectDns: true,
      dnsServersV4: ['10.96.0.10', '10.96.0.11'],
    }),
  );
});

test("the rule builder's warnings go to stderr, the output stays on stdout, exit 0", async () => {
  const result = await runRulesCommand(['--istio-service-cidr=*', '--redirect-dns'], io());
  assert.equal(result.exitCode, 0);
  assert.equal(
    result.stderr,
    'warning: REDIRECT_DNS is set, but CAPTURE_ALL_DNS is off and no DNS servers are known: DNS is not captured\n',
  );
  assert.equal(result.stdout, v4Document({ ...DEFAULT_CAPTURE_CONFIG, outboundIpRangesInclude: '*' }));
});

test('--pod: --nft is allowed and prints nftables; DNS lists are usage errors; env and the warnings from the pod apply', async () => {
  const stdin = (pod: unknown) => io({ readStdin: () => Promise.resolve(JSON.stringify(pod)) });
  const nft = await runRulesCommand(['--pod', '-', '--nft'], stdin(POD));
  assert.equal(nft.exitCode, 0);
  assert.equal(nft.stdout, renderNftTransaction(buildCaptureRules(POD_DEFAULT).rules));
  const lists = await runRulesCommand(['--pod', '-', '--dns-servers-v4=10.96.0.10'], stdin(POD));
  assert.equal(lists.exitCode, 2);
  assert.match(lists.stderr, /cannot be combined with --dns-servers-v4/);
  const withEnv = await runRulesCommand(
    ['--pod', '-'],
    io({
      readStdin: () => Promise.resolve(JSON.stringify(POD)),
      env: { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: 'ftp' },
    }),
  );
  assert.equal(withEnv.stdout, v4Document({ ...POD_DEFAULT, ownerGroupsExclude: 'ftp' }));
  const pod = POD as { spec: { containers: { name: string }[] } };
  const badEnv = {
    ...pod,
    spec: {
      ...pod.spec,
      containers: pod.spec.containers.map((container) =>
        container.name === 'istio-proxy'
          ? { ...container, env: [{ name: 'ISTIO_META_DNS_CAPTURE', value: 'yes please' }] }
          : container,
      ),
    },
  };
  const warned = await runRulesCommand(['--pod', '-'], stdin(badEnv));
  assert.equal(warned.exitCode, 0);
  assert.equal(warned.stdout, golden('basic'));
  assert.equal(
    warned.stderr,
    'warning: cannot parse DNS capture environment variable strconv.ParseBool: parsing "yes please": invalid syntax\n',
  );
});
