import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  buildPluginEntry,
  chainedEntryProblem,
  insertEntry,
  removeEntry,
  renderStandalone,
  standaloneProblem,
} from '../../../src/installer/conflist.ts';
import { marshalSorted, type JsonObject } from '../../../src/installer/go-json.ts';

const testdata = path.resolve(import.meta.dirname, '../../../../shared/conformance/istio-install-testdata');
const read = (name: string): string => readFileSync(path.join(testdata, name), 'utf8');

const entryConfig = {
  pluginLogLevel: 'debug',
  runDir: '/path/to/kubeconfig',
  ambientEnabled: false,
  excludeNamespaces: [],
  podNamespace: 'my-namespace',
  nativeNftables: false,
  enableAmbientDetectionRetry: false,
  podLookupDeadlineSeconds: undefined,
} as const;
const entry = buildPluginEntry(entryConfig);

test('standalone entry is byte-identical to istio-cni.conf', () => {
  assert.equal(renderStandalone(entry), read('istio-cni.conf'));
});

for (const [input, golden] of [
  ['bridge.conf', 'bridge.conf.golden'],
  ['list.conflist', 'list.conflist.golden'],
  ['list-with-istio.conflist', 'list-with-istio.conflist.golden'],
]) {
  test(`insert into ${input} matches ${golden}, and is idempotent`, () => {
    const once = insertEntry(read(input!), entry);
    assert.equal(once, read(golden!));
    assert.equal(insertEntry(once, entry), once);
    assert.equal(chainedEntryProblem(once), undefined);
  });
}

test('remove from list-with-istio.conflist matches list-no-istio.conflist; nothing to remove twice', () => {
  const removed = removeEntry(read('list-with-istio.conflist'));
  assert.equal(removed, read('list-no-istio.conflist'));
  assert.equal(removeEntry(removed), undefined);
});

test('a list with two istio-cni entries gets exactly one, last; removal takes out both', () => {
  const doubled = JSON.stringify({
    cniVersion: '0.3.1',
    name: 'k8s-pod-network',
    plugins: [{ type: 'istio-cni', stale: 1 }, { type: 'calico' }, { type: 'istio-cni', stale: 2 }],
  });
  const merged = insertEntry(doubled, entry);
  const types = (JSON.parse(merged) as { plugins: { type: string }[] }).plugins.map((p) => p.type);
  assert.deepEqual(types, ['calico', 'istio-cni']);
  assert.equal(insertEntry(merged, entry), merged);
  const removed = removeEntry(doubled);
  assert.deepEqual(
    (JSON.parse(removed!) as { plugins: { type: string }[] }).plugins.map((p) => p.type),
    ['calico'],
  );
});

test('invalid inputs are rejected, never merged', () => {
  assert.throws(() => insertEntry(read('invalid-arr.conflist'), entry), { code: 'CONFLIST_INVALID' });
  assert.throws(() => insertEntry(read('invalid-map.conflist'), entry), { code: 'CONFLIST_INVALID' });
  assert.throws(() => insertEntry('{"name":"x","plugins":[{"type":"a"}', entry), {
    code: 'CONFLIST_INVALID',
  });
  assert.throws(() => insertEntry('{"name":"x","plugins":[1]}', entry), { code: 'CONFLIST_INVALID' });
});

test('validity checks', () => {
  assert.match(chainedEntryProblem(read('list.conflist')) ?? '', /missing/);
  // §1.5.4 step 5: every element an object with a string type, even with our entry present.
  const ours = { type: 'istio-cni' };
  const list = (plugins: unknown[]) => JSON.stringify({ cniVersion: '1.0.0', name: 'k8s', plugins });
  assert.equal(chainedEntryProblem(list([{ type: 'bridge' }, ours])), undefined);
  for (const bad of [{ name: 'no-type' }, { type: 7 }, 'bridge', null]) {
    assert.equal(
      chainedEntryProblem(list([bad, ours])),
      'a plugin has no string "type"',
      JSON.stringify(bad),
    );
  }
  assert.equal(chainedEntryProblem(JSON.stringify({ name: 'k8s', plugins: {} })), 'no "plugins" array');
  // Go's unmarshal refuses a number past float64: never rewritten as null in another plugin's settings.
  const huge = '{"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"bridge","mtu":1e400}]}';
  assert.match(chainedEntryProblem(huge) ?? '', /is not valid JSON: a number is out of range/);
  assert.throws(() => insertEntry(huge, entry), /is not valid JSON: a number is out of range/);
  assert.equal(standaloneProblem(read('istio-cni.conf')), undefined);
  assert.notEqual(standaloneProblem(read('bridge.conf')), undefined);
});

test('pod_lookup_deadline_seconds appears only when configured', () => {
  assert.equal('pod_lookup_deadline_seconds' in entry, false);
  const withDeadline = buildPluginEntry({ ...entryConfig, podLookupDeadlineSeconds: 7 });
  assert.equal(withDeadline['pod_lookup_deadline_seconds'], 7);
});

test('Go escaping of <>& and sorted keys', () => {
  assert.equal(marshalSorted({ b: '<a&b>', a: 1 }), '{\n  "a": 1,\n  "b": "\\u003ca\\u0026b\\u003e"\n}\n');
});

test("Go's key order where JavaScript's differs: integer-like keys as strings, bytes of UTF-8; empty containers", () => {
  const doc = { b: { '9': 1, '10': [], x: {} }, '\u{1F600}': 2, '\uFFFF': 3 };
  assert.equal(
    marshalSorted(doc),
    [
      '{',
      '  "b": {',
      '    "10": [],',
      '    "9": 1,',
      '    "x": {}',
      '  },',
      '  "\uFFFF": 3,',
      '  "\u{1F600}": 2',
      '}',
      '',
    ].join('\n'),
  );
  // The same layout as JSON.stringify wherever the key orders agree.
  const plain = { a: [1, { c: null, d: 'x' }], e: true };
  assert.equal(marshalSorted(plain), `${JSON.stringify(plain, null, 2)}\n`);
});

test('each setting of the entry comes from its own config field', () => {
  const built = buildPluginEntry({
    ...entryConfig,
    ambientEnabled: true,
    nativeNftables: false,
    enableAmbientDetectionRetry: false,
  });
  assert.deepEqual(
    [built['ambient_enabled'], built['native_nftables'], built['enable_ambient_detection_retry']],
    [true, false, false],
  );
  const others = buildPluginEntry({
    ...entryConfig,
    ambientEnabled: false,
    nativeNftables: true,
    enableAmbientDetectionRetry: true,
    excludeNamespaces: ['kube-system'],
  });
  assert.deepEqual(
    [others['ambient_enabled'], others['native_nftables'], others['enable_ambient_detection_retry']],
    [false, true, true],
  );
  assert.deepEqual(others['exclude_namespaces'], ['kube-system']);
});

test('removeEntry: a single network has nothing to remove; the rest of a list is kept as it is', () => {
  assert.equal(removeEntry(read('bridge.conf')), undefined);
  const list = '{"name":"k8s","plugins":[null,{"type":"calico"},{"type":"istio-cni"}]}';
  assert.deepEqual(JSON.parse(removeEntry(list)!), { name: 'k8s', plugins: [null, { type: 'calico' }] });
});

test('standaloneProblem: a number Go cannot decode makes the file invalid, as in a chained config', () => {
  assert.match(
    standaloneProblem('{"type":"istio-cni","name":"istio-cni","mtu":1e400}') ?? '',
    /a number is out of range/,
  );
});

test('a .conflist with a stray top-level "type" stays a list: our entry joins its plugins', () => {
  const stray = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s',
    type: 'bridge',
    plugins: [{ type: 'calico' }],
  });
  const merged = JSON.parse(insertEntry(stray, entry, 'CNI config', true)) as JsonObject;
  assert.equal(merged['name'], 'k8s');
  assert.equal(merged['type'], 'bridge');
  assert.deepEqual(
    (merged['plugins'] as JsonObject[]).map((p) => p['type']),
    ['calico', 'istio-cni'],
  );
});
