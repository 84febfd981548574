// cidrError against the text Go's netip.ParsePrefix gives for the same input (messages taken from its parser:
// ParseAddr's family choice, parseIPv4Fields, parseIPv6, the bits checks), so a pod's event names the fault as
// upstream's would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrError } from '../../../src/cni/cidr.ts';

test('valid prefixes of both families', () => {
  for (const ok of [
    '0.0.0.0/0',
    '10.1.2.3/8',
    '::/0',
    'fd00::1/128',
    '::ffff:10.0.0.1/96',
    '1:2:3:4:5:6:7:8/64',
    // Every digit, 9 included (192.168/16 is the commonest exclusion), and Go's uppercase hex.
    '192.168.0.0/16',
    '99.199.249.9/32',
    'FD00::/8',
    'fd00:ABCD:ef09::1/64',
  ]) {
    assert.equal(cidrError(ok), undefined, ok);
  }
});

test("each fault with Go's words", () => {
  const cases: [string, string][] = [
    ['10.0.0.0', "no '/'"],
    ['10.0.0/8', 'ParseAddr("10.0.0"): IPv4 address too short'],
    ['1.2.3.4.5/8', 'ParseAddr("1.2.3.4.5"): IPv4 address too long'],
    ['10.0.0.a/8', 'ParseAddr("10.0.0.a"): unexpected character (at "a")'],
    ['1..2.3/8', 'ParseAddr("1..2.3"): IPv4 field must have at least one digit (at ".2.3")'],
    ['010.0.0.0/8', 'ParseAddr("010.0.0.0"): IPv4 field has octet with leading zero'],
    ['10.0.0.256/8', 'ParseAddr("10.0.0.256"): IPv4 field has value >255'],
    ['%x/8', 'ParseAddr("%x"): missing IPv6 address'],
    ['x/8', 'ParseAddr("x"): unable to parse IP'],
    ['fe80::1%eth0/64', 'IPv6 zones cannot be present in a prefix'],
    ['fe80::1%/64', 'ParseAddr("fe80::1%"): zone must be a non-empty string'],
    [
      'fd00:::1/8',
      'ParseAddr("fd00:::1"): each colon-separated field must have at least one digit (at ":1")',
    ],
    ['1:2:3:4:5:6:7:8:9/64', 'ParseAddr("1:2:3:4:5:6:7:8:9"): trailing garbage after address (at "9")'],
    [
      '1::2:3:4:5:6:7:8/64',
      'ParseAddr("1::2:3:4:5:6:7:8"): the :: must expand to at least one field of zeros',
    ],
    ['1:2:3/64', 'ParseAddr("1:2:3"): address string too short'],
    ['12345::/8', 'ParseAddr("12345::"): each group must have 4 or less digits (at "12345::")'],
    ['1::2::3/64', 'ParseAddr("1::2::3"): multiple :: in address (at ":3")'],
    ['1:2:/64', 'ParseAddr("1:2:"): colon must be followed by more characters (at ":")'],
    ['1:2x/64', 'ParseAddr("1:2x"): unexpected character, want colon (at "x")'],
    ['::1.2.3/96', 'ParseAddr("::1.2.3"): IPv4 address too short'],
    [
      '1:2:1.2.3.4/96',
      'ParseAddr("1:2:1.2.3.4"): embedded IPv4 address must replace the final 2 fields of the address (at "1.2.3.4")',
    ],
    ['10.0.0.0/08', 'bad bits after slash: "08"'],
    ['10.0.0.0/+8', 'bad bits after slash: "+8"'],
    ['10.0.0.0/', 'bad bits after slash: ""'],
    ['10.0.0.0/99999999999999999999', 'bad bits after slash: "99999999999999999999"'],
    ['10.0.0.0/9999999999', 'prefix length out of range'],
    ['10.0.0.0/33', 'prefix length out of range'],
    ['::/129', 'prefix length out of range'],
  ];
  for (const [cidr, detail] of cases) {
    assert.equal(cidrError(cidr), `netip.ParsePrefix(${JSON.stringify(cidr)}): ${detail}`, cidr);
  }
});

test('boundaries of the parser: 255, embedded IPv4 after six groups, the largest bits Atoi takes', () => {
  for (const ok of ['255.255.255.255/32', '1:2:3:4:5:6:1.2.3.4/96', '1::1.2.3.4/96']) {
    assert.equal(cidrError(ok), undefined, ok);
  }
  const cases: [string, string][] = [
    ['.1.2.3/8', 'ParseAddr(".1.2.3"): IPv4 field must have at least one digit (at ".1.2.3")'],
    ['1.2.3./8', 'ParseAddr("1.2.3."): IPv4 field must have at least one digit (at ".")'],
    // The prefix length is what follows the last slash.
    ['1.2.3.4/8/8', 'ParseAddr("1.2.3.4/8"): unexpected character (at "/8")'],
    [
      '1:2:3:4:5:6::1.2.3.4/96',
      'ParseAddr("1:2:3:4:5:6::1.2.3.4"): the :: must expand to at least one field of zeros',
    ],
    [
      '1:2:3:4:5:6:7::1.2.3.4/96',
      'ParseAddr("1:2:3:4:5:6:7::1.2.3.4"): too many hex fields to fit an embedded IPv4 at the end of the address (at "1.2.3.4")',
    ],
    [
      '::1:2:3:4:5:6:7:8/64',
      'ParseAddr("::1:2:3:4:5:6:7:8"): the :: must expand to at least one field of zeros',
    ],
    ['10.0.0.0/9223372036854775807', 'prefix length out of range'],
    ['10.0.0.0/9223372036854775808', 'bad bits after slash: "9223372036854775808"'],
  ];
  for (const [cidr, detail] of cases) {
    assert.equal(cidrError(cidr), `netip.ParsePrefix(${JSON.stringify(cidr)}): ${detail}`, cidr);
  }
});
