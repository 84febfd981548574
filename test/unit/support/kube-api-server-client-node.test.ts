/* eslint-disable @typescript-eslint/no-explicit-any -- JSON replies are inspected loosely */
// The API test server with @kubernetes/client-node (the agent's and repair controller's client): typed reads, a 404
// as the client sees it, and a ListWatch informer with a spec.nodeName field selector. Its own file because
// importing client-node alone takes seconds on a loaded machine.
import * as k8s from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { KubeApiServer } from '../../support/kube-api-server.ts';
import { startKubeApiServer } from '../../support/kube-api-server.ts';

function pod(namespace: string, name: string, nodeName: string) {
  return { metadata: { namespace, name }, spec: { nodeName, containers: [{ name: 'app' }] } };
}

describe('kube API test server with @kubernetes/client-node', () => {
  let server: KubeApiServer;
  before(async () => {
    server = await startKubeApiServer();
  });
  after(async () => {
    await server.close();
  });

  test('works with @kubernetes/client-node (read, informer with field selector)', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: server.url, caData: Buffer.from(server.caPem).toString('base64') }],
      users: [{ name: 'u', token: server.token }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const api = kc.makeApiClient(k8s.CoreV1Api);
    server.upsertPod(pod('inf', 'existing', 'node-z'));
    const read = await api.readNamespacedPod({ name: 'existing', namespace: 'inf' });
    assert.equal(read.metadata?.name, 'existing');
    await assert.rejects(
      api.readNamespacedPod({ name: 'missing', namespace: 'inf' }),
      (e: any) => e.code === 404,
    );

    const informer = new k8s.ListWatch(
      '/api/v1/pods',
      new k8s.Watch(kc),
      () => api.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=node-z' }),
      false,
      undefined,
      'spec.nodeName=node-z',
    );
    const seen: string[] = [];
    const gotNew = new Promise<void>((resolve) => {
      informer.on('add', (p) => {
        seen.push(p.metadata?.name ?? '');
        if (p.metadata?.name === 'new') resolve();
      });
    });
    await informer.start();
    server.upsertPod(pod('inf', 'elsewhere', 'node-y'));
    server.upsertPod(pod('inf', 'new', 'node-z'));
    await gotNew;
    await informer.stop();
    assert.deepEqual(seen, ['existing', 'new']);
  });
});
