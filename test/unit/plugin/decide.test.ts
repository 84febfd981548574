// The ADD decision flow's pure steps (behaviour §2.5) as tables: which pods are the agent itself, which invocations
// are not Kubernetes pods, and which looked-up pods are skipped. handlers.test.ts runs them through the handler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideBeforeLookup, decideForPod, isCniPod } from '../../../src/plugin/decide.ts';
import { parsePluginConfig } from '../../../src/plugin/config.ts';
import type { PodInfo } from '../../../src/plugin/redirect.ts';

const config = parsePluginConfig(
  {
    name: 'k8s-pod-network',
    type: 'istio-cni',
    pod_namespace: 'istio-system',
    exclude_namespaces: ['kube-system'],
  },
  '1.0.0',
);
const args = (namespace: string, name: string) => ({
  K8S_POD_NAMESPACE: namespace,
  K8S_POD_NAME: name,
  K8S_POD_INFRA_CONTAINER_ID: '',
  K8S_POD_UID: '',
});

test('the agent itself: the istio-cni-node- name prefix AND pod_namespace, both required (§5.3 TestIsCNIPod)', () => {
  const cases: [string, string, boolean][] = [
    ['istio-system', 'istio-cni-node-x7k2p', true],
    ['istio-system', 'istio-cni-node-', true],
    // An injected workload in the agent's namespace is no agent: skipping it would leave it unmeshed.
    ['istio-system', 'istiod-5d9c7b', false],
    ['istio-system', 'istio-cni-node', false],
    ['istio-system', 'my-istio-cni-node-x', false],
    ['istio-system', 'Istio-cni-node-x', false],
    ['default', 'istio-cni-node-x7k2p', false],
    ['', 'istio-cni-node-x7k2p', false],
  ];
  for (const [namespace, name, expected] of cases) {
    assert.equal(isCniPod(args(namespace, name), config), expected, `${namespace}/${name}`);
  }
});

test('before the lookup: the agent, a non-Kubernetes invocation (either name part empty), an excluded namespace', () => {
  const cases: [string, string, string | undefined][] = [
    ['istio-system', 'istio-cni-node-x', 'the pod is the Istio CNI agent itself'],
    ['', '', 'not a kubernetes pod'],
    ['default', '', 'not a kubernetes pod'],
    ['', 'web-1', 'not a kubernetes pod'],
    ['kube-system', 'coredns-1', 'excluded namespace kube-system'],
    ['istio-system', 'istiod-1', undefined],
    ['default', 'web-1', undefined],
  ];
  for (const [namespace, name, reason] of cases) {
    assert.deepEqual(
      decideBeforeLookup(args(namespace, name), config),
      reason === undefined ? { action: 'lookup' } : { action: 'skip', reason },
      `${namespace}/${name}`,
    );
  }
});

const meshed: PodInfo = {
  name: 'web-1',
  namespace: 'default',
  containers: ['app', 'istio-proxy'],
  labels: {},
  annotations: { 'sidecar.istio.io/status': '{}' },
  proxyType: 'sidecar',
  proxyEnvironments: {},
  proxyUid: undefined,
  proxyGid: undefined,
  hostNetwork: false,
};

test('after the lookup: every proxy type but sidecar (or none given) is skipped, not only router', () => {
  for (const proxyType of ['router', 'waypoint', 'ztunnel', 'gateway', 'Sidecar']) {
    assert.deepEqual(decideForPod({ ...meshed, proxyType }), {
      action: 'skip',
      reason: `excluded since proxy type is ${proxyType}, not sidecar`,
    });
  }
  for (const proxyType of ['', 'sidecar']) {
    assert.deepEqual(decideForPod({ ...meshed, proxyType }), { action: 'redirect' }, proxyType);
  }
});

test('before the lookup: exclude_namespaces is an exact match; the agent test comes first, even where the namespace is empty', () => {
  for (const namespace of ['kube-system-2', 'kube', 'Kube-system']) {
    assert.deepEqual(decideBeforeLookup(args(namespace, 'web-1'), config), { action: 'lookup' }, namespace);
  }
  // pod_namespace unset matches an empty K8S_POD_NAMESPACE: upstream's step 3 runs before step 6.
  const unset = parsePluginConfig({ name: 'k8s-pod-network' }, '1.0.0');
  assert.deepEqual(decideBeforeLookup(args('', 'istio-cni-node-x'), unset), {
    action: 'skip',
    reason: 'the pod is the Istio CNI agent itself',
  });
});

test('after the lookup: istio-init anywhere among the containers skips the pod', () => {
  assert.deepEqual(decideForPod({ ...meshed, containers: ['setup', 'istio-init', 'app', 'istio-proxy'] }), {
    action: 'skip',
    reason: 'excluded due to being an istio-init pod (it programs itself)',
  });
});

test("after the lookup: DISABLE_ENVOY and the inject opt-out read Go's strconv.ParseBool; unparseable values are ignored", () => {
  const disabled = { action: 'skip', reason: 'excluded due to DISABLE_ENVOY on istio-proxy (proxyless)' };
  for (const value of ['1', 't', 'T', 'TRUE', 'true', 'True']) {
    assert.deepEqual(
      decideForPod({ ...meshed, proxyEnvironments: { DISABLE_ENVOY: value } }),
      disabled,
      value,
    );
  }
  for (const value of ['', 'yes', 'on', 'false', '0', 'tRUE']) {
    assert.deepEqual(
      decideForPod({ ...meshed, proxyEnvironments: { DISABLE_ENVOY: value } }),
      { action: 'redirect' },
      value,
    );
  }
  for (const value of ['0', 'f', 'F', 'FALSE', 'false', 'False']) {
    assert.deepEqual(
      decideForPod({ ...meshed, annotations: { ...meshed.annotations, 'sidecar.istio.io/inject': value } }),
      { action: 'skip', reason: `excluded due to inject-disabled (sidecar.istio.io/inject=${value})` },
      value,
    );
  }
  for (const value of ['no', 'off', 'fALSE', '']) {
    assert.deepEqual(
      decideForPod({ ...meshed, annotations: { ...meshed.annotations, 'sidecar.istio.io/inject': value } }),
      { action: 'redirect' },
      value,
    );
  }
});

test('after the lookup: the sidecar.istio.io/status annotation counts when present, even empty', () => {
  assert.deepEqual(decideForPod({ ...meshed, annotations: { 'sidecar.istio.io/status': '' } }), {
    action: 'redirect',
  });
  assert.deepEqual(decideForPod({ ...meshed, annotations: {} }), {
    action: 'skip',
    reason: 'excluded due to not containing sidecar annotation (sidecar.istio.io/status)',
  });
});

test('after the lookup: an inject label present overrides the annotation even when empty (then nothing opts out)', () => {
  const pod = {
    ...meshed,
    annotations: { ...meshed.annotations, 'sidecar.istio.io/inject': 'false' },
    labels: { 'sidecar.istio.io/inject': '' },
  };
  assert.deepEqual(decideForPod(pod), { action: 'redirect' });
});
