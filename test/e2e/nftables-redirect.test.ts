// The same node with the agent's NATIVE_NFTABLES=true: the plugin entry carries native_nftables and meshed pods get
// an nftables ruleset (no iptables rules) that redirects real connections exactly like the iptables one.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestNode } from '../support/lab/node.ts';
import { meshedPod, plainPod, startNode } from '../support/lab/node.ts';

describe('sidecar pods with the native nftables backend', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ agent: { env: { NATIVE_NFTABLES: 'true' } } });
    await node.waitForChain(true);
    await node.startNodeServer(8080);
  });
  after(async () => {
    await node?.close();
  });

  test('the plugin entry enables native_nftables', () => {
    const conflist = JSON.parse(readFileSync(path.join(node.lab.confDir, node.lab.conflistName), 'utf8'));
    const entry = conflist.plugins.find((p: { type: string }) => p.type === 'istio-cni');
    assert.equal(entry.native_nftables, true);
  });

  test('a meshed pod gets the nftables ruleset and real redirects; a plain pod gets nothing', async () => {
    const [meshed, plain] = await Promise.all([
      node.createPod(meshedPod('default', 'nft-meshed')),
      node.createPod(plainPod('default', 'nft-plain')),
    ]);
    const ruleset = (await node.lab.podExec(meshed, ['nft', 'list', 'ruleset'])).stdout;
    assert.match(ruleset, /table inet istio-proxy-nat/);
    assert.match(ruleset, /redirect to :15001/);
    assert.match(ruleset, /redirect to :15006/);
    assert.doesNotMatch(await node.natRules(meshed), /ISTIO_/, 'no iptables rules next to the nftables ones');
    assert.equal((await node.lab.podExec(plain, ['nft', 'list', 'ruleset'])).stdout.trim(), '');

    await node.startProbe(meshed);
    const outbound = await node.connectFromPod(meshed, node.lab.gateway, 8080);
    assert.equal(outbound.stdout.trim(), `15001 ${node.lab.gateway} 8080`, outbound.stderr);
    const asProxy = await node.connectFromPod(meshed, node.lab.gateway, 8080, 1337);
    assert.equal(asProxy.stdout.trim(), `8080 ${node.lab.gateway} 8080`, asProxy.stderr);
    const inbound = await node.connectFromNode(meshed.ip, 9080);
    assert.equal(inbound.stdout.trim(), `15006 ${meshed.ip} 9080`, inbound.stderr);
  });
});
