import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confFileProblem, hasConfExtension, sortNames } from '../../../src/installer/conf-dir.ts';

test('extensions as libcni', () => {
  assert.deepEqual(
    ['a.conf', 'b.conflist', 'c.json', 'd.conf.tmp.123', 'e.txt', 'conf'].filter(hasConfExtension),
    ['a.conf', 'b.conflist', 'c.json'],
  );
});
test('byte-wise sort', () => {
  assert.deepEqual(sortNames(['b.conf', 'B.conf', '10-a.conf', '01-z.conflist']), [
    '01-z.conflist',
    '10-a.conf',
    'B.conf',
    'b.conf',
  ]);
});
test('validity: the §5.2 fixture kinds', () => {
  assert.equal(confFileProblem('m.conf', '{"type":"bridge","name":"x"}'), undefined);
  assert.notEqual(confFileProblem('bad.conf', '{"name":"x"}'), undefined);
  assert.notEqual(confFileProblem('non.conf', '[]'), undefined);
  assert.notEqual(confFileProblem('e.conf', ''), undefined);
  assert.notEqual(confFileProblem('half.conflist', '{"name":"x","plugins":[{"type":"a"'), undefined);
  assert.notEqual(confFileProblem('noname.conflist', '{"plugins":[{"type":"a"}]}'), undefined);
  assert.notEqual(confFileProblem('nopl.conflist', '{"name":"x","pugins":[{"type":"a"}]}'), undefined);
  assert.notEqual(confFileProblem('list-as.conf', '{"name":"x","plugins":[{"type":"a"}]}'), undefined);
  assert.notEqual(
    confFileProblem('cap.conflist', '{"name":"x","plugins":[{"type":"a","capabilities":{"a":1}}]}'),
    undefined,
  );
  assert.equal(
    confFileProblem('ok.conflist', '{"name":"x","cniVersion":"1.0.0","plugins":[{"type":"a"}]}'),
    undefined,
  );
});

test('validity: null is "not set" inside a plugin (Go json), but not for the list\'s own keys (type-asserted)', () => {
  const plugin =
    '{"type":"a","name":null,"cniVersion":null,"ipam":null,"dns":null,"capabilities":{"x":null}}';
  assert.equal(confFileProblem('nulls.conflist', `{"name":"x","plugins":[${plugin}]}`), undefined);
  assert.equal(confFileProblem('nulls.conf', plugin), undefined);
  assert.notEqual(
    confFileProblem('listnull.conflist', '{"name":"x","cniVersion":null,"plugins":[{"type":"a"}]}'),
    undefined,
  );
  assert.notEqual(confFileProblem('typenull.conf', '{"type":null}'), undefined);
});

test("validity: the typed fields inside ipam, dns and prevResult fail Go's decode of the whole file when mistyped", () => {
  const withPlugin = (fields: string): string => `{"name":"x","plugins":[{"type":"a",${fields}}]}`;
  for (const [fields, problem] of [
    ['"ipam":{"type":1}', 'ipam.type must be a string'],
    ['"dns":{"nameservers":"10.0.0.1"}', 'dns.nameservers must be an array of strings'],
    ['"dns":{"search":[1]}', 'dns.search must be an array of strings'],
    ['"dns":{"options":{}}', 'dns.options must be an array of strings'],
    ['"dns":{"domain":["a"]}', 'dns.domain must be a string'],
    ['"prevResult":[]', 'prevResult must be an object'],
  ] as const) {
    assert.equal(confFileProblem('l.conflist', withPlugin(fields)), problem, fields);
  }
  // What Go decodes: the right types, nulls (unset), null items of a []string (""), and keys it does not know.
  assert.equal(
    confFileProblem(
      'l.conflist',
      withPlugin(
        '"ipam":{"type":"host-local","ranges":[]},"dns":{"nameservers":["10.0.0.1",null],"domain":null,"search":null},"prevResult":{"ips":[]}',
      ),
    ),
    undefined,
  );
});

test('byte-wise sort is by UTF-8 bytes, not UTF-16 code units', () => {
  // U+FFFF is EF BF BF in UTF-8, before U+1F600 (F0 9F 98 80); in UTF-16 the surrogate D83D sorts first.
  assert.deepEqual(sortNames(['\u{1F600}.conf', '\uFFFF.conf']), ['\uFFFF.conf', '\u{1F600}.conf']);
});

test('extensions: a file named just ".conf" has the extension (Go filepath.Ext)', () => {
  assert.equal(hasConfExtension('.conf'), true);
  assert.equal(hasConfExtension('.conflist'), true);
});

test('validity: a plugin type must be a non-empty string, in a .conf and inside a .conflist', () => {
  assert.equal(confFileProblem('e.conf', '{"type":""}'), 'a plugin has no "type"');
  assert.equal(
    confFileProblem('e.conflist', '{"name":"x","plugins":[{"type":""}]}'),
    'a plugin has no "type"',
  );
});

test('validity: the list-level keys of a .conflist as libcni reads them', () => {
  const withList = (fields: string): string => `{"name":"x",${fields},"plugins":[{"type":"a"}]}`;
  for (const key of ['disableCheck', 'disableGC', 'loadOnlyInlinedPlugins']) {
    for (const value of ['true', 'false', '"true"', '"false"']) {
      assert.equal(
        confFileProblem('l.conflist', withList(`"${key}":${value}`)),
        undefined,
        `${key}: ${value}`,
      );
    }
    for (const value of ['1', '"yes"', '[]']) {
      assert.equal(
        confFileProblem('l.conflist', withList(`"${key}":${value}`)),
        `${key} must be a boolean`,
        `${key}: ${value}`,
      );
    }
  }
  assert.equal(confFileProblem('l.conflist', withList('"cniVersions":["1.0.0","0.4.0"]')), undefined);
  for (const versions of ['"1.0.0"', '[1]', '["1.0.0",null]']) {
    assert.equal(
      confFileProblem('l.conflist', withList(`"cniVersions":${versions}`)),
      'cniVersions must be an array of strings',
      versions,
    );
  }
  assert.equal(confFileProblem('l.conflist', '{"name":"x","plugins":[]}'), 'conflist has no plugins');
});

test('validity: capabilities must be a JSON object, not an array of booleans', () => {
  for (const capabilities of ['[true]', '[]', '"portMappings"', 'true']) {
    assert.equal(
      confFileProblem('c.conf', `{"type":"a","capabilities":${capabilities}}`),
      'capabilities must be a map of booleans',
      capabilities,
    );
  }
  assert.equal(confFileProblem('c.conf', '{"type":"a","capabilities":{"portMappings":true}}'), undefined);
});

test('validity: a plugin name must be a string and dns an object', () => {
  assert.equal(confFileProblem('n.conf', '{"type":"a","name":1}'), 'cniVersion/name must be strings');
  for (const dns of ['"8.8.8.8"', '["8.8.8.8"]']) {
    assert.equal(confFileProblem('d.conf', `{"type":"a","dns":${dns}}`), 'ipam/dns must be objects', dns);
  }
});

test('validity: a number Go cannot hold (1e400) makes the file invalid, as libcni fails to decode it', () => {
  // Picked as the primary, the merge (which refuses it) would wait on it forever instead of moving on.
  assert.equal(confFileProblem('a.conf', '{"type":"bridge","name":"x","mtu":1e400}'), 'not valid JSON');
  assert.equal(
    confFileProblem('a.conflist', '{"name":"x","plugins":[{"type":"bridge","mtu":-1e400}]}'),
    'not valid JSON',
  );
  assert.equal(confFileProblem('a.conf', '{"type":"bridge","name":"x","mtu":1e300}'), undefined);
});
