// The pure IP parser/formatter/classifier against Go's net/netip, which upstream parses CIDRs and local addresses
// with: ParsePrefix's acceptance, Addr.String()/Prefix.String() text (no masking), IsLoopback, IsLinkLocalUnicast
// and IsLinkLocalMulticast (IPv4-mapped addresses unmapped first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatAddress,
  formatPrefix,
  isLinkLocal,
  isLoopback,
  parseAddress,
  parsePrefix,
} from '../../../src/rules/ip.ts';
import type { ParsedAddress } from '../../../src/rules/ip.ts';

function address(text: string): ParsedAddress {
  const parsed = parseAddress(text);
  assert.ok(parsed !== undefined, `${text} should parse`);
  return parsed;
}

test('prefixes netip.ParsePrefix accepts keep their text form (no masking, boundary octets and lengths)', () => {
  const cases: [string, string][] = [
    ['10.1.2.3/8', '10.1.2.3/8'],
    ['255.255.255.255/32', '255.255.255.255/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['::/0', '::/0'],
    ['::/128', '::/128'],
    ['1:2:3:4:5:6:7:8/128', '1:2:3:4:5:6:7:8/128'],
    ['1:2:3:4:5:6:7::/64', '1:2:3:4:5:6:7:0/64'],
    ['ffff:FFFF::/32', 'ffff:ffff::/32'],
    ['1:2:3:4:5:6:1.2.3.4/96', '1:2:3:4:5:6:102:304/96'],
  ];
  for (const [input, canonical] of cases) {
    const prefix = parsePrefix(input);
    assert.ok(prefix !== undefined, input);
    assert.equal(formatPrefix(prefix), canonical, input);
  }
});

test('prefixes netip.ParsePrefix refuses are refused', () => {
  for (const input of [
    '10.0.0.0', // bits are required
    '1.2.3.4.5/8',
    '1.2.3/8',
    '010.0.0.0/8', // Go refuses leading zeros in IPv4 octets
    '10.00.0.0/8',
    '10.0.0.256/8',
    '10.0.0.0/08',
    '10.0.0.0/33',
    '::/129',
    '::/0128',
    '12345::/16',
    '1:2:3:4::5:6:7:8/64', // the :: must stand for at least one zero group
    '1:2:3:4:5:6:7:8:9/64',
    '1:2:3:4:5:6:7:8::1::2/64',
    '1::2::3/64',
    '::ffff:1.2.3/96', // a bad embedded IPv4 is refused, not thrown on
    '::ffff:1.2.3.256/96',
    'fe80::1%eth0/64',
  ]) {
    assert.equal(parsePrefix(input), undefined, input);
  }
});

test('addresses print as netip.Addr.String(): longest zero run (the first of equals), never a single zero', () => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'],
    ['1:0:0:2:0:0:0:4', '1:0:0:2::4'],
    ['FD00:0:0:0:0:0:0:0', 'fd00::'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['0:0:0:0:0:ffff:a00:1', '::ffff:10.0.0.1'],
    ['::ffff:0:a00:1', '::ffff:0:a00:1'],
    ['::ff00:a00:1', '::ff00:a00:1'],
  ];
  for (const [input, canonical] of cases) {
    assert.equal(formatAddress(address(input)), canonical, input);
  }
});

test('loopback as netip.IsLoopback: 127/8, ::1 only, IPv4-mapped unmapped first', () => {
  const cases: [string, boolean][] = [
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['128.0.0.1', false],
    ['::1', true],
    ['::', false],
    ['::101', false],
    ['::1:1', false],
    ['::ffff:127.0.0.1', true],
    ['::ff00:7f00:1', false],
    ['::fffe:7f00:1', false],
  ];
  for (const [input, expected] of cases) {
    assert.equal(isLoopback(address(input)), expected, input);
  }
});

test('link-local as netip.IsLinkLocalUnicast || IsLinkLocalMulticast', () => {
  const cases: [string, boolean][] = [
    ['169.254.1.1', true],
    ['169.253.1.1', false],
    ['170.254.1.1', false],
    ['224.0.0.251', true],
    ['224.0.1.1', false],
    ['224.1.0.1', false],
    ['fe80::1', true],
    ['febf::1', true],
    ['fec0::1', false],
    ['ff02::1', true],
    ['ff12::1', true], // flag bits set, link-local scope
    ['ff05::1', false],
    ['fd00::1', false],
    ['::ffff:169.254.0.1', true],
    ['::ffff:10.0.0.1', false],
  ];
  for (const [input, expected] of cases) {
    assert.equal(isLinkLocal(address(input)), expected, input);
  }
});
