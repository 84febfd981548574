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
