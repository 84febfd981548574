import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyResult, encodeResult, parsePrevResult } from '../../../src/cni/result.ts';

const prev040 = {
  cniVersion: '0.4.0',
  interfaces: [{ name: 'eth0', mac: 'ee:ee:ee:ee:ee:ee', sandbox: '/var/run/netns/x', extra: 1 }],
  ips: [
    { version: '4', interface: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' },
    { version: '6', address: 'fd00::2/64' },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
  dns: { nameservers: ['10.96.0.10'] },
};

test('0.4.0 prevResult passes through in Go field order with versions on IPs', () => {
  const parsed = parsePrevResult(prev040, '0.4.0');
  assert.equal(
    encodeResult(parsed.json),
    JSON.stringify(
      {
        cniVersion: '0.4.0',
        interfaces: [{ name: 'eth0', mac: 'ee:ee:ee:ee:ee:ee', sandbox: '/var/run/netns/x' }],
        ips: [
          { version: '4', interface: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' },
          { version: '6', address: 'fd00::2/64' },
        ],
        routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
        dns: { nameservers: ['10.96.0.10'] },
      },
      null,
      4,
    ),
  );
  assert.deepEqual(parsed.ips[0], { interfaceIndex: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' });
});

test('1.x drops IP versions and empty dns; the config version wins', () => {
  const parsed = parsePrevResult({ ...prev040, cniVersion: '1.0.0', dns: {} }, '1.1.0');
  assert.equal(parsed.json['cniVersion'], '1.1.0');
  assert.deepEqual(parsed.json['ips'], [
    { interface: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' },
    { address: 'fd00::2/64' },
  ]);
  assert.equal('dns' in parsed.json, false);
});

test('0.2.0 shape (ip4/ip6)', () => {
  const parsed = parsePrevResult(
    { cniVersion: '0.2.0', ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1' } },
    '0.2.0',
  );
  assert.deepEqual(parsed.json, {
    cniVersion: '0.2.0',
    ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1' },
    dns: {},
  });
});

test('empty results per version family', () => {
  assert.equal(encodeResult(emptyResult('1.0.0')), '{\n    "cniVersion": "1.0.0"\n}');
  assert.deepEqual(emptyResult('0.3.1'), { cniVersion: '0.3.1', dns: {} });
});

test('malformed prevResult → "could not parse prevResult: <where>"', () => {
  const bad: unknown[] = [
    'x',
    [],
    { ips: 'nope' },
    { ips: [{ address: 'banana' }] },
    { ips: [{ address: '10.0.0.1/24', interface: 'eth0' }] },
    { interfaces: [{ name: 3 }] },
    { routes: [{ gw: '10.0.0.1' }] },
    { ips: [{ address: '10.0.0.1/24', gateway: 'x' }] },
  ];
  for (const value of bad) {
    assert.throws(
      () => parsePrevResult(value, '1.0.0'),
      /^Error: could not parse prevResult: prevResult/,
      JSON.stringify(value),
    );
  }
});
