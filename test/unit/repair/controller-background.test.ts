// The repair controller's background work with a stand-in API client: the not-ready taint is taken off the agent's own
// node (NODE_NAME), and both the taint removal and the pod informer retry with a back-off that grows, never at a
// steady or tight pace against an API server that is down or overloaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { loadAgentConfig } from '../../../src/config/load.ts';
import { KubeError } from '../../../src/errors.ts';
import type { PodInformer, RepairApi, Taint } from '../../../src/repair/api.ts';
import { startRepairController, type RepairClientPort } from '../../../src/repair/controller.ts';
import { PrometheusMetrics } from '../../../src/sys/metrics.ts';
import { within } from '../../support/within.ts';

const TAINT = 'cni.istio.io/not-ready';

function agentConfig(env: Record<string, string>) {
  return loadAgentConfig({
    env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '1', ...env },
    flags: {},
    mode: 'agent',
  });
}

const unusedPodApi = {
  deletePod: () => Promise.reject(new Error('unused')),
  labelPod: () => Promise.reject(new Error('unused')),
  recordPodEvent: () => Promise.resolve(),
};

function idleInformer(): PodInformer {
  return {
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    get: () => undefined,
    onEvent: () => undefined,
    onError: () => undefined,
  };
}

/** Resolves once `count()` reaches `atLeast`, re-checked by `poke` (called where the count changes). */
function counter(atLeast: number): { reached: Promise<void>; poke(count: number): void } {
  let resolve: () => void = () => undefined;
  const reached = new Promise<void>((settle) => (resolve = settle));
  return { reached, poke: (count) => void (count >= atLeast && resolve()) };
}

function startWith(env: Record<string, string>, client: RepairClientPort, retryInitialMs: number) {
  return startRepairController(agentConfig(env), {
    logger: pino({ level: 'silent' }),
    metrics: new PrometheusMetrics(),
    signal: new AbortController().signal,
    client: () => client,
    retryInitialMs,
    retryMaxMs: 60_000,
  });
}

test("the not-ready taint is taken off NODE_NAME's node when REPAIR_NODE_NAME is unset (its default)", async () => {
  const reads: string[] = [];
  let patched: (patch: { node: string; taints: readonly Taint[] }) => void = () => undefined;
  const patch = new Promise<{ node: string; taints: readonly Taint[] }>((resolve) => (patched = resolve));
  const api: RepairApi = {
    ...unusedPodApi,
    getNodeTaints: (node) => {
      reads.push(node);
      return Promise.resolve({ resourceVersion: '3', taints: [{ key: TAINT, effect: 'NoSchedule' }] });
    },
    setNodeTaints: (node, _rv, taints) => {
      patched({ node, taints });
      return Promise.resolve();
    },
  };
  const controller = startWith(
    { NODE_NAME: 'n1', REPAIR_ENABLED: 'false', CNI_NOT_READY_TAINT_KEY: TAINT },
    { api, createPodInformer: idleInformer },
    1,
  );
  try {
    assert.deepEqual(await within(patch, 5000, 'the taint patch'), { node: 'n1', taints: [] });
    assert.deepEqual(reads, ['n1']);
  } finally {
    await controller.stop();
  }
});

test('taint removal failing over and over is retried with a growing back-off, never in a tight loop', async () => {
  const reads: number[] = [];
  const fourth = counter(4);
  const api: RepairApi = {
    ...unusedPodApi,
    getNodeTaints: () => {
      reads.push(performance.now());
      fourth.poke(reads.length);
      return Promise.reject(
        new KubeError('the server is currently unable to handle the request', {
          status: 503,
          retryable: true,
        }),
      );
    },
    setNodeTaints: () => Promise.reject(new Error('unused')),
  };
  const controller = startWith(
    { NODE_NAME: 'n1', REPAIR_ENABLED: 'false', CNI_NOT_READY_TAINT_KEY: TAINT },
    { api, createPodInformer: idleInformer },
    50,
  );
  try {
    await within(fourth.reached, 10_000, 'a fourth attempt at the taint');
  } finally {
    await controller.stop();
  }
  // Back-off 50, 100, 200 ms between the four reads: 350 ms at least (a steady 50 ms would be 150).
  const elapsed = (reads[3] ?? 0) - (reads[0] ?? 0);
  assert.ok(elapsed >= 330, `4 reads within ${elapsed.toFixed(0)} ms`);
});

test('a pod watch that fails right after each list is restarted with a growing back-off, not at a steady pace', async () => {
  const starts: number[] = [];
  const fifth = counter(5);
  let watchFailed: (error: unknown) => void = () => undefined;
  const informer: PodInformer = {
    ...idleInformer(),
    start() {
      starts.push(performance.now());
      fifth.poke(starts.length);
      // Listed, then the watch drops at once (a flapping API server or proxy).
      setImmediate(() => watchFailed(new KubeError('watch closed', { status: 500, retryable: true })));
      return Promise.resolve();
    },
    onError: (listener) => (watchFailed = listener),
  };
  const api: RepairApi = {
    ...unusedPodApi,
    getNodeTaints: () => Promise.reject(new Error('unused')),
    setNodeTaints: () => Promise.reject(new Error('unused')),
  };
  const controller = startWith(
    { NODE_NAME: 'n1', REPAIR_DELETE_PODS: 'true' },
    { api, createPodInformer: () => informer },
    40,
  );
  try {
    await within(fifth.reached, 10_000, 'a fifth informer start');
  } finally {
    await controller.stop();
  }
  // Back-off 40, 80, 160, 320 ms between the five starts: 600 ms at least (a steady 40 ms would be 160).
  const elapsed = (starts[4] ?? 0) - (starts[0] ?? 0);
  assert.ok(elapsed >= 580, `5 starts within ${elapsed.toFixed(0)} ms`);
});
