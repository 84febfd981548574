// Repair on a real node (upstream's TestCNIRaceRepair, behaviour §3): a meshed pod's sandbox is created while no
// istio-cni is installed, so containerd runs the primary chain alone and the pod has no rules; its istio-validation
// init container then crash-loops (exit 126). The agent, started afterwards with the repair controller, finds the
// sandbox's network namespace by the pod IP in /proc, programs the rules there, and connections are redirected.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestNode } from '../support/lab/node.ts';
import { NODE_NAME, meshedPod, startNode } from '../support/lab/node.ts';
import { until } from '../support/repair-harness.ts';

describe('repair of a pod that started before the agent', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ startAgent: false });
    await node.waitForChain(false);
    await node.startNodeServer(8080);
  });
  after(async () => {
    await node?.close();
  });

  test('its rules are programmed in place, the event says so, and its connections are redirected', async () => {
    const manifest = meshedPod('default', 'raced');
    const pod = await node.createPod(manifest);
    assert.doesNotMatch(await node.natRules(pod), /ISTIO_REDIRECT/, 'no rules: istio-cni was not installed');
    // What the kubelet reports for it: the validation init container fails for want of the rules.
    node.api.upsertPod({
      ...manifest,
      spec: {
        ...manifest.spec,
        nodeName: NODE_NAME,
        initContainers: [{ name: 'istio-validation', image: 'proxyv2:1' }],
      },
      status: {
        phase: 'Pending',
        podIP: pod.ip,
        podIPs: [{ ip: pod.ip }],
        initContainerStatuses: [
          {
            name: 'istio-validation',
            state: { waiting: { reason: 'CrashLoopBackOff' } },
            lastState: { terminated: { exitCode: 126, reason: 'Error' } },
          },
        ],
      },
    });

    const agent = await node.startAgent({
      env: { REPAIR_ENABLED: 'true', REPAIR_REPAIR_PODS: 'true', HOST_PROC_DIR: '/proc' },
    });
    await agent.waitForOutput('programmed redirect rules in pod netns');
    const rules = await node.natRules(pod);
    assert.match(rules, /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    assert.match(rules, /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
    // The event is written in the background after the repair: wait for the API server to have it.
    const repairEvent = () => node.api.events.find((item) => item['reason'] === 'RepairBrokenPod');
    await until(node.api, () => repairEvent() !== undefined, 10_000, 'the RepairBrokenPod event');
    const event = repairEvent();
    assert.equal((event?.['involvedObject'] as Record<string, unknown> | undefined)?.['name'], 'raced');

    await node.startProbe(pod);
    const outbound = await node.connectFromPod(pod, node.lab.gateway, 8080);
    assert.equal(outbound.stdout.trim(), `15001 ${node.lab.gateway} 8080`, outbound.stderr);
    const inbound = await node.connectFromNode(pod.ip, 9080);
    assert.equal(inbound.stdout.trim(), `15006 ${pod.ip} 9080`, inbound.stderr);
  });
});
