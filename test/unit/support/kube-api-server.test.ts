/* eslint-disable @typescript-eslint/no-explicit-any -- JSON replies are inspected loosely */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { after, before, describe, test } from 'node:test';
import type { KubeApiServer } from '../../support/kube-api-server.ts';
import { mergePatch, parseLabelSelector, startKubeApiServer } from '../../support/kube-api-server.ts';
import { authorizerFor, requestAttributes } from '../../support/rbac.ts';

type Reply = { status: number; body: any; headers: Record<string, unknown> };

function call(
  server: KubeApiServer,
  method: string,
  path: string,
  options: { body?: unknown; contentType?: string; token?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      `${server.url}${path}`,
      {
        method,
        ca: server.caPem,
        headers: {
          Authorization: `Bearer ${options.token ?? server.token}`,
          ...(payload !== undefined
            ? {
                'Content-Type': options.contentType ?? 'application/json',
                'Content-Length': Buffer.byteLength(payload),
              }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: text ? JSON.parse(text) : undefined,
            headers: res.headers,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function pod(namespace: string, name: string, nodeName = 'node-a', labels: Record<string, string> = {}) {
  return { metadata: { namespace, name, labels }, spec: { nodeName, containers: [{ name: 'app' }] } };
}

/** Streams one watch (`query` after `?watch=true&`) until the server ends it, calling `onBookmark` once when the
 * first BOOKMARK has arrived; resolves with every frame. Frames arrive in pieces (the server cuts each one). */
function collectWatch(server: KubeApiServer, pathAndQuery: string, onBookmark: () => void): Promise<any[]> {
  const lines: any[] = [];
  let bookmarked = false;
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}${pathAndQuery}`,
      { ca: server.caPem, headers: { Authorization: `Bearer ${server.token}` } },
      (res) => {
        const decoder = new StringDecoder('utf8');
        let buffer = '';
        res.on('data', (c: Buffer) => {
          buffer += decoder.write(c);
          let index: number;
          while ((index = buffer.indexOf('\n')) >= 0) {
            lines.push(JSON.parse(buffer.slice(0, index)));
            buffer = buffer.slice(index + 1);
          }
          if (!bookmarked && lines.some((l) => l.type === 'BOOKMARK')) {
            bookmarked = true;
            onBookmark();
          }
        });
        res.on('end', () => resolve(lines));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('kube API test server', { concurrency: true }, () => {
  let server: KubeApiServer;
  before(async () => {
    server = await startKubeApiServer();
  });
  after(async () => {
    await server.close();
  });

  test('rejects a wrong bearer token with a 401 Status and honours rotation', async () => {
    const own = await startKubeApiServer({ token: 'first' });
    try {
      const bad = await call(own, 'GET', '/api/v1/pods', { token: 'nope' });
      assert.equal(bad.status, 401);
      assert.equal(bad.body.kind, 'Status');
      assert.equal(bad.body.reason, 'Unauthorized');
      assert.equal((await call(own, 'GET', '/api/v1/pods', { token: 'first' })).status, 200);
      own.token = 'second';
      assert.equal((await call(own, 'GET', '/api/v1/pods', { token: 'first' })).status, 401);
      assert.equal((await call(own, 'GET', '/api/v1/pods')).status, 200);
    } finally {
      await own.close();
    }
  });

  test('GET of a missing pod is a Kubernetes NotFound Status', async () => {
    const reply = await call(server, 'GET', '/api/v1/namespaces/default/pods/x');
    assert.equal(reply.status, 404);
    assert.equal(reply.body.message, 'pods "x" not found');
    assert.equal(reply.body.reason, 'NotFound');
    assert.equal(reply.body.code, 404);
  });

  test('upsertPod fills metadata and LIST filters by namespace, labels and spec.nodeName', async () => {
    const stored = server.upsertPod(pod('ns1', 'p1', 'node-a', { app: 'x' }));
    assert.ok(stored.metadata.uid);
    assert.ok(stored.metadata.creationTimestamp);
    const again = server.upsertPod({ ...stored, metadata: { ...stored.metadata, labels: { app: 'y' } } });
    assert.equal(again.metadata.uid, stored.metadata.uid);
    assert.ok(Number(again.metadata.resourceVersion) > Number(stored.metadata.resourceVersion));
    server.upsertPod(pod('ns2', 'p2', 'node-b'));

    const all = await call(server, 'GET', '/api/v1/pods');
    assert.equal(all.body.kind, 'PodList');
    assert.ok(all.body.items.length >= 2);
    const byNode = await call(server, 'GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-b');
    assert.deepEqual(
      byNode.body.items.map((p: any) => p.metadata.name),
      ['p2'],
    );
    const byNs = await call(server, 'GET', '/api/v1/namespaces/ns1/pods?labelSelector=app%3Dy');
    assert.deepEqual(
      byNs.body.items.map((p: any) => p.metadata.name),
      ['p1'],
    );
    const one = await call(server, 'GET', '/api/v1/namespaces/ns1/pods/p1');
    assert.equal(one.body.metadata.uid, stored.metadata.uid);
  });

  test('DELETE honours uid and resourceVersion preconditions', async () => {
    const stored = server.upsertPod(pod('del', 'p'));
    const wrongUid = await call(server, 'DELETE', '/api/v1/namespaces/del/pods/p', {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: 'other' } },
    });
    assert.equal(wrongUid.status, 409);
    assert.equal(wrongUid.body.reason, 'Conflict');
    assert.equal(
      wrongUid.body.message,
      `Operation cannot be fulfilled on Pod "p": the UID in the precondition (other) does not match the UID in record (${stored.metadata.uid}). The object might have been deleted and then recreated`,
    );
    const wrongRv = await call(server, 'DELETE', '/api/v1/namespaces/del/pods/p', {
      body: { preconditions: { resourceVersion: '1' } },
    });
    assert.equal(wrongRv.status, 409);
    const ok = await call(server, 'DELETE', '/api/v1/namespaces/del/pods/p', {
      body: { preconditions: { uid: stored.metadata.uid, resourceVersion: stored.metadata.resourceVersion } },
    });
    assert.equal(ok.status, 200);
    // A scheduled pod is deleted gracefully: Terminating (deletionTimestamp, a MODIFIED) until finalized.
    const terminating = server.getPod('del', 'p');
    assert.ok(terminating?.metadata['deletionTimestamp']);
    assert.equal(terminating?.metadata['deletionGracePeriodSeconds'], 30);
    const again = await call(server, 'DELETE', '/api/v1/namespaces/del/pods/p');
    assert.equal(again.status, 200);
    assert.equal(server.getPod('del', 'p')?.metadata.resourceVersion, terminating?.metadata.resourceVersion);
    // A force delete (grace 0) of a terminating pod removes it.
    const forced = await call(server, 'DELETE', '/api/v1/namespaces/del/pods/p?gracePeriodSeconds=0');
    assert.equal(forced.status, 200);
    assert.equal(server.getPod('del', 'p'), undefined);
    // finalizePod is the kubelet's end of a graceful deletion; a pod that already ended goes at once.
    server.upsertPod(pod('del', 'r'));
    await call(server, 'DELETE', '/api/v1/namespaces/del/pods/r');
    assert.equal(server.finalizePod('del', 'r'), true);
    assert.equal(server.getPod('del', 'r'), undefined);
    server.upsertPod({ ...pod('del', 'done'), status: { phase: 'Succeeded' } });
    await call(server, 'DELETE', '/api/v1/namespaces/del/pods/done');
    assert.equal(server.getPod('del', 'done'), undefined);
    // Grace 0 removes at once.
    server.upsertPod(pod('del', 'q'));
    const now = await call(server, 'DELETE', '/api/v1/namespaces/del/pods/q?gracePeriodSeconds=0');
    assert.equal(now.status, 200);
    assert.equal(server.getPod('del', 'q'), undefined);
  });

  test('a selector watch sees a pod that starts matching as ADDED and one that stops as DELETED (watch cache semantics)', async () => {
    const rv = server.upsertPod(pod('sel', 'p')).metadata.resourceVersion;
    const lines = await collectWatch(
      server,
      `/api/v1/namespaces/sel/pods?watch=true&resourceVersion=${rv}&timeoutSeconds=1&allowWatchBookmarks=true&labelSelector=app%3Dweb`,
      () => {
        server.upsertPod(pod('sel', 'p', 'node-a', { app: 'web' }));
        server.upsertPod(pod('sel', 'p', 'node-a', { app: 'web', v: '2' }));
        server.upsertPod(pod('sel', 'p', 'node-a', { app: 'db' }));
        server.deletePod('sel', 'p');
      },
    );
    assert.deepEqual(
      lines.map((l) => `${l.type}:${JSON.stringify(l.object.metadata.labels ?? null)}`),
      [
        'BOOKMARK:null',
        'ADDED:{"app":"web"}',
        'MODIFIED:{"app":"web","v":"2"}',
        'DELETED:{"app":"web","v":"2"}',
      ],
    );
    const deleted = lines[3];
    assert.equal(
      Number(deleted.object.metadata.resourceVersion),
      Number(lines[2].object.metadata.resourceVersion) + 1,
    );
  });

  test('PATCH of pods/status merges labels; nodes PATCH removes a taint', async () => {
    server.upsertPod(pod('patch', 'p', 'node-a', { keep: '1' }));
    for (const contentType of ['application/merge-patch+json', 'application/strategic-merge-patch+json']) {
      const reply = await call(server, 'PATCH', '/api/v1/namespaces/patch/pods/p/status', {
        body: { metadata: { labels: { broken: contentType } } },
        contentType,
      });
      assert.equal(reply.status, 200);
    }
    assert.deepEqual(server.getPod('patch', 'p')?.metadata.labels, {
      keep: '1',
      broken: 'application/strategic-merge-patch+json',
    });

    server.upsertNode({
      metadata: { name: 'node-a' },
      spec: { taints: [{ key: 'cni.istio.io/not-ready', effect: 'NoSchedule' }] },
    });
    const node = await call(server, 'PATCH', '/api/v1/nodes/node-a', {
      body: [{ op: 'remove', path: '/spec/taints/0' }],
      contentType: 'application/json-patch+json',
    });
    assert.equal(node.status, 200);
    assert.deepEqual(server.getNode('node-a')?.spec?.taints, []);
    assert.equal((await call(server, 'GET', '/api/v1/nodes/node-a')).body.kind, 'Node');
  });

  test('namespaces GET and events POST (core and events.k8s.io)', async () => {
    server.upsertNamespace({ metadata: { name: 'istio-system', labels: { a: 'b' } } });
    const ns = await call(server, 'GET', '/api/v1/namespaces/istio-system');
    assert.equal(ns.body.metadata.labels.a, 'b');
    const core = await call(server, 'POST', '/api/v1/namespaces/default/events', {
      body: { metadata: { generateName: 'x.' }, reason: 'LabelBrokenPod' },
    });
    assert.equal(core.status, 201);
    const modern = await call(server, 'POST', '/apis/events.k8s.io/v1/namespaces/default/events', {
      body: { metadata: { name: 'y' }, reason: 'DeletePod' },
    });
    assert.equal(modern.status, 201);
    assert.deepEqual(
      server.events.slice(-2).map((e) => e.reason),
      ['LabelBrokenPod', 'DeletePod'],
    );
  });

  test('injected faults: status, drop, then normal service', async () => {
    server.injectFault({ status: 429, times: 1, match: (r) => r.path.endsWith('/faulty') });
    server.injectFault({ drop: true, times: 1, match: (r) => r.path.endsWith('/faulty') });
    const first = await call(server, 'GET', '/api/v1/namespaces/default/pods/faulty');
    assert.equal(first.status, 429);
    assert.equal(first.body.reason, 'TooManyRequests');
    await assert.rejects(call(server, 'GET', '/api/v1/namespaces/default/pods/faulty'));
    assert.equal((await call(server, 'GET', '/api/v1/namespaces/default/pods/faulty')).status, 404);
    const recorded = server.requests.filter((r) => r.path.endsWith('/faulty')).map((r) => r.status);
    assert.deepEqual(recorded, [429, -1, 404]);
  });

  test('watch streams events from a resourceVersion and ends at timeoutSeconds', async () => {
    const rv = server.upsertPod(pod('w', 'before')).metadata.resourceVersion;
    const lines = await collectWatch(
      server,
      `/api/v1/namespaces/w/pods?watch=true&resourceVersion=${rv}&timeoutSeconds=1&allowWatchBookmarks=true`,
      () => {
        server.upsertPod(pod('w', 'after'));
        server.deletePod('w', 'after');
      },
    );
    assert.deepEqual(
      lines.map((l) => `${l.type}:${l.object.metadata.name ?? ''}`),
      ['BOOKMARK:', 'ADDED:after', 'DELETED:after'],
    );
  });

  test('selector and patch helpers', () => {
    const match = parseLabelSelector('a=1,b!=2,c,!d,e in (x, y),f notin (z)');
    assert.equal(match({ a: '1', c: '', e: 'y' }), true);
    assert.equal(match({ a: '1', c: '', e: 'y', d: '' }), false);
    assert.equal(match({ a: '1', c: '', e: 'q' }), false);
    assert.deepEqual(mergePatch({ a: { b: 1, c: 2 } }, { a: { c: null, d: 3 } }), { a: { b: 1, d: 3 } });
  });
});

describe('RBAC from the rendered manifests', () => {
  test('request attributes as the API server derives them', () => {
    assert.deepEqual(requestAttributes('GET', '/api/v1/pods', { watch: 'true' }), {
      apiGroup: '',
      verb: 'watch',
      resource: 'pods',
      subresource: '',
      namespace: '',
      name: '',
    });
    assert.equal(requestAttributes('GET', '/api/v1/pods', { watch: '1' })?.verb, 'watch');
    assert.deepEqual(requestAttributes('POST', '/apis/events.k8s.io/v1/namespaces/default/events', {}), {
      apiGroup: 'events.k8s.io',
      verb: 'create',
      resource: 'events',
      subresource: '',
      namespace: 'default',
      name: '',
    });
    assert.equal(requestAttributes('GET', '/api/v1/namespaces/x', {})?.namespace, 'x');
    assert.deepEqual(requestAttributes('PATCH', '/api/v1/namespaces/default/pods/a/status', {}), {
      apiGroup: '',
      verb: 'patch',
      resource: 'pods',
      subresource: 'status',
      namespace: 'default',
      name: 'a',
    });
    assert.equal(requestAttributes('GET', '/api/v1/namespaces/default', {})?.resource, 'namespaces');
    assert.equal(requestAttributes('GET', '/healthz', {}), undefined);
  });

  test("each target grants exactly its mode's verbs; ambient's namespace read is not granted", () => {
    const pod = (verb: string, subresource = '') => ({
      verb,
      resource: 'pods',
      subresource,
      namespace: 'default',
      name: verb === 'list' ? '' : 'a',
    });
    const base = authorizerFor('base');
    assert.equal(base(pod('get')), true);
    assert.equal(base(pod('list')), true);
    assert.equal(base(pod('delete')), false);
    assert.equal(base(pod('patch', 'status')), false);
    assert.equal(
      base({ verb: 'create', resource: 'events', subresource: '', namespace: 'default', name: '' }),
      true,
    );
    // Our roles grant the core group's events only.
    const newEvent = requestAttributes('POST', '/apis/events.k8s.io/v1/namespaces/default/events', {});
    assert.ok(newEvent);
    assert.equal(base(newEvent), false);
    assert.equal(
      base({ verb: 'get', resource: 'namespaces', subresource: '', namespace: '', name: 'x' }),
      false,
    );
    assert.equal(
      base({ verb: 'patch', resource: 'nodes', subresource: '', namespace: '', name: 'n' }),
      false,
    );
    assert.equal(authorizerFor('repair-delete-pods')(pod('delete')), true);
    assert.equal(authorizerFor('repair-delete-pods')(pod('patch', 'status')), false);
    assert.equal(authorizerFor('repair-label-pods')(pod('patch', 'status')), true);
    assert.equal(authorizerFor('repair-label-pods')(pod('delete')), false);
    const taint = authorizerFor('node-taint');
    assert.equal(
      taint({ verb: 'patch', resource: 'nodes', subresource: '', namespace: '', name: 'n' }),
      true,
    );
    assert.equal(authorizerFor('base', 'repair-label-pods')(pod('patch', 'status')), true);
  });

  test("a request the roles do not allow gets the API server's 403 Forbidden Status", async () => {
    const server = await startKubeApiServer({ authorize: authorizerFor('base') });
    try {
      server.upsertPod({ metadata: { name: 'a', namespace: 'default' }, spec: {} });
      assert.equal((await call(server, 'GET', '/api/v1/namespaces/default/pods/a')).status, 200);
      const denied = await call(server, 'DELETE', '/api/v1/namespaces/default/pods/a');
      assert.equal(denied.status, 403);
      assert.equal(denied.body.reason, 'Forbidden');
      assert.equal(
        denied.body.message,
        'pods "a" is forbidden: User "system:serviceaccount:istio-system:istio-cni" cannot delete resource "pods" in API group "" in the namespace "default"',
      );
      assert.ok(server.getPod('default', 'a'), 'nothing deleted');
      const node = await call(server, 'GET', '/api/v1/nodes/n');
      assert.match(node.body.message, /cannot get resource "nodes" in API group "" at the cluster scope$/);
    } finally {
      await server.close();
    }
  });
});
