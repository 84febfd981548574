// Node boot order (field lesson istio#14327): the agent starts before the primary CNI has written its conflist. It
// must not report ready or write a config of its own (chained mode), and must merge as soon as the primary's file
// appears — after which pods get their rules.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { TestNode } from '../support/lab/node.ts';
import { conflistPluginTypes, meshedPod, startNode } from '../support/lab/node.ts';

describe('agent started before the primary CNI', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ primaryConflist: false, startAgent: false });
  });
  after(async () => {
    await node?.close();
  });

  test('waits without a config, merges when the primary conflist appears, then pods are meshed', async () => {
    const agent = await node.startAgent({ waitReady: false });
    // The agent has looked and found nothing to merge into: not ready, nothing written.
    await agent.waitForOutput('waiting for the primary CNI');
    assert.equal((await fetch(`http://127.0.0.1:${agent.readinessPort}/healthz`)).status, 200);
    assert.equal(await agent.ready(), false);
    assert.deepEqual(readdirSync(node.lab.confDir), []);

    node.lab.writePrimaryConflist();
    await agent.waitReady();
    assert.equal(conflistPluginTypes(node.lab).at(-1), 'istio-cni');
    await node.waitForChain(true);
    const pod = await node.createPod(meshedPod('default', 'after-boot'));
    assert.match(await node.natRules(pod), /ISTIO_REDIRECT/);
  });
});
