// The repair client's own semantics against the Kubernetes API test server: the informer's resourceVersion
// bookkeeping (what a list and each watch start from), which failures re-list and which restart it, the events a
// re-list derives, and the preconditions and token handling of its calls. repair-api.test.ts drives the same client
// through the controller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from '../support/kube-api-server.ts';
import { authorizerFor, type RenderedTarget } from '../support/rbac.ts';
import { podManifest } from '../support/repair-pods.ts';
import { controllerConfig, serviceAccountDir, until } from '../support/repair-harness.ts';
import { createRepairClient, type RepairClientOptions } from '../../src/kube/repair-client.ts';
import type { PodEventType, PodInformer } from '../../src/repair/api.ts';
import { KubeError } from '../../src/errors.ts';
import { within } from '../support/within.ts';

type RequestLine = { path: string; query: Record<string, string> };
const isPodWatch = (r: RequestLine): boolean => r.path === '/api/v1/pods' && r.query['watch'] === 'true';
const isPodList = (r: RequestLine): boolean => r.path === '/api/v1/pods' && r.query['watch'] !== 'true';
const NODE_PODS = { fieldSelector: 'spec.nodeName=node-a', labelSelector: '' };

interface Ctx {
  server: KubeApiServer;
  saDir: string;
  client: (options?: RepairClientOptions) => ReturnType<typeof createRepairClient>;
}

async function withServer(rbac: readonly RenderedTarget[], run: (ctx: Ctx) => Promise<void>): Promise<void> {
  const server = await startKubeApiServer({ authorize: authorizerFor(...rbac) });
  const sa = await serviceAccountDir(server);
  const config = controllerConfig(server, sa.dir, { labelPods: true });
  try {
    await run({ server, saDir: sa.dir, client: (options) => createRepairClient(config, options) });
  } finally {
    await server.close();
    await sa[Symbol.asyncDispose]();
  }
}

/** The informer's events and errors, as `[type, name]` and messages. */
function recorded(informer: PodInformer): { events: [PodEventType, string][]; errors: string[] } {
  const log = { events: [] as [PodEventType, string][], errors: [] as string[] };
  informer.onEvent((type, pod) => log.events.push([type, (pod as KubeObject).metadata.name]));
  informer.onError((error) => log.errors.push(String(error)));
  return log;
}

const watchVersions = (server: KubeApiServer) =>
  server.requests.filter(isPodWatch).map((r) => r.query['resourceVersion']);
const listVersions = (server: KubeApiServer) =>
  server.requests.filter(isPodList).map((r) => [r.query['resourceVersion'], r.status]);

test('informer versions: the first watch starts at the list, each next one at the last version seen, a bookmark included (bookmarks asked for)', async () => {
  await withServer(['repair-label-pods'], async ({ server, client }) => {
    const listedAt = server.upsertPod(podManifest({ name: 'before' }) as KubeObject).metadata.resourceVersion;
    const informer = client({ watchTimeoutSeconds: () => 1 }).createPodInformer(NODE_PODS);
    try {
      await informer.start();
      // Before the first watch reaches the server: its bookmark then carries this version, newer than any pod's.
      const bookmarked = server.upsertNode({ metadata: { name: 'node-a' } }).metadata.resourceVersion;
      await until(server, () => watchVersions(server).length >= 2, 5000, 'the second watch');
      const changed = server.upsertPod(podManifest({ name: 'during' }) as KubeObject).metadata
        .resourceVersion;
      await until(server, () => watchVersions(server).length >= 3, 5000, 'the third watch');
      assert.deepEqual(watchVersions(server).slice(0, 3), [listedAt, bookmarked, changed]);
      const first = server.requests.find(isPodWatch);
      assert.equal(first?.query['allowWatchBookmarks'], 'true');
      assert.equal(first?.query['fieldSelector'], 'spec.nodeName=node-a');
      assert.ok(informer.get('default', 'during'));
    } finally {
      await informer.stop();
    }
  });
});

test('informer: a watch answered 410 Gone re-lists from the last version without reporting an error (no restart)', async () => {
  await withServer(['repair-label-pods'], async ({ server, client }) => {
    const listedAt = server.upsertPod(podManifest({ name: 'a' }) as KubeObject).metadata.resourceVersion;
    server.injectFault({ status: 410, times: 1, match: isPodWatch });
    const informer = client().createPodInformer(NODE_PODS);
    const log = recorded(informer);
    try {
      await informer.start();
      await until(server, () => watchVersions(server).length >= 2, 5000, 'the watch after the re-list');
      assert.deepEqual(log.errors, []);
      assert.deepEqual(listVersions(server), [
        ['0', 200],
        [listedAt, 200],
      ]);
      assert.equal(server.requests.find(isPodWatch)?.status, 410);
    } finally {
      await informer.stop();
    }
  });
});

test('informer: a re-list reports what changed while it was down (update, delete) and nothing for an unchanged pod', async () => {
  await withServer(['repair-label-pods'], async ({ server, client }) => {
    for (const name of ['same', 'changed', 'gone']) server.upsertPod(podManifest({ name }) as KubeObject);
    const informer = client().createPodInformer(NODE_PODS);
    const log = recorded(informer);
    try {
      await informer.start();
      assert.deepEqual(log.events.map(([type, name]) => `${type} ${name}`).sort(), [
        'add changed',
        'add gone',
        'add same',
      ]);
      await informer.stop();
      log.events.length = 0;
      server.upsertPod(podManifest({ name: 'changed', labels: { app: 'web' } }) as KubeObject);
      server.deletePod('default', 'gone');
      server.upsertPod(podManifest({ name: 'new' }) as KubeObject);
      await informer.start();
      assert.deepEqual(log.events.map(([type, name]) => `${type} ${name}`).sort(), [
        'add new',
        'delete gone',
        'update changed',
      ]);
      assert.equal(informer.get('default', 'gone'), undefined);
      assert.deepEqual((informer.get('default', 'changed') as KubeObject).metadata.labels, { app: 'web' });
    } finally {
      await informer.stop();
    }
  });
});

test('informer: a label selector goes on the list and the watch; only matching pods arrive', async () => {
  await withServer(['repair-label-pods'], async ({ server, client }) => {
    server.upsertPod(podManifest({ name: 'web', labels: { app: 'web' } }) as KubeObject);
    server.upsertPod(podManifest({ name: 'db', labels: { app: 'db' } }) as KubeObject);
    const informer = client().createPodInformer({ ...NODE_PODS, labelSelector: 'app=web' });
    const log = recorded(informer);
    try {
      await informer.start();
      await until(server, () => watchVersions(server).length >= 1, 5000, 'the watch');
      const seen = new Promise<void>((resolve) =>
        informer.onEvent((_type, pod) => {
          if ((pod as KubeObject).metadata.name === 'web-2') resolve();
        }),
      );
      server.upsertPod(podManifest({ name: 'db-2', labels: { app: 'db' } }) as KubeObject);
      server.upsertPod(podManifest({ name: 'web-2', labels: { app: 'web' } }) as KubeObject);
      await seen;
      assert.deepEqual(log.events, [
        ['add', 'web'],
        ['add', 'web-2'],
      ]);
      for (const request of server.requests.filter((r) => r.path === '/api/v1/pods'))
        assert.equal(request.query['labelSelector'], 'app=web');
    } finally {
      await informer.stop();
    }
  });
});

test('informer list versions: a 504 "Too large resource version" falls back at once to a consistent list; any other 504 is an error', async () => {
  await withServer(['repair-label-pods'], async ({ server, client }) => {
    const informer = client().createPodInformer(NODE_PODS);
    try {
      await informer.start();
      await informer.stop();
      server.upsertPod(podManifest({ name: 'x' }) as KubeObject);
      // The version the client asks for is one this API server has not seen yet (it restarted from an older
      // etcd snapshot, or is behind its peers): client-go's reflector then reads the current state.
      server.injectFault({
        status: 504,
        message: 'Too large resource version: 2000, current: 1500',
        times: 1,
        match: isPodList,
      });
      await informer.start();
      await informer.stop();
      server.injectFault({ status: 504, times: 1, match: isPodList });
      await assert.rejects(informer.start(), (error: unknown) => (error as KubeError).status === 504);
      const lists = listVersions(server);
      assert.deepEqual(lists.slice(1), [
        [lists[1]?.[0], 504],
        [undefined, 200],
        [lists[3]?.[0], 504],
      ]);
      assert.match(String(lists[1]?.[0]), /^[1-9]\d*$/);
    } finally {
      await informer.stop();
    }
  });
});

test('deletePod sends the resourceVersion precondition: a pod changed since it was read is not deleted (409)', async () => {
  await withServer(['repair-delete-pods'], async ({ server, client }) => {
    const read = server.upsertPod(podManifest({ name: 'web' }) as KubeObject);
    server.upsertPod(podManifest({ name: 'web', labels: { changed: 'yes' } }) as KubeObject);
    const { api } = client();
    const ref = (pod: KubeObject) => ({
      namespace: 'default',
      name: 'web',
      uid: pod.metadata.uid ?? '',
      resourceVersion: pod.metadata.resourceVersion ?? '',
    });
    await assert.rejects(api.deletePod(ref(read)), (error: unknown) => {
      assert.ok(error instanceof KubeError);
      assert.equal(error.status, 409);
      assert.equal(error.retryable, true);
      return true;
    });
    assert.equal(server.getPod('default', 'web')?.metadata['deletionTimestamp'], undefined);
    const current = server.getPod('default', 'web');
    assert.ok(current);
    await api.deletePod(ref(current));
    assert.ok(server.getPod('default', 'web')?.metadata['deletionTimestamp']);
  });
});

test('informer: stop() aborts a list the API server holds unanswered, so a shutdown does not wait out the 30 s request timeout', async () => {
  await withServer(['repair-label-pods'], async ({ server, client }) => {
    let listArrived: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => (listArrived = resolve));
    let answerList: () => void = () => undefined;
    server.injectFault({
      times: 1,
      match: (r) => {
        if (!isPodList(r)) return false;
        listArrived();
        return true;
      },
      // Released only after the test: the server holds the list while the informer stops.
      hold: new Promise<void>((resolve) => (answerList = resolve)),
    });
    const informer = client().createPodInformer(NODE_PODS);
    const log = recorded(informer);
    const started = informer.start();
    try {
      await arrived;
      await informer.stop();
      await assert.rejects(within(started, 5000, 'the held list to end'), /abort/i);
      assert.deepEqual(log.errors, []);
    } finally {
      answerList();
    }
  });
});

test('setNodeTaints sends the resourceVersion it read: a node changed since is not overwritten (409), its taints kept', async () => {
  await withServer(['node-taint'], async ({ server, client }) => {
    const taint = { key: 'cni.istio.io/not-ready', effect: 'NoSchedule' };
    server.upsertNode({ metadata: { name: 'node-a' }, spec: { taints: [taint] } });
    const { api } = client();
    const read = await api.getNodeTaints('node-a');
    // Another controller adds a taint in between: writing our list from the old read would drop it.
    const other = { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' };
    server.upsertNode({ metadata: { name: 'node-a' }, spec: { taints: [taint, other] } });
    await assert.rejects(api.setNodeTaints('node-a', read.resourceVersion, []), (error: unknown) => {
      assert.ok(error instanceof KubeError);
      assert.equal(error.status, 409);
      return true;
    });
    assert.deepEqual(server.getNode('node-a')?.spec?.['taints'], [taint, other]);
    const fresh = await api.getNodeTaints('node-a');
    await api.setNodeTaints('node-a', fresh.resourceVersion, [other]);
    assert.deepEqual(server.getNode('node-a')?.spec?.['taints'], [other]);
  });
});

test('token rotation: the service account token is re-read after a minute, and at once after a 401', async () => {
  await withServer(['node-taint'], async ({ server, saDir, client }) => {
    server.upsertNode({ metadata: { name: 'node-a' } });
    let clock = 1_000_000;
    const { api } = client({ now: () => clock });
    const rotate = async (token: string) => {
      await writeFile(path.join(saDir, 'token'), `${token}\n`);
      server.token = token;
    };
    await api.getNodeTaints('node-a');
    // kubelet rotated the projected token: within the minute the cached one is still sent.
    await rotate('rotated-1');
    clock += 59_000;
    await assert.rejects(
      api.getNodeTaints('node-a'),
      (error: unknown) => (error as KubeError).status === 401,
    );
    // The 401 dropped the cache: the very next call reads the new token.
    await api.getNodeTaints('node-a');
    // A rotation the server has not been told about yet, a minute on: read again without any 401.
    await rotate('rotated-2');
    clock += 60_000;
    await api.getNodeTaints('node-a');
    assert.deepEqual(
      server.requests.map((r) => r.status),
      [200, 401, 200, 200],
    );
    assert.deepEqual(
      server.requests.slice(2).map((r) => r.headers['authorization']),
      ['Bearer rotated-1', 'Bearer rotated-2'],
    );
  });
});

test('event correlator: the same event within 10 minutes bumps the count; after that it is recorded anew', async () => {
  await withServer(['repair-label-pods'], async ({ server, client }) => {
    let clock = 1_000_000;
    const { api } = client({ now: () => clock });
    const pod = { namespace: 'default', name: 'web-1', uid: 'uid-1', resourceVersion: '7' };
    await api.recordPodEvent(pod, 'RepairFailed', 'broken');
    clock += 9 * 60_000;
    await api.recordPodEvent(pod, 'RepairFailed', 'broken');
    // 10 minutes after the last bump, not the first record.
    clock += 10 * 60_000 - 1;
    await api.recordPodEvent(pod, 'RepairFailed', 'broken');
    clock += 10 * 60_000;
    await api.recordPodEvent(pod, 'RepairFailed', 'broken');
    assert.deepEqual(
      server.events.map((event) => event['count']),
      [3, 1],
    );
  });
});
