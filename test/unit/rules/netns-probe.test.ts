import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decideIpv6,
  parseIpAddrOutput,
  parseNetnsProbe,
  probeFilesFromHead,
} from '../../../src/rules/netns-probe.ts';
import { formatAddress } from '../../../src/rules/ip.ts';
import { nsenterArgv, debianPackageFor } from '../../../src/sys/netns.ts';
import {
  committedTables,
  parseSavedState,
  renderUndoDocument,
  structuralDelta,
} from '../../../src/rules/iptables-state.ts';
import { buildCaptureRules } from '../../../src/rules/build.ts';
import { POD_DEFAULT } from './scenarios.ts';

test('probe output: legacy tables per family and usable addresses (no loopback/link-local, v4 first)', () => {
  const output = [
    '==> /proc/net/ip_tables_names <==',
    'nat',
    'filter',
    '',
    '==> /proc/net/ip6_tables_names <==',
    '',
    '==> /proc/net/if_inet6 <==',
    'fd000000000000000000000000000002 02 40 00 80     eth0',
    'fe800000000000000000000000000001 02 40 20 80     eth0',
    '00000000000000000000000000000001 01 80 10 80       lo',
    '',
    '==> /proc/net/fib_trie <==',
    'Main:',
    '  +-- 0.0.0.0/0 3 0 5',
    '     |-- 10.1.2.3',
    '        /32 host LOCAL',
    '     |-- 169.254.1.1',
    '        /32 host LOCAL',
    'Local:',
    '     |-- 10.1.2.3',
    '        /32 host LOCAL',
    '     |-- 10.1.2.255',
    '        /32 link BROADCAST',
  ].join('\n');
  const files = probeFilesFromHead(output);
  assert.deepEqual([...files.keys()], ['ip_tables_names', 'ip6_tables_names', 'if_inet6', 'fib_trie']);
  const probe = parseNetnsProbe(files);
  // The same files read in-process (each file's own text, no head headers) give the same probe.
  assert.deepEqual(
    parseNetnsProbe(new Map([...files].map(([name, text]) => [name, `${text.trim()}\n`]))),
    probe,
  );
  assert.deepEqual(probe.legacyTables, { v4: ['nat', 'filter'], v6: [] });
  assert.deepEqual(probe.addresses.map(formatAddress), ['10.1.2.3', 'fd00::2']);
  assert.equal(decideIpv6(probe.addresses, false), false);
  assert.equal(decideIpv6(probe.addresses, true), true);
  assert.throws(() => decideIpv6([], false), /no valid local IP address found/);
});

test('ip -o addr fallback lists IPv4 first', () => {
  const output = `1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet6 fd00::2/64 scope global\n2: eth0    inet 10.0.0.2/24 brd 10.0.0.255 scope global eth0\n`;
  assert.deepEqual(parseIpAddrOutput(output).map(formatAddress), ['10.0.0.2', 'fd00::2']);
});

test('ip -o addr fallback: a point-to-point address (inet <local> peer <remote>/32) counts by its local side', () => {
  // As `ip -o addr show` prints an address added with `peer` (read off a real netns).
  const output =
    '3: v0    inet 10.9.0.1 peer 10.9.0.2/32 scope global v0\\       valid_lft forever preferred_lft forever\n';
  assert.deepEqual(parseIpAddrOutput(output).map(formatAddress), ['10.9.0.1']);
});

test('nsenterArgv wraps only when a namespace is given; package names for missing binaries', () => {
  assert.deepEqual(nsenterArgv(['ip', 'a'], {}), ['ip', 'a']);
  assert.deepEqual(nsenterArgv(['ip', 'a'], { netns: '/run/netns/x' }), [
    'nsenter',
    '--net=/run/netns/x',
    '--',
    'ip',
    'a',
  ]);
  assert.deepEqual(nsenterArgv(['ip'], { netns: '/n', userns: '/u' }), [
    'nsenter',
    '--user=/u',
    '--net=/n',
    '--',
    'ip',
  ]);
  assert.equal(debianPackageFor('ip6tables-legacy-restore'), 'iptables');
  assert.equal(debianPackageFor('/usr/sbin/nft'), 'nftables');
  assert.equal(debianPackageFor('nsenter'), 'util-linux');
});

test('saved state, structural delta, committed tables and the undo document', () => {
  const rules = buildCaptureRules({ ...POD_DEFAULT, inboundInterceptionMode: 'TPROXY' }).rules.v4;
  const state = parseSavedState(
    '*nat\n:PREROUTING ACCEPT [0:0]\n:ISTIO_OUTPUT - [0:0]\n:ISTIO_X - [0:0]\n-A ISTIO_OUTPUT -j RETURN\nCOMMIT\n',
  );
  assert.deepEqual(
    [...(state.istioChains.get('nat') ?? new Map())],
    [
      ['ISTIO_OUTPUT', 1],
      ['ISTIO_X', 0],
    ],
  );
  const delta = structuralDelta(state, rules);
  assert.ok(delta.includes('table mangle is missing'));
  assert.ok(delta.includes('unexpected chain ISTIO_X in table nat'));
  const document = '* mangle\n-N A\nCOMMIT\n* nat\n-N ISTIO_OUTPUT\nCOMMIT\n';
  assert.deepEqual(committedTables(document, 'iptables-restore: line 5 failed'), ['mangle']);
  assert.deepEqual(committedTables(document, 'Error occurred at line: 2'), []);
  assert.equal(committedTables(document, 'weird'), undefined);
  const undo = renderUndoDocument(rules, ['mangle']);
  assert.match(undo, /^\* mangle\n-D PREROUTING -p tcp -j ISTIO_INBOUND\n/);
  assert.match(undo, /-F ISTIO_DIVERT\n[\s\S]*-X ISTIO_DIVERT\n[\s\S]*COMMIT\n$/);
});

test('fib_trie: every /32 host LOCAL leaf counts, a wider local route does not', () => {
  const fibTrie = [
    'Local:',
    '  +-- 0.0.0.0/0 3 0 5',
    '     |-- 10.1.2.3',
    '        /32 host LOCAL',
    '     |-- 10.9.0.0',
    '        /16 host LOCAL',
    '     |-- 10.5.6.7',
    '        /32 host LOCAL',
    '     |-- 10.5.6.255',
    '        /32 link BROADCAST',
  ].join('\n');
  const probe = parseNetnsProbe(new Map([['fib_trie', fibTrie]]));
  assert.deepEqual(probe.addresses.map(formatAddress), ['10.1.2.3', '10.5.6.7']);
});

test('ip -o addr fallback skips link-local addresses, so a dual-stack check of an IPv4-only pod stays IPv4', () => {
  const output = [
    '1: lo    inet 127.0.0.1/8 scope host lo',
    '1: lo    inet6 ::1/128 scope host',
    '2: eth0    inet 10.0.0.2/24 brd 10.0.0.255 scope global eth0',
    '2: eth0    inet 169.254.7.7/16 scope link eth0',
    '2: eth0    inet6 fe80::a8b3:1ff:fe02:304/64 scope link',
  ].join('\n');
  const addresses = parseIpAddrOutput(output);
  assert.deepEqual(addresses.map(formatAddress), ['10.0.0.2']);
  assert.equal(decideIpv6(addresses, true), false);
});
