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

test("0.3.x/0.4.0 always print dns (Go's omitempty never drops a struct), {} when the prevResult had none", () => {
  for (const version of ['0.3.0', '0.3.1', '0.4.0']) {
    const { dns: _dns, ...withoutDns } = prev040;
    const parsed = parsePrevResult({ ...withoutDns, cniVersion: version }, version);
    assert.deepEqual(parsed.json['dns'], {}, version);
    assert.match(encodeResult(parsed.json), /"dns": \{\}\n\}$/, version);
  }
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

test("a prevResult of another version family fails as upstream's version.NewResult does, never loses its IPs", () => {
  const cases: [unknown, string, string][] = [
    [
      { cniVersion: '0.2.0', ip4: { ip: '10.1.0.5/16' } },
      '1.0.0',
      '[1.0.0 1.1.0] but unmarshalled CNIVersion is "0.2.0"',
    ],
    [
      { cniVersion: '1.0.0', ips: [{ address: '10.1.0.5/16' }] },
      '0.3.1',
      '[0.3.0 0.3.1 0.4.0] but unmarshalled CNIVersion is "1.0.0"',
    ],
    [
      { cniVersion: '1.1.0', ips: [{ address: '10.1.0.5/16' }] },
      '0.2.0',
      '[ 0.1.0 0.2.0] but unmarshalled CNIVersion is "1.1.0"',
    ],
    [{ ips: [{ address: '10.1.0.5/16' }] }, '1.0.0', '[1.0.0 1.1.0] but unmarshalled CNIVersion is ""'],
  ];
  for (const [prevResult, configVersion, expected] of cases) {
    assert.throws(
      () => parsePrevResult(prevResult, configVersion),
      { message: `could not parse prevResult: result type supports ${expected}` },
      `${JSON.stringify(prevResult)} under ${configVersion}`,
    );
  }
  // Within a family the config version is printed; a 0.1.0/0.2.0 result may omit its version.
  assert.equal(parsePrevResult({ ...prev040, cniVersion: '0.3.1' }, '0.4.0').json['cniVersion'], '0.4.0');
  assert.deepEqual(parsePrevResult({ ip4: { ip: '10.1.0.5/16' } }, '0.2.0').ips, [
    { interfaceIndex: undefined, address: '10.1.0.5/16', gateway: undefined },
  ]);
});

test("routes keep every field of Go's types.Route from 0.3.0 on (table and scope keep an explicit 0); 0.1.0/0.2.0 keep dst and gw, as convertTo02x", () => {
  const full = {
    dst: '0.0.0.0/0',
    gw: '10.0.0.1',
    mtu: 1400,
    advmss: 1360,
    priority: 10,
    table: 0,
    scope: 0,
  };
  const unset = { dst: '10.0.0.0/8', mtu: 0, advmss: 0, priority: 0, table: null };
  const expected = [full, { dst: '10.0.0.0/8' }];
  for (const version of ['0.3.0', '0.4.0', '1.0.0', '1.1.0']) {
    const parsed = parsePrevResult({ cniVersion: version, routes: [full, unset] }, version);
    assert.deepEqual(parsed.json['routes'], expected, version);
  }
  const legacy = parsePrevResult(
    { cniVersion: '0.2.0', ip4: { ip: '10.1.0.5/16', routes: [full, unset] } },
    '0.2.0',
  );
  assert.deepEqual((legacy.json['ip4'] as { routes: unknown }).routes, [
    { dst: '0.0.0.0/0', gw: '10.0.0.1' },
    { dst: '10.0.0.0/8' },
  ]);
});

test('1.x is printed as types100 prints it: every level’s keys sorted', () => {
  const parsed = parsePrevResult(
    {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: 'ee:ee:ee:ee:ee:ee', mtu: 1450, sandbox: '/var/run/netns/x' }],
      ips: [{ interface: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1', mtu: 1400, table: 0 }],
      dns: { search: ['svc'], nameservers: ['10.96.0.10'] },
    },
    '1.0.0',
  );
  assert.equal(
    encodeResult(parsed.json),
    [
      '{',
      '    "cniVersion": "1.0.0",',
      '    "dns": {',
      '        "nameservers": [',
      '            "10.96.0.10"',
      '        ],',
      '        "search": [',
      '            "svc"',
      '        ]',
      '    },',
      '    "interfaces": [',
      '        {',
      '            "mac": "ee:ee:ee:ee:ee:ee",',
      '            "mtu": 1450,',
      '            "name": "eth0",',
      '            "sandbox": "/var/run/netns/x"',
      '        }',
      '    ],',
      '    "ips": [',
      '        {',
      '            "address": "10.0.0.2/24",',
      '            "gateway": "10.0.0.1",',
      '            "interface": 0',
      '        }',
      '    ],',
      '    "routes": [',
      '        {',
      '            "dst": "0.0.0.0/0",',
      '            "gw": "10.0.0.1",',
      '            "mtu": 1400,',
      '            "table": 0',
      '        }',
      '    ]',
      '}',
    ].join('\n'),
  );
});

test('keys match their fields ignoring case, the last one winning, as Go decodes (upstream fixtures say "cniversion")', () => {
  const parsed = parsePrevResult(
    {
      cniversion: '1.0.0',
      Interfaces: [{ NAME: 'eth0', Sandbox: '/tmp' }],
      ips: [
        { Version: '4', ADDRESS: '10.0.0.9/24', address: '10.0.0.2/24', Gateway: '10.0.0.1', Interface: 0 },
      ],
      Routes: [],
    },
    '1.0.0',
  );
  assert.deepEqual(parsed.json, {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'eth0', sandbox: '/tmp' }],
    ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }],
  });
  assert.deepEqual(parsed.ips, [{ interfaceIndex: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' }]);
  // Upstream decodes the prevResult from a Go map marshalled again: of two spellings the last in byte order wins
  // ("ips" after "IPS", "cniversion" after "cniVersion"), wherever they stand in the document.
  const twice = parsePrevResult(
    { ips: [{ address: '10.0.0.2/24' }], IPS: [{ address: '10.0.0.3/24' }], cniVersion: '1.0.0' },
    '1.0.0',
  );
  assert.deepEqual(twice.ips, [{ interfaceIndex: undefined, address: '10.0.0.2/24', gateway: undefined }]);
  assert.throws(() => parsePrevResult({ cniversion: '0.4.0', cniVersion: '1.0.0' }, '1.0.0'), /is "0.4.0"/);
  // A null sets nothing in a Go string field: the earlier spelling stands.
  assert.equal(
    parsePrevResult({ CNIVERSION: '1.0.0', cniVersion: null }, '1.0.0').json['cniVersion'],
    '1.0.0',
  );
  assert.deepEqual(parsePrevResult({ CNIVersion: '0.2.0', IP4: { IP: '10.1.0.5/16' } }, '0.2.0').json, {
    cniVersion: '0.2.0',
    ip4: { ip: '10.1.0.5/16' },
    dns: {},
  });
});

test('0.1.0/0.2.0 without an IPv4 or IPv6 address cannot be printed: "cannot convert: no valid IP addresses", as upstream', () => {
  for (const version of ['0.1.0', '0.2.0']) {
    assert.throws(() => emptyResult(version), { message: 'cannot convert: no valid IP addresses' });
    // upstream's TestCmdAddInvalidVersion: a 0.2.0 prevResult written in the 1.x shape (its ips are not 0.2.0 fields)
    assert.throws(
      () =>
        parsePrevResult(
          { cniversion: '0.2.0', interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.2/24' }] },
          version,
        ),
      { message: 'cannot convert: no valid IP addresses' },
    );
  }
  assert.deepEqual(emptyResult('0.4.0'), { cniVersion: '0.4.0', dns: {} });
});

test('1.x passes every field types100 knows through (interface mtu/socketPath/pciID, an unnamed interface, dns domain/search/options, an IPv6 gateway); 0.4.0 has no mtu, socketPath or pciID; Go\'s nil forms ("" gateway, null dns) are absent, not errors', () => {
  const prev = {
    cniVersion: '1.1.0',
    interfaces: [
      {
        name: 'eth0',
        mac: 'ee:ee:ee:ee:ee:ee',
        mtu: 1450,
        sandbox: '/var/run/netns/x',
        socketPath: '/run/vhost.sock',
        pciID: '0000:00:1f.6',
      },
      { name: '' },
    ],
    ips: [
      { interface: 0, address: 'fd00::2/64', gateway: 'fd00::1' },
      { interface: 0, address: '10.0.0.2/24', gateway: '' },
    ],
    dns: {
      nameservers: ['10.96.0.10'],
      domain: 'cluster.local',
      search: ['svc.cluster.local'],
      options: ['ndots:5'],
    },
  };
  assert.deepEqual(parsePrevResult(prev, '1.1.0').json, {
    cniVersion: '1.1.0',
    dns: {
      domain: 'cluster.local',
      nameservers: ['10.96.0.10'],
      options: ['ndots:5'],
      search: ['svc.cluster.local'],
    },
    interfaces: [
      {
        mac: 'ee:ee:ee:ee:ee:ee',
        mtu: 1450,
        name: 'eth0',
        pciID: '0000:00:1f.6',
        sandbox: '/var/run/netns/x',
        socketPath: '/run/vhost.sock',
      },
      { name: '' },
    ],
    ips: [
      { address: 'fd00::2/64', gateway: 'fd00::1', interface: 0 },
      { address: '10.0.0.2/24', interface: 0 },
    ],
  });
  const as040 = parsePrevResult({ ...prev, cniVersion: '0.4.0' }, '0.4.0').json;
  assert.deepEqual(as040['interfaces'], [
    { name: 'eth0', mac: 'ee:ee:ee:ee:ee:ee', sandbox: '/var/run/netns/x' },
    { name: '' },
  ]);
  assert.deepEqual(as040['ips'], [
    { version: '6', interface: 0, address: 'fd00::2/64', gateway: 'fd00::1' },
    { version: '4', interface: 0, address: '10.0.0.2/24' },
  ]);
  assert.equal('dns' in parsePrevResult({ ...prev, dns: null }, '1.1.0').json, false);
  assert.deepEqual(parsePrevResult({ ...prev, cniVersion: '0.4.0', dns: null }, '0.4.0').json['dns'], {});
});

test('route numbers decode as Go ints: a fraction or a string is a decoding error, for the plain ints and the *int table/scope alike', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ mtu: 1400.5 }, 'mtu'],
    [{ advmss: '1360' }, 'advmss'],
    [{ table: 254.5 }, 'table'],
    [{ scope: '0' }, 'scope'],
  ];
  for (const [extra, field] of cases) {
    assert.throws(
      () => parsePrevResult({ cniVersion: '1.0.0', routes: [{ dst: '0.0.0.0/0', ...extra }] }, '1.0.0'),
      { message: `could not parse prevResult: prevResult.routes[0].${field}: expected an integer` },
      JSON.stringify(extra),
    );
  }
});

test('a null list decodes as Go decodes null into a slice (nothing), a dns list holds strings only', () => {
  const parsed = parsePrevResult(
    {
      cniVersion: '0.4.0',
      interfaces: null,
      ips: null,
      routes: null,
      dns: { nameservers: null, search: ['svc'], options: null },
    },
    '0.4.0',
  );
  assert.deepEqual(parsed.json, { cniVersion: '0.4.0', dns: { search: ['svc'] } });
  assert.deepEqual(parsed.ips, []);
  assert.throws(() => parsePrevResult({ cniVersion: '1.0.0', dns: { nameservers: [10] } }, '1.0.0'), {
    message: 'could not parse prevResult: prevResult.dns.nameservers[0]: expected a string',
  });
});

test('0.3.x/0.4.0 print dns in types.DNS field order (nameservers, domain, search, options); a MAC is passed as given', () => {
  const parsed = parsePrevResult(
    {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0', mac: 'EE:AA:00:11:22:33' }],
      dns: { options: ['ndots:5'], search: ['svc'], domain: 'cluster.local', nameservers: ['10.96.0.10'] },
    },
    '0.4.0',
  );
  assert.equal(
    encodeResult(parsed.json),
    [
      '{',
      '    "cniVersion": "0.4.0",',
      '    "interfaces": [',
      '        {',
      '            "name": "eth0",',
      '            "mac": "EE:AA:00:11:22:33"',
      '        }',
      '    ],',
      '    "dns": {',
      '        "nameservers": [',
      '            "10.96.0.10"',
      '        ],',
      '        "domain": "cluster.local",',
      '        "search": [',
      '            "svc"',
      '        ],',
      '        "options": [',
      '            "ndots:5"',
      '        ]',
      '    }',
      '}',
    ].join('\n'),
  );
});

test('0.1.0/0.2.0 print ip4 before ip6 (types020 field order) wherever the prevResult had them', () => {
  const parsed = parsePrevResult(
    {
      cniVersion: '0.2.0',
      dns: {},
      ip6: { ip: 'fd00::5/64' },
      ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1' },
    },
    '0.2.0',
  );
  assert.deepEqual(Object.keys(parsed.json), ['cniVersion', 'ip4', 'ip6', 'dns']);
  assert.deepEqual(
    parsed.ips.map((item) => item.address),
    ['10.1.0.5/16', 'fd00::5/64'],
  );
});

test('addresses and gateways are checked in every shape: a 0.2.0 ip4 needs its ip, route gw and 0.2.0 gateway must be IPs', () => {
  const cases: [unknown, string, string][] = [
    [
      { cniVersion: '0.2.0', ip4: { gateway: '10.1.0.1' } },
      '0.2.0',
      'prevResult.ip4.ip: expected a CIDR address',
    ],
    [
      { cniVersion: '0.2.0', ip4: { ip: '10.1.0.5/16', gateway: '10.1.0' } },
      '0.2.0',
      'prevResult.ip4.gateway: invalid IP "10.1.0"',
    ],
    [
      { cniVersion: '1.0.0', routes: [{ dst: '0.0.0.0/0', gw: 'router' }] },
      '1.0.0',
      'prevResult.routes[0].gw: invalid IP "router"',
    ],
    [
      { cniVersion: '0.2.0', ip4: { ip: '10.1.0.5/16', routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1/16' }] } },
      '0.2.0',
      'prevResult.ip4.routes[0].gw: invalid IP "10.1.0.1/16"',
    ],
  ];
  for (const [prevResult, version, message] of cases) {
    assert.throws(
      () => parsePrevResult(prevResult, version),
      { message: `could not parse prevResult: ${message}` },
      JSON.stringify(prevResult),
    );
  }
});

test('0.3.x/0.4.0 IP versions are recomputed from the address (upstream converts through types100), not copied', () => {
  const parsed = parsePrevResult(
    {
      cniVersion: '0.3.1',
      ips: [{ version: '6', address: '10.0.0.2/24' }, { address: 'fd00::2/64' }],
    },
    '0.3.1',
  );
  assert.deepEqual(parsed.json['ips'], [
    { version: '4', address: '10.0.0.2/24' },
    { version: '6', address: 'fd00::2/64' },
  ]);
});
