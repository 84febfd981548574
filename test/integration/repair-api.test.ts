// The repair controller against the Kubernetes API test server (real HTTPS, list/watch, preconditions, events).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from '../support/kube-api-server.ts';
import { authorizerFor, type RenderedTarget } from '../support/rbac.ts';
import { brokenPodManifest, podManifest } from '../support/repair-pods.ts';
import {
  controllerConfig,
  RecordingMetrics,
  serviceAccountDir,
  capturingLogger,
  silentLogger,
  until,
} from '../support/repair-harness.ts';
import { startRepairController } from '../../src/repair/controller.ts';
import { createReconciler, REPAIRED_METRIC } from '../../src/repair/reconcile.ts';
import { createRepairClient, serverUrl, type RepairClientOptions } from '../../src/kube/repair-client.ts';
import { loadAgentConfig } from '../../src/config/load.ts';
import { writeFileSync } from 'node:fs';
import { KubeError } from '../../src/errors.ts';
import path from 'node:path';
import { repairPodFromManifest } from '../../src/repair/pod.ts';
import { DEFAULT_REPAIR } from '../support/repair-harness.ts';

type RequestLine = { path: string; query: Record<string, string> };
const isPodWatch = (r: RequestLine): boolean => r.path === '/api/v1/pods' && r.query['watch'] === 'true';
const isPodList = (r: RequestLine): boolean => r.path === '/api/v1/pods' && r.query['watch'] !== 'true';

/** Resolves once the server has seen `count` pod watch requests (fails after `timeoutMs`). */
function untilPodWatches(server: KubeApiServer, count: number, timeoutMs: number): Promise<void> {
  return until(
    server,
    () => server.requests.filter(isPodWatch).length >= count,
    timeoutMs,
    `watch request ${count}`,
  );
}

/** A label-mode controller whose watches last `watchTimeoutSeconds` (and whose informer restarts after 20 ms). */
function startWithShortWatches(
  ctx: Pick<Awaited<ReturnType<typeof setup>>, 'server' | 'sa' | 'metrics' | 'logger'>,
  options: RepairClientOptions,
): ReturnType<typeof startRepairController> {
  const config = controllerConfig(ctx.server, ctx.sa.dir, { labelPods: true });
  return startRepairController(config, {
    logger: ctx.logger,
    metrics: ctx.metrics,
    signal: new AbortController().signal,
    retryInitialMs: 20,
    client: () => createRepairClient(config, options),
  });
}

const completed = [{ name: 'istio-validation', state: { terminated: { exitCode: 0, reason: 'Completed' } } }];

/** Each test runs against the RBAC our manifests grant for its mode (the rendered kustomize targets): a call the
 * shipped roles do not allow fails as it would in a cluster. */
async function withServer(
  rbac: readonly RenderedTarget[],
  run: (ctx: Awaited<ReturnType<typeof setup>>) => Promise<void>,
): Promise<void> {
  const ctx = await setup(rbac);
  try {
    await run(ctx);
  } finally {
    await ctx.server.close();
    await ctx.sa[Symbol.asyncDispose]();
  }
}

async function setup(rbac: readonly RenderedTarget[]) {
  const server = await startKubeApiServer({ authorize: authorizerFor(...rbac) });
  const sa = await serviceAccountDir(server);
  return { server, sa, metrics: new RecordingMetrics(), logger: silentLogger() };
}

/** A controller for `repair` against the test server, stopped by a 20 s signal at the latest; `extra` adds to or
 * overrides its start options. */
function startController(
  ctx: Pick<Awaited<ReturnType<typeof setup>>, 'server' | 'sa' | 'metrics' | 'logger'>,
  repair: Parameters<typeof controllerConfig>[2],
  extra: Partial<Parameters<typeof startRepairController>[1]> = {},
): ReturnType<typeof startRepairController> {
  return startRepairController(controllerConfig(ctx.server, ctx.sa.dir, repair), {
    logger: ctx.logger,
    metrics: ctx.metrics,
    signal: AbortSignal.timeout(20_000),
    ...extra,
  });
}

function events(server: { events: KubeObject[] }, reason: string): KubeObject[] {
  return server.events.filter((event) => event['reason'] === reason);
}

test('label mode: only the broken pod on this node is labelled (status subresource), once; event and metrics', async () => {
  await withServer(['repair-label-pods'], async ({ server, sa, metrics, logger }) => {
    server.upsertPod(brokenPodManifest({ name: 'broken' }) as KubeObject);
    server.upsertPod(podManifest({ name: 'ok', initStatuses: completed }) as KubeObject);
    server.upsertPod(brokenPodManifest({ name: 'other-node', nodeName: 'node-b' }) as KubeObject);
    server.upsertPod(
      brokenPodManifest({ name: 'labelled', labels: { 'cni.istio.io/uninitialized': 'true' } }) as KubeObject,
    );
    const controller = startController({ server, sa, metrics, logger }, { labelPods: true });
    try {
      await metrics.waitFor(REPAIRED_METRIC, { type: 'label', result: 'success' });
      await metrics.waitFor(REPAIRED_METRIC, { type: 'label', result: 'skip' });
      assert.deepEqual(server.getPod('default', 'broken')?.metadata.labels, {
        'cni.istio.io/uninitialized': 'true',
      });
      assert.deepEqual(server.getPod('default', 'ok')?.metadata.labels, {});
      assert.deepEqual(server.getPod('default', 'other-node')?.metadata.labels, {});
      const patches = server.requests.filter((r) => r.method === 'PATCH');
      assert.deepEqual(
        patches.map((r) => [r.path, r.headers['content-type']]),
        [['/api/v1/namespaces/default/pods/broken/status', 'application/merge-patch+json']],
      );
      await controller.reconciler?.events.idle();
      const labelled = events(server, 'LabelBrokenPod');
      assert.equal(labelled.length, 1);
      assert.equal(labelled[0]?.['type'], 'Warning');
      assert.equal(labelled[0]?.['message'], 'pod detected as broken, labeled');
      assert.deepEqual((labelled[0]?.['involvedObject'] as { name: string }).name, 'broken');
      assert.equal((labelled[0]?.['source'] as { component: string }).component, 'cni-repair');
      // The informer listed and watched with the node selector.
      const list = server.requests.find((r) => r.method === 'GET' && r.path === '/api/v1/pods');
      assert.equal(list?.query['fieldSelector'], 'spec.nodeName=node-a');
      // The label update comes back through the watch: the pod now has the key, so it is skipped, not re-labelled.
      await metrics.waitFor(REPAIRED_METRIC, { type: 'label', result: 'skip' }, 2);
      assert.equal(metrics.get(REPAIRED_METRIC, { type: 'label', result: 'success' }), 1);
    } finally {
      await controller.stop();
    }
  });
});

test('delete mode: the broken pod is deleted with uid + resourceVersion preconditions; a pod turning broken later is caught by the watch', async () => {
  await withServer(['repair-delete-pods'], async ({ server, sa, metrics, logger }) => {
    server.upsertPod(brokenPodManifest({ name: 'broken' }) as KubeObject);
    server.upsertPod(podManifest({ name: 'later', initStatuses: completed }) as KubeObject);
    const controller = startController(
      { server, sa, metrics, logger },
      { deletePods: true, labelPods: true, labelSelectors: '' },
    );
    try {
      await metrics.waitFor(REPAIRED_METRIC, { type: 'delete', result: 'success' });
      // Graceful deletion, as the API server does it for a scheduled pod: Terminating until the kubelet is done.
      assert.ok(server.getPod('default', 'broken')?.metadata['deletionTimestamp']);
      await controller.reconciler?.events.idle();
      assert.equal(events(server, 'DeleteBrokenPod')[0]?.['message'], 'pod detected as broken, deleted');
      await controller.synced;
      server.upsertPod(brokenPodManifest({ name: 'later' }) as KubeObject);
      await metrics.waitFor(REPAIRED_METRIC, { type: 'delete', result: 'success' }, 2);
      assert.ok(server.getPod('default', 'later')?.metadata['deletionTimestamp']);
      // The terminating pod's update (queued before 'later') was seen and left alone: one DELETE each, one event.
      const deletes = server.requests.filter((r) => r.method === 'DELETE').map((r) => r.path);
      assert.deepEqual(deletes, [
        '/api/v1/namespaces/default/pods/broken',
        '/api/v1/namespaces/default/pods/later',
      ]);
      assert.equal(metrics.get(REPAIRED_METRIC, { type: 'delete', result: 'success' }), 2);
      await controller.reconciler?.events.idle();
      // One event per pod, each counted once (the two test pods share a UID: the name keeps them apart, as in
      // client-go's correlator key).
      assert.deepEqual(
        events(server, 'DeleteBrokenPod').map((e) => [
          (e['involvedObject'] as { name: string }).name,
          e['count'] ?? 1,
        ]),
        [
          ['broken', 1],
          ['later', 1],
        ],
      );
      assert.equal(
        metrics.get(REPAIRED_METRIC, { type: 'label', result: 'success' }),
        0,
        'delete wins over label',
      );
    } finally {
      await controller.stop();
    }
  });
});

test('a repeated event on a pod bumps the count of the recorded one (client-go correlator); a deleted one is recorded anew', async () => {
  await withServer(['repair-label-pods'], async ({ server, sa }) => {
    const pod = { namespace: 'default', name: 'web-1', uid: 'uid-1', resourceVersion: '7' };
    const { api } = createRepairClient(controllerConfig(server, sa.dir, { labelPods: true }));
    for (let i = 0; i < 3; i++) await api.recordPodEvent(pod, 'RepairFailed', 'pod is broken: exit 126');
    await api.recordPodEvent(pod, 'RepairFailed', 'another message');
    const recorded = events(server, 'RepairFailed');
    assert.deepEqual(
      recorded.map((event) => [event['message'], event['count']]),
      [
        ['pod is broken: exit 126', 3],
        ['another message', 1],
      ],
    );
    assert.ok(String(recorded[0]?.['lastTimestamp']) >= String(recorded[0]?.['firstTimestamp']));
    server.events.splice(0, server.events.length);
    await api.recordPodEvent(pod, 'RepairFailed', 'pod is broken: exit 126');
    assert.deepEqual(
      events(server, 'RepairFailed').map((event) => event['count']),
      [1],
    );
  });
});

test("an overloaded server's 429 carries its Retry-After to the error the repair queue waits on", async () => {
  await withServer(['repair-delete-pods'], async ({ server, sa }) => {
    const manifest = server.upsertPod(brokenPodManifest({ name: 'busy', uid: 'uid-busy' }) as KubeObject);
    const pod = {
      namespace: 'default',
      name: 'busy',
      uid: 'uid-busy',
      resourceVersion: manifest.metadata.resourceVersion ?? '',
    };
    const { api } = createRepairClient(controllerConfig(server, sa.dir, { deletePods: true }));
    // The test server sends `Retry-After: 1` with an injected 429.
    server.injectFault({ status: 429, times: 1, match: (req) => req.method === 'DELETE' });
    await assert.rejects(api.deletePod(pod), (error: unknown) => {
      assert.ok(error instanceof KubeError);
      assert.equal(error.status, 429);
      assert.equal(error.retryable, true);
      assert.equal(error.retryAfterMs, 1000);
      return true;
    });
    await api.deletePod(pod);
    assert.ok(server.getPod('default', 'busy')?.metadata['deletionTimestamp']);
  });
});

test('the repair queue retries a delete the server answered 429 no sooner than its Retry-After', async () => {
  await withServer(['repair-delete-pods'], async ({ server, sa, metrics, logger }) => {
    server.upsertPod(brokenPodManifest({ name: 'busy' }) as KubeObject);
    let refusedAt: number | undefined;
    server.injectFault({
      status: 429,
      times: 1,
      match: (req) => {
        if (req.method !== 'DELETE') return false;
        refusedAt = performance.now();
        return true;
      },
    });
    const controller = startController({ server, sa, metrics, logger }, { deletePods: true });
    try {
      await metrics.waitFor(REPAIRED_METRIC, { type: 'delete', result: 'success' });
      assert.ok(refusedAt !== undefined, 'the first delete was refused');
      // The queue's own back-off after a first failure is 5 ms.
      assert.ok(performance.now() - refusedAt >= 1000, `retried after ${performance.now() - refusedAt} ms`);
      assert.equal(server.requests.filter((r) => r.method === 'DELETE').length, 2);
    } finally {
      await controller.stop();
    }
  });
});

test('a pod recreated under the same name is never deleted through the stale UID (409 precondition)', async () => {
  await withServer(['repair-delete-pods'], async ({ server, sa, metrics, logger }) => {
    const stale = server.upsertPod(brokenPodManifest({ name: 'web-0', uid: 'uid-old' }) as KubeObject);
    server.deletePod('default', 'web-0');
    server.upsertPod(brokenPodManifest({ name: 'web-0', uid: 'uid-new' }) as KubeObject);
    const config = controllerConfig(server, sa.dir, { deletePods: true });
    const client = createRepairClient(config);
    const reconciler = createReconciler(
      { ...DEFAULT_REPAIR, deletePods: true },
      {
        api: client.api,
        getPod: () => repairPodFromManifest(stale),
        repairInPlace: () => Promise.resolve(),
        metrics,
        logger,
      },
    );
    await assert.rejects(
      reconciler.reconcile('default/web-0'),
      (error: unknown) => (error as { status?: number }).status === 409,
    );
    assert.equal(server.getPod('default', 'web-0')?.metadata.uid, 'uid-new');
    assert.equal(metrics.get(REPAIRED_METRIC, { type: 'delete', result: 'fail' }), 1);
    await reconciler.events.idle();
    const failed = events(server, 'DeleteBrokenPod');
    assert.match(
      String(failed[0]?.['message']),
      /^pod detected as broken, but failed to delete: .*409 Operation cannot be fulfilled on Pod "web-0": the UID in the precondition \(uid-old\)/,
    );
  });
});

test('API errors are retried by the queue (503 then success); the event is best effort', async () => {
  await withServer(['repair-delete-pods'], async ({ server, sa, metrics, logger }) => {
    server.upsertPod(brokenPodManifest({ name: 'broken' }) as KubeObject);
    server.injectFault({ status: 503, times: 2, match: (r) => r.method === 'DELETE' });
    server.injectFault({
      status: 500,
      times: 10,
      match: (r) => r.method === 'POST' && r.path.endsWith('/events'),
    });
    const controller = startController({ server, sa, metrics, logger }, { deletePods: true });
    try {
      await metrics.waitFor(REPAIRED_METRIC, { type: 'delete', result: 'success' });
      assert.equal(metrics.get(REPAIRED_METRIC, { type: 'delete', result: 'fail' }), 2);
      assert.ok(server.getPod('default', 'broken')?.metadata['deletionTimestamp']);
    } finally {
      await controller.stop();
    }
  });
});

test('API down at startup: start returns at once, the informer retries in the background, then repairs', async () => {
  await withServer(['repair-label-pods'], async ({ server, sa, metrics, logger }) => {
    server.upsertPod(brokenPodManifest({ name: 'broken' }) as KubeObject);
    server.injectFault({ drop: true, times: 1, match: (r) => r.path === '/api/v1/pods' });
    server.injectFault({ status: 503, times: 2, match: (r) => r.path === '/api/v1/pods' });
    const started = Date.now();
    const controller = startController(
      { server, sa, metrics, logger },
      { labelPods: true },
      { retryInitialMs: 20, retryMaxMs: 100 },
    );
    assert.ok(Date.now() - started < 200, 'startRepairController must not wait for the API server');
    try {
      await controller.synced;
      await metrics.waitFor(REPAIRED_METRIC, { type: 'label', result: 'success' });
      const lists = server.requests.filter(isPodList);
      assert.ok(lists.length >= 4, `expected retried lists, saw ${lists.length}`);
    } finally {
      await controller.stop();
    }
  });
});

test(
  'unreachable API server: stop() returns promptly while retries are pending',
  { timeout: 20_000 },
  async () => {
    await withServer(['repair-label-pods', 'node-taint'], async ({ server, sa, metrics }) => {
      const config = controllerConfig(
        server,
        sa.dir,
        { labelPods: true, notReadyTaintKey: 'cni.istio.io/not-ready' },
        {
          kubernetesServicePort: '1',
        },
      );
      const log = capturingLogger();
      const controller = startRepairController(config, {
        logger: log.logger,
        metrics,
        signal: new AbortController().signal,
        // The next attempt is a minute away: only stop() can end the wait.
        retryInitialMs: 60_000,
      });
      await log.waitFor('failed to start pod informer; retrying');
      // The test's own 20 s limit is far below the 60 s retry: stop() resolving at all proves it ended the wait.
      const outcome = await controller.stop().then(() => 'stopped');
      assert.equal(outcome, 'stopped');
    });
  },
);

test('not-ready taint: removed (any effect) from this node, other taints kept, conflicts and errors retried', async () => {
  await withServer(['node-taint'], async ({ server, sa, metrics, logger }) => {
    server.upsertNode({
      metadata: { name: 'node-a' },
      spec: {
        taints: [
          { key: 'cni.istio.io/not-ready', value: 'true', effect: 'NoSchedule' },
          { key: 'keep', effect: 'NoExecute' },
          { key: 'cni.istio.io/not-ready', effect: 'NoExecute' },
        ],
      },
    });
    server.injectFault({
      status: 503,
      times: 1,
      match: (r) => r.method === 'GET' && r.path === '/api/v1/nodes/node-a',
    });
    server.injectFault({ status: 409, times: 1, match: (r) => r.method === 'PATCH' });
    const controller = startController(
      { server, sa, metrics, logger },
      { enabled: false, notReadyTaintKey: 'cni.istio.io/not-ready' },
      { retryInitialMs: 20 },
    );
    try {
      await until(
        server,
        () => ((server.getNode('node-a')?.spec?.['taints'] as unknown[] | undefined)?.length ?? 0) === 1,
        5000,
        'taint removal',
      );
      assert.deepEqual(server.getNode('node-a')?.spec?.['taints'], [{ key: 'keep', effect: 'NoExecute' }]);
      const patches = server.requests.filter((r) => r.method === 'PATCH');
      assert.equal(patches.length, 2);
      assert.equal(
        server.requests.filter((r) => r.path === '/api/v1/pods').length,
        0,
        'repair disabled: no informer',
      );
    } finally {
      await controller.stop();
    }
  });
});

function offlineConfig(repair: Partial<typeof DEFAULT_REPAIR>) {
  return controllerConfig(
    { host: '127.0.0.1', port: 1, caFile: '/nonexistent/ca.crt', token: '' },
    '/nonexistent',
    repair,
  );
}

test('disabled without a taint key: nothing starts, no client is built', async () => {
  let built = false;
  const handle = startRepairController(offlineConfig({ enabled: false }), {
    logger: silentLogger(),
    metrics: new RecordingMetrics(),
    signal: new AbortController().signal,
    client: () => {
      built = true;
      throw new Error('unexpected');
    },
  });
  await handle.stop();
  assert.equal(built, false);
});

test('a client that cannot be built is logged, never thrown (the install keeps going)', async () => {
  const log = capturingLogger();
  const handle = startRepairController(offlineConfig({}), {
    logger: log.logger,
    metrics: new RecordingMetrics(),
    signal: new AbortController().signal,
    client: () => {
      throw new Error('no token');
    },
  });
  await handle.stop();
  assert.equal(handle.reconciler, undefined);
  assert.ok(
    log.records.some((record) => String(record['err'] ?? record['msg']).includes('no token')),
    JSON.stringify(log.records),
  );
});

test("a REPAIR_FIELD_SELECTORS naming a field pods cannot be selected by: the API server's 400 (field label not supported) reaches the operator's log", async () => {
  await withServer(['repair-label-pods'], async ({ server, sa, metrics }) => {
    const log = capturingLogger();
    const controller = startRepairController(
      controllerConfig(server, sa.dir, { labelPods: true, fieldSelectors: 'spec.priority=1' }),
      { logger: log.logger, metrics, signal: new AbortController().signal, retryInitialMs: 20 },
    );
    try {
      const line = await log.waitFor('failed to start pod informer; retrying');
      assert.match(JSON.stringify(line), /field label not supported: spec\.priority/);
      const list = server.requests.find((r) => r.path === '/api/v1/pods');
      assert.equal(list?.query['fieldSelector'], 'spec.priority=1,spec.nodeName=node-a');
      assert.equal(list?.status, 400);
    } finally {
      await controller.stop();
    }
  });
});

test('informer: a stalled watch (200, then silence) is given up after its timeout and restarted; a watch the server ends at once restarts with back-off instead of looping', async () => {
  await withServer(['repair-label-pods'], async ({ server, sa, metrics, logger }) => {
    server.injectFault({ stall: true, times: 1, match: isPodWatch });
    // Ended at once: a 200 with an empty stream.
    server.injectFault({ status: 200, times: 2, match: isPodWatch });
    const controller = startWithShortWatches(
      { server, sa, metrics, logger },
      { watchTimeoutSeconds: () => 1, watchStallGraceMs: 200 },
    );
    try {
      await controller.synced;
      await untilPodWatches(server, 4, 10_000);
      assert.equal(server.requests.filter(isPodWatch)[0]?.query['timeoutSeconds'], '1');
      // Each failed watch restarted the informer (a re-list), none was re-opened in a tight loop.
      assert.equal(server.requests.filter(isPodList).length, 4);
      server.upsertPod(brokenPodManifest({ name: 'after-stall' }) as KubeObject);
      await metrics.waitFor(REPAIRED_METRIC, { type: 'label', result: 'success' });
    } finally {
      await controller.stop();
    }
  });
});

test('informer: a 410 on watch re-lists, a dropped watch restarts with back-off, events keep flowing', async () => {
  await withServer(['repair-label-pods'], async ({ server, sa, metrics, logger }) => {
    server.injectFault({ status: 410, times: 1, match: isPodWatch });
    server.injectFault({ drop: true, times: 1, match: isPodWatch });
    const controller = startController(
      { server, sa, metrics, logger },
      { labelPods: true },
      { retryInitialMs: 20 },
    );
    try {
      await controller.synced;
      await untilPodWatches(server, 3, 5000);
      server.upsertPod(brokenPodManifest({ name: 'late' }) as KubeObject);
      await metrics.waitFor(REPAIRED_METRIC, { type: 'label', result: 'success' });
      const lists = server.requests.filter(isPodList);
      assert.equal(lists.length, 3, 'initial list, re-list after 410, list on restart after the drop');
      // client-go's reflector versions: the first list from the watch cache ("0"); after the 410 and on the
      // restart, the last version seen (a list is served at least that fresh).
      assert.equal(lists[0]?.query['resourceVersion'], '0');
      assert.match(lists[1]?.query['resourceVersion'] ?? '', /^[1-9]\d*$/);
      assert.match(lists[2]?.query['resourceVersion'] ?? '', /^[1-9]\d*$/);
      assert.equal(server.getPod('default', 'late')?.metadata.labels?.['cni.istio.io/uninitialized'], 'true');
    } finally {
      await controller.stop();
    }
  });
});

test('informer: a watch from a compacted version gets 200 and an ERROR 410 in the stream (as from the watch cache); the client re-lists from its last version and misses nothing', async () => {
  await withServer(['repair-label-pods'], async ({ server, sa, metrics, logger }) => {
    // The second watch (after the first one's 1 s timeout) is held while the history moves on and is compacted.
    let watches = 0;
    let release: () => void = () => undefined;
    const hold = new Promise<void>((resolve) => (release = resolve));
    server.injectFault({ hold, times: 1, match: (r) => isPodWatch(r) && ++watches === 2 });
    const controller = startWithShortWatches(
      { server, sa, metrics, logger },
      { watchTimeoutSeconds: () => 1 },
    );
    try {
      await controller.synced;
      await untilPodWatches(server, 2, 10_000);
      server.upsertPod(brokenPodManifest({ name: 'in-the-gap' }) as KubeObject);
      server.compactHistory();
      release();
      await metrics.waitFor(REPAIRED_METRIC, { type: 'label', result: 'success' });
      const lists = server.requests.filter(isPodList);
      assert.equal(lists.length, 2, 'the initial list, then one re-list after Expired (no informer restart)');
      assert.equal(lists[0]?.query['resourceVersion'], '0');
      assert.match(lists[1]?.query['resourceVersion'] ?? '', /^[1-9]\d*$/);
    } finally {
      release();
      await controller.stop();
    }
  });
});

test('informer list versions: a failed list keeps the last version for the retry; a 410 on a list from a version falls back at once to a consistent list', async () => {
  await withServer(['repair-label-pods'], async ({ server, sa }) => {
    const client = createRepairClient(controllerConfig(server, sa.dir, { labelPods: true }));
    const informer = client.createPodInformer({ fieldSelector: 'spec.nodeName=node-a', labelSelector: '' });
    try {
      await informer.start();
      await informer.stop();
      server.injectFault({ status: 503, times: 1, match: isPodList });
      await assert.rejects(
        informer.start(),
        (error: unknown) => (error as { status?: number }).status === 503,
      );
      await informer.start();
      await informer.stop();
      server.injectFault({ status: 410, times: 1, match: isPodList });
      await informer.start();
      const lists = server.requests.filter(isPodList).map((r) => [r.query['resourceVersion'], r.status]);
      const last = lists[1]?.[0];
      assert.match(String(last), /^[1-9]\d*$/);
      assert.deepEqual(lists, [
        ['0', 200],
        [last, 503],
        [last, 200],
        [last, 410],
        [undefined, 200],
      ]);
    } finally {
      await informer.stop();
    }
  });
});

test('informer: watch frames cut inside a multi-byte character are decoded intact', async () => {
  const server = await startKubeApiServer({
    watchFrameGapMs: 20,
    authorize: authorizerFor('repair-label-pods'),
  });
  const sa = await serviceAccountDir(server);
  const client = createRepairClient(controllerConfig(server, sa.dir, { labelPods: true }));
  const informer = client.createPodInformer({ fieldSelector: 'spec.nodeName=node-a', labelSelector: '' });
  const arrived = new Promise<void>((resolve) =>
    informer.onEvent((_type, pod) => {
      if ((pod as KubeObject).metadata.name === 'cafe') resolve();
    }),
  );
  try {
    await informer.start();
    server.upsertPod(podManifest({ name: 'cafe', annotations: { note: 'café ☕ 東京' } }) as KubeObject);
    await arrived;
    const cached = informer.get('default', 'cafe') as KubeObject;
    assert.equal(cached.metadata.annotations?.['note'], 'café ☕ 東京');
  } finally {
    await informer.stop();
    await server.close();
    await sa[Symbol.asyncDispose]();
  }
});

test("the agent's own client is in-cluster: HTTPS with the service account's CA, whatever KUBERNETES_SERVICE_PROTOCOL and SKIP_TLS_VERIFY say (they shape only the plugin kubeconfig)", async () => {
  await withServer(['node-taint'], async ({ server, sa }) => {
    server.upsertNode({
      metadata: { name: 'node-a' },
      spec: { taints: [{ key: 'keep', effect: 'NoExecute' }] },
    });
    const config = loadAgentConfig({
      env: {
        KUBERNETES_SERVICE_HOST: server.host,
        KUBERNETES_SERVICE_PORT: String(server.port),
        KUBERNETES_SERVICE_PROTOCOL: 'http',
        SKIP_TLS_VERIFY: 'true',
        SERVICE_ACCOUNT_DIR: sa.dir,
      },
      flags: {},
      mode: 'agent',
    });
    assert.equal(serverUrl(config).protocol, 'https:');
    const taints = await createRepairClient(config).api.getNodeTaints('node-a');
    assert.deepEqual(taints.taints, [{ key: 'keep', effect: 'NoExecute' }]);
    // Another cluster's CA in the service account: the server is not trusted, SKIP_TLS_VERIFY notwithstanding.
    const other = await startKubeApiServer();
    try {
      writeFileSync(path.join(sa.dir, 'ca.crt'), other.caPem);
      await assert.rejects(
        createRepairClient(config).api.getNodeTaints('node-a'),
        /certificate|self.signed|issuer/i,
      );
    } finally {
      await other.close();
    }
  });
});
