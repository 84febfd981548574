// The chained install's pure decisions (§1.5.4–§1.5.5): is our entry current, may the merge touch a file, what a
// single-network file is converted to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainedStaleness, convertedName, mergeTargetProblem } from '../../../src/installer/chained-state.ts';
import type { JsonObject } from '../../../src/installer/go-json.ts';

const entry: JsonObject = { cniVersion: '0.3.1', type: 'istio-cni', log_level: 'info', kubeconfig: '/k' };
const ours = { type: 'istio-cni', log_level: 'info', kubeconfig: '/k' };
const list = (...plugins: unknown[]): JsonObject =>
  ({ cniVersion: '1.0.0', name: 'k8s', plugins }) as JsonObject;

test('our entry is current only when it is the one istio-cni entry, last, and equal to ours (key order aside)', () => {
  const cases: [string, JsonObject, string | undefined][] = [
    ['current', list({ type: 'calico' }, ours), undefined],
    [
      'key order does not matter',
      list({ type: 'calico' }, { kubeconfig: '/k', log_level: 'info', type: 'istio-cni' }),
      undefined,
    ],
    ['missing', list({ type: 'calico' }), 'istio-cni plugin entry missing'],
    ['twice', list(ours, { type: 'calico' }, ours), 'more than one istio-cni entry'],
    ['not last', list(ours, { type: 'bandwidth' }), 'istio-cni entry is not the last plugin'],
    [
      'another setting',
      list({ type: 'calico' }, { ...ours, log_level: 'debug' }),
      'istio-cni entry is stale',
    ],
    ['an extra field', list({ type: 'calico' }, { ...ours, extra: [1] }), 'istio-cni entry is stale'],
    [
      'a field missing',
      list({ type: 'calico' }, { type: 'istio-cni', log_level: 'info' }),
      'istio-cni entry is stale',
    ],
    ['no plugins array', { name: 'k8s', type: 'bridge' }, 'no "plugins" array'],
  ];
  for (const [name, doc, want] of cases) assert.equal(chainedStaleness(doc, entry), want, name);
});

test('a merge target must load in libcni (unnamed) or have what the merge needs (CNI_CONF_NAME), and a plugin besides ours', () => {
  const text = (doc: JsonObject) => JSON.stringify(doc);
  const calico = list({ type: 'calico' });
  const cases: [string, string, JsonObject, boolean, string | undefined][] = [
    ['a list', '10-a.conflist', calico, false, undefined],
    ['a single network', '10-a.conf', { cniVersion: '0.3.1', name: 'b', type: 'bridge' }, false, undefined],
    ['only our entry', '10-a.conflist', list(ours), false, 'it has no plugin besides istio-cni'],
    ['only our entry, named', 'named', list(ours), true, 'it has no plugin besides istio-cni'],
    ['named list without plugins', 'named', list(), true, 'conflist has no plugins'],
    ['named list with a typeless plugin', 'named', list({ name: 'x' }), true, 'a plugin has no "type"'],
    ['named single network without a type', 'named.conf', { name: 'b', type: '' }, true, 'it has no "type"'],
    [
      'named list without "name" (no libcni check)',
      'named',
      { plugins: [{ type: 'calico' }] },
      true,
      undefined,
    ],
  ];
  for (const [name, file, doc, named, want] of cases) {
    assert.equal(mergeTargetProblem(file, doc, text(doc), named), want, name);
  }
  // Unnamed files get libcni's own check: a list without a name does not load.
  assert.notEqual(
    mergeTargetProblem(
      '10-a.conflist',
      { plugins: [{ type: 'calico' }] },
      '{"plugins":[{"type":"calico"}]}',
      false,
    ),
    undefined,
  );
});

test('conversion names: .conf and .json become .conflist; anything else stays', () => {
  assert.equal(convertedName('/n/10-bridge.conf'), '/n/10-bridge.conflist');
  assert.equal(convertedName('/n/10-bridge.json'), '/n/10-bridge.conflist');
  assert.equal(convertedName('/n/10-bridge.conflist'), undefined);
  assert.equal(convertedName('/n/named'), undefined);
  assert.equal(convertedName('/n/named-conf'), undefined);
  assert.equal(convertedName('/n/named-json'), undefined);
});

test('our entry is stale when a list or null setting in it differs from ours (e.g. exclude_namespaces)', () => {
  const desired: JsonObject = { ...entry, exclude_namespaces: ['kube-system', 'istio-system'] };
  const withNamespaces = (namespaces: JsonObject[string]) =>
    list({ type: 'calico' }, { ...ours, exclude_namespaces: namespaces });
  assert.equal(chainedStaleness(withNamespaces(['kube-system', 'istio-system']), desired), undefined);
  for (const namespaces of [['kube-system'], null, ['kube-system', 'istio-system', 'extra'], []]) {
    assert.equal(
      chainedStaleness(withNamespaces(namespaces), desired),
      'istio-cni entry is stale',
      JSON.stringify(namespaces),
    );
  }
  const unset: JsonObject = { ...entry, exclude_namespaces: null };
  assert.equal(chainedStaleness(withNamespaces(null), unset), undefined);
  assert.equal(chainedStaleness(withNamespaces(['kube-system']), unset), 'istio-cni entry is stale');
});

test('a .conflist with a stray top-level "type" is still a list: it needs a plugin besides ours, named or not', () => {
  const doc: JsonObject = { cniVersion: '1.0.0', name: 'k8s', type: 'bridge', plugins: [ours] };
  for (const named of [false, true]) {
    assert.equal(
      mergeTargetProblem('10-a.conflist', doc, JSON.stringify(doc), named),
      'it has no plugin besides istio-cni',
      `named: ${named}`,
    );
  }
});
