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
