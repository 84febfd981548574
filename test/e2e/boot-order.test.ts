// Node boot order (field lesson istio#14327): the agent starts before the primary CNI has written its conflist. It
// must not report ready or write a config of its own (chained mode), and must merge as soon as the primary's file
// appears — after which pods get their rules.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { TestNode } from '../support/lab/node.ts';
import { conflistPluginTypes, meshedPod, startNode, waitFor } from '../support/lab/node.ts';

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
    // the health endpoint answers once the agent runs; readiness stays false while there is nothing to merge into
    await waitFor('the agent health endpoint', async () => {
      if (agent.process.exitCode !== null) throw new Error(`agent exited: ${agent.logs().slice(-1000)}`);
      return (
        (await fetch(`http://127.0.0.1:${agent.readinessPort}/healthz`).catch(() => undefined))?.status ===
        200
      );
    });
    assert.equal(await agent.ready(), false);
    assert.deepEqual(readdirSync(node.lab.confDir), []);

    node.lab.writePrimaryConflist();
    await waitFor(
      'istio-cni merged into the primary conflist',
      () => conflistPluginTypes(node.lab).at(-1) === 'istio-cni',
    );
    await agent.waitReady();
    await node.waitForChain(true);
    const pod = await node.createPod(meshedPod('default', 'after-boot'));
    assert.match(await node.natRules(pod), /ISTIO_REDIRECT/);
  });
});
