// hostUsers: false pods (§2.8 step 6): the plugin asks which user namespace owns CNI_NETNS only for a pod whose
// rules it programs or checks, and hands a foreign owner to the rule engine as `userns` (→ nsenter --user).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dispatch } from '../../../src/cni/dispatch.ts';
import { createHandlers } from '../../../src/plugin/handlers.ts';
import { netnsUserns } from '../../../src/sys/netns-owner.ts';
import { cniEnv, fakeProcessIO } from '../../support/fake-process-io.ts';
import { ScriptedPodSource, fakePluginDeps } from '../../support/fake-plugin-deps.ts';
import type { FakePluginDeps } from '../../support/fake-plugin-deps.ts';

const NETNS = '/var/run/netns/ia-test';
const USERNS = '/proc/4242/fd/7';

function netconf(): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'istio-cni',
    cni_agent_run_dir: '/var/run/istio-cni',
    exclude_namespaces: ['kube-system'],
    pod_namespace: 'istio-system',
    plugin_log_level: 'debug',
    prevResult: { cniVersion: '1.0.0', interfaces: [], ips: [] },
  });
}

function pod(annotations: Record<string, string> = { 'sidecar.istio.io/status': '{}' }) {
  return {
    metadata: { name: 'app-1', namespace: 'default', annotations },
    spec: {
      hostUsers: false,
      containers: [{ name: 'app' }, { name: 'istio-proxy', securityContext: { runAsUser: 1337 } }],
    },
  };
}

async function run(deps: FakePluginDeps, command: 'ADD' | 'CHECK', extra: Record<string, string> = {}) {
  return dispatch(fakeProcessIO(cniEnv(command, extra), netconf()), createHandlers(deps), 'about');
}

test('a netns owned by another user namespace: ADD and CHECK target it through that namespace', async () => {
  const deps = fakePluginDeps({
    source: new ScriptedPodSource([pod()]),
    userns: { kind: 'other', path: USERNS },
  });
  assert.equal(await run(deps, 'ADD'), 0);
  assert.equal(await run(deps, 'CHECK'), 0);
  const expected = { netns: NETNS, backend: 'iptables', userns: USERNS };
  assert.deepEqual(deps.applied[0]?.target, expected);
  assert.deepEqual(deps.checked[0]?.target, expected);
  assert.deepEqual(deps.usernsQueries, [NETNS, NETNS]);
  assert.ok(deps.logLines.some((line) => line.includes(`through ${USERNS}`)));
});

test('own or undetectable owner: no userns, as before', async () => {
  for (const userns of [{ kind: 'same' }, { kind: 'unknown', reason: 'no ioctl' }] as const) {
    const deps = fakePluginDeps({ source: new ScriptedPodSource([pod()]), userns });
    assert.equal(await run(deps, 'ADD'), 0);
    assert.deepEqual(deps.applied[0]?.target, { netns: NETNS, backend: 'iptables' });
  }
});

test('pods that are not programmed never pay for the detection', async () => {
  const unmeshed = fakePluginDeps({ source: new ScriptedPodSource([pod({})]) });
  assert.equal(await run(unmeshed, 'ADD'), 0);
  const excluded = fakePluginDeps({ source: new Error('must not be used') });
  assert.equal(await run(excluded, 'ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=x' }), 0);
  assert.deepEqual([...unmeshed.usernsQueries, ...excluded.usernsQueries], []);
  assert.deepEqual([...unmeshed.applied, ...excluded.applied], []);
});

test('under Node the owner is unknown (no ioctl): the plugin keeps the host behaviour', async () => {
  const answer = await netnsUserns('/proc/self/ns/net');
  assert.equal(answer.kind, 'unknown');
});
