// The agent's life on a real node while pods are being created: the primary CNI rewriting its conflist, an agent
// restart (a crash: no cleanup), and SIGTERM uninstall — after which the node must still start pods.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LabPod } from '../support/lab/lab.ts';
import type { TestNode } from '../support/lab/node.ts';
import { conflistPluginTypes, loadedChain, meshedPod, plainPod, startNode } from '../support/lab/node.ts';
import { untilChangedIn } from '../support/until-changed.ts';

describe('agent lifecycle on a containerd node', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
    await node.waitForChain(true);
  });
  after(async () => {
    await node?.close();
  });

  const meshed = async (pod: LabPod): Promise<boolean> => /ISTIO_REDIRECT/.test(await node.natRules(pod));

  test('the primary CNI rewriting its conflist while pods are created: the entry comes back, no sandbox fails', async (t) => {
    const creations: Array<Promise<LabPod>> = [];
    for (let i = 0; i < 4; i++) creations.push(node.createPod(meshedPod('default', `rewrite-${i}`)));
    // the primary CNI's own agent restarts and writes its file without our entry (field lesson antrea#3974)
    node.lab.writePrimaryConflist({ snat: true });
    for (let i = 4; i < 8; i++) creations.push(node.createPod(meshedPod('default', `rewrite-${i}`)));
    const pods = await Promise.all(creations);
    assert.equal(pods.length, 8);

    await untilChangedIn(
      node.lab.confDir,
      'istio-cni back in the conflist',
      () => conflistPluginTypes(node.lab).at(-1) === 'istio-cni',
    );
    assert.deepEqual(conflistPluginTypes(node.lab), ['bridge', 'portmap', 'istio-cni']);
    await node.waitForChain(true);
    const later = await node.createPod(meshedPod('default', 'rewrite-after'));
    assert.ok(await meshed(later), 'a pod created after the re-merge is meshed');
    // pods created inside the window may have run the primary's chain alone (upstream has the same window; the
    // repair controller / istio-validation catch them) — report how many did
    const unmeshed = (await Promise.all(pods.map(meshed))).filter((m) => !m).length;
    t.diagnostic(`pods created during the rewrite window without rules: ${unmeshed}/8`);
  });

  test('agent restart (killed, then started again) during pod creation loses nothing', async () => {
    const first = node.agent!;
    const creations: Array<Promise<LabPod>> = [];
    for (let i = 0; i < 3; i++) creations.push(node.createPod(meshedPod('default', `restart-${i}`)));
    await first.stop('SIGKILL');
    for (let i = 3; i < 6; i++) creations.push(node.createPod(meshedPod('default', `restart-${i}`)));
    const starting = node.startAgent({ name: 'istio-cni-node-lab02' });
    for (let i = 6; i < 9; i++) creations.push(node.createPod(meshedPod('default', `restart-${i}`)));
    await starting;
    const pods = await Promise.all(creations);
    const results = await Promise.all(pods.map(meshed));
    assert.deepEqual(
      results.map((ok, i) => `${pods[i]!.name}:${ok}`),
      pods.map((p) => `${p.name}:true`),
    );
    assert.deepEqual(conflistPluginTypes(node.lab), ['bridge', 'portmap', 'istio-cni']);
  });

  test('SIGTERM uninstalls cleanly and leaves a node on which pods still start', async () => {
    const agent = node.agent!;
    const code = await agent.stop('SIGTERM');
    assert.equal(code, 0, agent.logs().slice(-2000));
    assert.deepEqual(conflistPluginTypes(node.lab), ['bridge', 'portmap']);
    assert.equal(existsSync(path.join(node.lab.binDir, 'istio-cni')), false);
    assert.equal(existsSync(path.join(agent.runDir, 'istio-cni-kubeconfig')), false);
    await node.waitForChain(false);
    assert.deepEqual(await loadedChain(node.lab), ['bridge', 'portmap']);
    const [meshedAfter, plainAfter] = await Promise.all([
      node.createPod(meshedPod('default', 'after-uninstall')),
      node.createPod(plainPod('default', 'plain-after-uninstall')),
    ]);
    assert.ok(meshedAfter.ip && plainAfter.ip);
    assert.equal(await meshed(meshedAfter), false);
  });
});
