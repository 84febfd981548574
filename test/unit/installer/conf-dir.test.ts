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
