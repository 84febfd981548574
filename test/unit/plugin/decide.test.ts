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
