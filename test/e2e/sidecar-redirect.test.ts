// End to end on a real node: containerd runs the node's bridge chain, our agent (dist/install-cni) merges the
// istio-cni plugin into it, and sandboxes created over CRI get (or don't get) istio-iptables rules that really
// redirect connections: outbound → 15001 keeping the original destination, uid 1337 exempt, inbound → 15006.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestNode } from '../support/lab/node.ts';
import { conflistPluginTypes, meshedPod, plainPod, startNode } from '../support/lab/node.ts';
import { untilChangedIn } from '../support/until-changed.ts';

describe('sidecar pods on a containerd node with the agent installed', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
    await node.waitForChain(true);
    await node.startNodeServer(8080);
  });
  after(async () => {
    await node?.close();
  });

  test('the agent merges istio-cni last into the primary conflist and writes the plugin kubeconfig', () => {
    assert.deepEqual(conflistPluginTypes(node.lab), ['bridge', 'portmap', 'istio-cni']);
    assert.ok(existsSync(path.join(node.lab.binDir, 'istio-cni')));
    const kubeconfig = readFileSync(path.join(node.agent!.runDir, 'istio-cni-kubeconfig'), 'utf8');
    assert.ok(kubeconfig.includes(`server: ${node.api.url}\n`), kubeconfig);
    assert.ok(kubeconfig.includes(node.api.token));
  });

  test('a meshed pod gets rules and its connections are really redirected', async () => {
    const pod = await node.createPod(meshedPod('default', 'meshed'));
    const rules = await node.natRules(pod);
    assert.match(rules, /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    assert.match(rules, /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
    await node.startProbe(pod);

    const outbound = await node.connectFromPod(pod, node.lab.gateway, 8080);
    assert.equal(outbound.stdout.trim(), `15001 ${node.lab.gateway} 8080`, outbound.stderr);
    const asProxy = await node.connectFromPod(pod, node.lab.gateway, 8080, 1337);
    assert.equal(asProxy.stdout.trim(), `8080 ${node.lab.gateway} 8080`, asProxy.stderr);
    const inbound = await node.connectFromNode(pod.ip, 9080);
    assert.equal(inbound.stdout.trim(), `15006 ${pod.ip} 9080`, inbound.stderr);
  });

  test('pods without a sidecar, in excluded namespaces or opted out are left alone', async () => {
    node.api.upsertNamespace('skipped');
    const pods = await Promise.all([
      node.createPod(plainPod('default', 'plain')),
      node.createPod(meshedPod('kube-system', 'excluded')),
      node.createPod(
        meshedPod('default', 'opt-out-annotation', { annotations: { 'sidecar.istio.io/inject': 'false' } }),
      ),
      node.createPod(
        meshedPod('default', 'opt-out-label', {
          annotations: { 'sidecar.istio.io/inject': 'true' },
          labels: { 'sidecar.istio.io/inject': 'false' },
        }),
      ),
      node.createPod({
        ...meshedPod('default', 'not-injected'),
        metadata: { ...meshedPod('default', 'not-injected').metadata, annotations: {} },
      }),
    ]);
    for (const pod of pods) {
      assert.doesNotMatch(
        await node.natRules(pod),
        /ISTIO_/,
        `${pod.namespace}/${pod.name} must have no rules`,
      );
    }
    const plain = pods[0];
    await node.startProbe(plain);
    const direct = await node.connectFromPod(plain, node.lab.gateway, 8080);
    assert.equal(direct.stdout.trim(), `8080 ${node.lab.gateway} 8080`);
  });

  test('annotation variants are honoured', async () => {
    const [excludedPort, noInbound, outboundRanges] = await Promise.all([
      node.createPod(
        meshedPod('default', 'exclude-outbound-8080', {
          annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': '8080' },
        }),
      ),
      node.createPod(
        meshedPod('default', 'no-inbound', {
          annotations: { 'traffic.sidecar.istio.io/includeInboundPorts': '' },
        }),
      ),
      node.createPod(
        meshedPod('default', 'outbound-ranges', {
          annotations: { 'traffic.sidecar.istio.io/includeOutboundIPRanges': '192.0.2.0/24' },
        }),
      ),
    ]);
    for (const pod of [excludedPort, noInbound, outboundRanges]) await node.startProbe(pod);

    // excluded outbound port: reaches the real destination
    const excluded = await node.connectFromPod(excludedPort, node.lab.gateway, 8080);
    assert.equal(excluded.stdout.trim(), `8080 ${node.lab.gateway} 8080`);
    // ...while other ports still go to the sidecar
    const other = await node.connectFromPod(excludedPort, node.lab.gateway, 8081);
    assert.equal(other.stdout.trim(), `15001 ${node.lab.gateway} 8081`);

    // no inbound capture: a connection to 9080 is not redirected (nothing listens there)
    const inbound = await node.connectFromNode(noInbound.ip, 9080);
    assert.notEqual(inbound.exitCode, 0, inbound.stdout);
    const outbound = await node.connectFromPod(noInbound, node.lab.gateway, 8080);
    assert.equal(outbound.stdout.trim(), `15001 ${node.lab.gateway} 8080`);

    // outbound capture limited to 192.0.2.0/24: the gateway is reached directly
    const ranges = await node.connectFromPod(outboundRanges, node.lab.gateway, 8080);
    assert.equal(ranges.stdout.trim(), `8080 ${node.lab.gateway} 8080`);
    assert.match(
      await node.natRules(outboundRanges),
      /-A ISTIO_OUTPUT -d 192\.0\.2\.0\/24 -j ISTIO_REDIRECT/,
    );
  });

  test('an invalid annotation fails the sandbox (upstream: interceptionMode NONE is rejected)', async () => {
    await assert.rejects(
      node.createPod(
        meshedPod('default', 'bad-mode', { annotations: { 'sidecar.istio.io/interceptionMode': 'NONE' } }),
      ),
      /annotation value error|interceptionMode/,
    );
  });

  test('a pod the API does not know fails its sandbox (fail closed), then starts once it exists', async () => {
    const manifest = meshedPod('default', 'late');
    await assert.rejects(node.createPod(manifest, { register: false }));
    node.api.upsertPod(manifest);
    const pod = await node.createPod(manifest, { attempt: 1, register: false });
    assert.match(await node.natRules(pod), /ISTIO_REDIRECT/);
  });

  test('transient API faults during the pod lookup (500, dropped connection, latency) are retried', async () => {
    const manifest = meshedPod('default', 'flaky-api');
    const lookupPath = '/api/v1/namespaces/default/pods/flaky-api';
    node.api.injectFault({ status: 500, times: 1, match: (r) => r.path === lookupPath });
    node.api.injectFault({ drop: true, times: 1, match: (r) => r.path === lookupPath });
    node.api.injectFault({ latencyMs: 300, times: 1, match: (r) => r.path === lookupPath });
    const pod = await node.createPod(manifest);
    assert.match(await node.natRules(pod), /ISTIO_REDIRECT/);
    const statuses = node.api.requests.filter((r) => r.path === lookupPath).map((r) => r.status);
    assert.deepEqual(statuses, [500, -1, 200]);
  });

  test('token rotation mid-run: the kubeconfig follows the new token and pods keep starting', async () => {
    const kubeconfigPath = path.join(node.agent!.runDir, 'istio-cni-kubeconfig');
    const token = node.rotateToken();
    await untilChangedIn(node.agent!.runDir, 'the kubeconfig to carry the rotated token', () =>
      readFileSync(kubeconfigPath, 'utf8').includes(token),
    );
    const pod = await node.createPod(meshedPod('default', 'after-rotation'));
    assert.match(await node.natRules(pod), /ISTIO_REDIRECT/);
    const lookups = node.api.requests.filter(
      (r) => r.path === '/api/v1/namespaces/default/pods/after-rotation',
    );
    assert.ok(lookups.some((r) => r.status === 200));
  });
});
