import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReconciler, REPAIRED_METRIC, type ReconcileSettings } from '../../../src/repair/reconcile.ts';
import type { PodRef, RepairApi } from '../../../src/repair/api.ts';
import { repairPodFromManifest, type RepairPod } from '../../../src/repair/pod.ts';
import { KubeError } from '../../../src/errors.ts';
import { brokenPodManifest, podManifest } from '../../support/repair-pods.ts';
import { DEFAULT_REPAIR, RecordingMetrics, silentLogger } from '../../support/repair-harness.ts';

class FakeApi implements RepairApi {
  readonly calls: string[] = [];
  readonly events: { reason: string; message: string }[] = [];
  failWith: Error | undefined;
  deletePod(pod: PodRef): Promise<void> {
    this.calls.push(`delete ${pod.namespace}/${pod.name} uid=${pod.uid} rv=${pod.resourceVersion}`);
    return this.failWith === undefined ? Promise.resolve() : Promise.reject(this.failWith);
  }
  labelPod(pod: PodRef, labels: Readonly<Record<string, string>>): Promise<void> {
    this.calls.push(`label ${pod.name} ${JSON.stringify(labels)}`);
    return this.failWith === undefined ? Promise.resolve() : Promise.reject(this.failWith);
  }
  recordPodEvent(_pod: PodRef, reason: string, message: string): Promise<void> {
    this.events.push({ reason, message });
    return Promise.resolve();
  }
  getNodeTaints(): Promise<never> {
    return Promise.reject(new Error('unused'));
  }
  setNodeTaints(): Promise<never> {
    return Promise.reject(new Error('unused'));
  }
}

function parsed(manifest: unknown): RepairPod {
  const pod = repairPodFromManifest(manifest);
  assert.ok(pod);
  return pod;
}

function setup(
  settings: Partial<ReconcileSettings>,
  pods: Map<string, RepairPod>,
  repairInPlace = () => Promise.resolve(),
) {
  const api = new FakeApi();
  const metrics = new RecordingMetrics();
  const repairs: string[] = [];
  const reconciler = createReconciler(
    { ...DEFAULT_REPAIR, ...settings },
    {
      api,
      getPod: (key) => pods.get(key),
      repairInPlace: async (pod) => {
        repairs.push(`${pod.name}/${pod.uid}`);
        await repairInPlace();
      },
      metrics,
      logger: silentLogger(),
    },
  );
  return { api, metrics, repairs, reconciler };
}

test('no mode enabled: a broken pod is left alone', async () => {
  const pods = new Map([['default/a', parsed(brokenPodManifest({ name: 'a' }))]]);
  const { api, repairs, reconciler } = setup({}, pods);
  await reconciler.reconcile('default/a');
  assert.deepEqual([api.calls, repairs], [[], []]);
});

test('healthy pods and unknown keys do nothing', async () => {
  const pods = new Map([['default/ok', parsed(podManifest({ name: 'ok' }))]]);
  const { api, repairs, reconciler } = setup({ repairPods: true, deletePods: true, labelPods: true }, pods);
  await reconciler.reconcile('default/ok');
  await reconciler.reconcile('default/gone');
  assert.deepEqual([api.calls, repairs], [[], []]);
});

test('repair mode: repaired once per UID (run twice), forgotten when the pod is gone, recreated pod repaired', async () => {
  const pods = new Map([['default/a', parsed(brokenPodManifest({ name: 'a', uid: 'u1' }))]]);
  const { api, metrics, repairs, reconciler } = setup({ repairPods: true, deletePods: true }, pods);
  await reconciler.reconcile('default/a');
  await reconciler.reconcile('default/a');
  assert.deepEqual(repairs, ['a/u1']);
  assert.deepEqual(api.calls, [], 'repair wins over delete');
  assert.equal(reconciler.repaired.get('default/a'), 'u1');
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'repair', result: 'success' }), 1);
  await reconciler.events.idle();
  assert.deepEqual(api.events, [
    { reason: 'RepairBrokenPod', message: 'pod detected as broken, repaired in place' },
  ]);

  pods.set('default/a', parsed(brokenPodManifest({ name: 'a', uid: 'u2' })));
  await reconciler.reconcile('default/a');
  assert.deepEqual(repairs, ['a/u1', 'a/u2']);

  pods.delete('default/a');
  await reconciler.reconcile('default/a');
  assert.equal(reconciler.repaired.has('default/a'), false);
});

test('repair failure: metric fail, event, error returned for a retry, nothing recorded', async () => {
  const pods = new Map([['default/a', parsed(brokenPodManifest({ name: 'a' }))]]);
  const { api, metrics, reconciler } = setup({ repairPods: true }, pods, () =>
    Promise.reject(new Error('failed to find network namespace')),
  );
  await assert.rejects(reconciler.reconcile('default/a'), /failed to find network namespace/);
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'repair', result: 'fail' }), 1);
  assert.equal(reconciler.repaired.size, 0);
  await reconciler.events.idle();
  assert.match(api.events[0]?.message ?? '', /but failed to repair: failed to find network namespace/);
});

test('delete mode: preconditions carry the cached uid and resourceVersion; 404 is done, 409 is retried', async () => {
  const pods = new Map([
    ['ns1/a', parsed(brokenPodManifest({ name: 'a', namespace: 'ns1', uid: 'u1', resourceVersion: '42' }))],
  ]);
  const { api, metrics, reconciler } = setup({ deletePods: true, labelPods: true }, pods);
  await reconciler.reconcile('ns1/a');
  assert.deepEqual(api.calls, ['delete ns1/a uid=u1 rv=42']);
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'delete', result: 'success' }), 1);

  api.failWith = new KubeError('gone', { status: 404, retryable: false });
  await reconciler.reconcile('ns1/a');
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'delete', result: 'fail' }), 0);

  api.failWith = new KubeError('Precondition failed', { status: 409, retryable: true });
  await assert.rejects(reconciler.reconcile('ns1/a'), /Precondition failed/);
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'delete', result: 'fail' }), 1);
});

test('label mode: label key/value from settings; already labelled → skip', async () => {
  const pods = new Map([
    ['default/a', parsed(brokenPodManifest({ name: 'a' }))],
    ['default/b', parsed(brokenPodManifest({ name: 'b', labels: { testkey: 'other' } }))],
  ]);
  const { api, metrics, reconciler } = setup(
    { labelPods: true, brokenPodLabelKey: 'testkey', brokenPodLabelValue: 'testval' },
    pods,
  );
  await reconciler.reconcile('default/a');
  await reconciler.reconcile('default/b');
  assert.deepEqual(api.calls, ['label a {"testkey":"testval"}']);
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'label', result: 'success' }), 1);
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'label', result: 'skip' }), 1);
  await reconciler.events.idle();
  assert.deepEqual(api.events, [{ reason: 'LabelBrokenPod', message: 'pod detected as broken, labeled' }]);

  // Gone meanwhile (404): done, not failed, and no event about a pod that no longer exists.
  pods.set('default/c', parsed(brokenPodManifest({ name: 'c' })));
  api.failWith = new KubeError('pods "c" not found', { status: 404, retryable: false });
  await reconciler.reconcile('default/c');
  await reconciler.events.idle();
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'label', result: 'fail' }), 0);
  assert.equal(api.events.length, 1);
});

test('a broken pod already being deleted (deletionTimestamp set, graceful deletion) is left alone in every mode, run twice', async () => {
  const manifest = brokenPodManifest({ name: 'a' }) as { metadata: Record<string, unknown> };
  manifest.metadata['deletionTimestamp'] = '2026-11-24T03:00:00Z';
  const pods = new Map([['default/a', parsed(manifest)]]);
  for (const mode of [{ repairPods: true }, { deletePods: true }, { labelPods: true }]) {
    const { api, metrics, repairs, reconciler } = setup(mode, pods);
    await reconciler.reconcile('default/a');
    await reconciler.reconcile('default/a');
    await reconciler.events.idle();
    assert.deepEqual([api.calls, api.events, repairs], [[], [], []], JSON.stringify(mode));
    assert.equal(metrics.get(REPAIRED_METRIC, { type: 'delete', result: 'success' }), 0);
  }
  // The same pod without the timestamp is acted on: the skip is the timestamp's doing.
  const live = new Map([['default/a', parsed(brokenPodManifest({ name: 'a' }))]]);
  const { api, reconciler } = setup({ deletePods: true }, live);
  await reconciler.reconcile('default/a');
  assert.equal(api.calls.length, 1);
});

test('an events API that hangs holds up no action: the next pods are deleted, their events queue behind it, in order', async () => {
  const pods = new Map(
    ['a', 'b', 'c'].map((name) => [`default/${name}`, parsed(brokenPodManifest({ name }))]),
  );
  const { api, metrics, reconciler } = setup({ deletePods: true }, pods);
  let release: () => void = () => undefined;
  const hanging = new Promise<void>((resolve) => (release = resolve));
  const record = api.recordPodEvent.bind(api);
  api.recordPodEvent = (pod, reason, message) => record(pod, reason, message).then(() => hanging);
  for (const name of ['a', 'b', 'c']) await reconciler.reconcile(`default/${name}`);
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'delete', result: 'success' }), 3);
  assert.deepEqual(api.calls.length, 3);
  assert.equal(api.events.length, 1, 'the first event is still being written');
  release();
  await reconciler.events.idle();
  assert.equal(api.events.length, 3);
});

test('label failure: metric fail, Warning event "but failed to label: <err>", error returned for a retry', async () => {
  const pods = new Map([['default/a', parsed(brokenPodManifest({ name: 'a' }))]]);
  const { api, metrics, reconciler } = setup({ labelPods: true }, pods);
  api.failWith = new KubeError('pods "a" is forbidden', { status: 403, retryable: false });
  await assert.rejects(reconciler.reconcile('default/a'), /forbidden/);
  assert.equal(metrics.get(REPAIRED_METRIC, { type: 'label', result: 'fail' }), 1);
  await reconciler.events.idle();
  assert.deepEqual(api.events, [
    {
      reason: 'LabelBrokenPod',
      message: 'pod detected as broken, but failed to label: pods "a" is forbidden',
    },
  ]);
});

test('the counter is istio_cni_repair_pods_repaired_total{type, result}, the name dashboards and alerts use', async () => {
  const pods = new Map([['default/a', parsed(brokenPodManifest({ name: 'a' }))]]);
  const { metrics, reconciler } = setup({ deletePods: true }, pods);
  await reconciler.reconcile('default/a');
  assert.equal(metrics.get('istio_cni_repair_pods_repaired_total', { type: 'delete', result: 'success' }), 1);
});

test('a pod gone (404) before its delete or label counts as neither success nor failure, and gets no event', async () => {
  for (const mode of [{ deletePods: true }, { labelPods: true }]) {
    const pods = new Map([['default/a', parsed(brokenPodManifest({ name: 'a' }))]]);
    const { api, metrics, reconciler } = setup(mode, pods);
    api.failWith = new KubeError('pods "a" not found', { status: 404, retryable: false });
    await reconciler.reconcile('default/a');
    await reconciler.events.idle();
    assert.deepEqual([...metrics.counters], [], JSON.stringify(mode));
    assert.deepEqual(api.events, [], JSON.stringify(mode));
  }
});
