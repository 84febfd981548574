// The repair controller at shutdown, with a stand-in API client: once the agent's signal is aborted (SIGTERM, before
// the node's cleanup), no queued pod is deleted any more and a list still in flight starts nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { loadAgentConfig } from '../../../src/config/load.ts';
import { startRepairController, type RepairStartOptions } from '../../../src/repair/controller.ts';
import { PrometheusMetrics } from '../../../src/sys/metrics.ts';
import { fakeRepairClient as fakeClient } from '../../support/fake-repair-client.ts';
import { brokenPodManifest } from '../../support/repair-pods.ts';
import { within } from '../../support/within.ts';

const config = loadAgentConfig({
  env: {
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: '1',
    NODE_NAME: 'n1',
    REPAIR_DELETE_PODS: 'true',
  },
  flags: {},
  mode: 'agent',
});

function brokenPod(name: string): object {
  return brokenPodManifest({
    name,
    namespace: 'ns',
    uid: `uid-${name}`,
    resourceVersion: '7',
    nodeName: 'n1',
    podIp: '10.0.0.9',
  });
}

test('SIGTERM while pods are queued: the one being deleted finishes, the rest are left alone', async () => {
  const agent = new AbortController();
  const deleted: string[] = [];
  let firstDone: () => void = () => undefined;
  const firstReconciled = new Promise<void>((resolve) => (firstDone = resolve));
  const { client, release } = fakeClient(
    [brokenPod('a'), brokenPod('b'), brokenPod('c')],
    (name) => {
      deleted.push(name);
      agent.abort(); // the node's shutdown (and its cleanup) begins during the first DELETE
    },
    () => firstDone(),
  );
  const controller = startRepairController(config, {
    logger: pino({ level: 'silent' }),
    metrics: new PrometheusMetrics(),
    signal: agent.signal,
    client,
  });
  release();
  await firstReconciled;
  // The queue moves to its next key in the promise jobs after a reconcile; one turn of the event loop runs them
  // all, as the cleanup's awaits would, before stop() is ever called.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(deleted, ['a']);
  await controller.stop();
  assert.deepEqual(deleted, ['a']);
});

test('a list still in flight when SIGTERM comes starts no repair', async () => {
  const agent = new AbortController();
  const deleted: string[] = [];
  const { client, release } = fakeClient([brokenPod('a')], (name) => deleted.push(name));
  const controller = startRepairController(config, {
    logger: pino({ level: 'silent' }),
    metrics: new PrometheusMetrics(),
    signal: agent.signal,
    client,
  });
  agent.abort();
  release();
  await controller.stop();
  assert.deepEqual(deleted, []);
});

test('a controller started on an already aborted signal (SIGTERM before its start) repairs nothing', async () => {
  const deleted: string[] = [];
  const { client, release } = fakeClient([brokenPod('a')], (name) => deleted.push(name));
  const controller = startRepairController(config, {
    logger: pino({ level: 'silent' }),
    metrics: new PrometheusMetrics(),
    signal: AbortSignal.abort(),
    client,
  });
  release();
  // A turn of the event loop runs a list's repairs (as in the first test): none may have started.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(deleted, []);
  await within(controller.stop(), 10_000, "the stopped controller's stop()");
  assert.deepEqual(deleted, []);
});

test('stop() gives the event of the last action a moment: a slow events API still gets it written', async () => {
  let requested: () => void = () => undefined;
  const eventRequested = new Promise<void>((resolve) => (requested = resolve));
  let answer: () => void = () => undefined;
  const written: string[] = [];
  const { client, release } = fakeClient([brokenPod('a')], () => undefined);
  const slowEvents = () => {
    const port = client();
    return {
      ...port,
      api: {
        ...port.api,
        // An API server that answers the event only when the test says so (the action never waits for it).
        recordPodEvent: (_pod: unknown, reason: string) => {
          requested();
          return new Promise<void>((resolve) => {
            answer = () => {
              written.push(reason);
              resolve();
            };
          });
        },
      },
    };
  };
  const controller = startRepairController(config, {
    logger: pino({ level: 'silent' }),
    metrics: new PrometheusMetrics(),
    signal: new AbortController().signal,
    client: slowEvents,
  });
  release();
  await within(eventRequested, 5000, 'the event of the DELETE of the broken pod');
  let stopped = false;
  const stopping = controller.stop().then(() => (stopped = true));
  // stop() waits for the event still being written: a turn of the event loop later it has not returned.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stopped, false);
  answer();
  await within(stopping, 5000, 'stop() once the event was written');
  assert.deepEqual(written, ['DeleteBrokenPod']);
});

test('a list still unanswered at stop(): stop() ends it and returns, and its abort is logged as no informer failure', async () => {
  const agent = new AbortController();
  const warnings: string[] = [];
  let listStarted: () => void = () => undefined;
  const listing = new Promise<void>((resolve) => (listStarted = resolve));
  let abortList: (error: Error) => void = () => undefined;
  const client = (() => ({
    api: {},
    createPodInformer: () => ({
      start: () => {
        listStarted();
        return new Promise<void>((_resolve, reject) => (abortList = reject));
      },
      // As the real informer: stop() aborts the list request in flight.
      stop: () => {
        abortList(new Error('list pods failed: This operation was aborted'));
        return Promise.resolve();
      },
      get: () => undefined,
      onEvent: () => undefined,
      onError: () => undefined,
    }),
  })) as unknown as NonNullable<RepairStartOptions['client']>;
  const controller = startRepairController(config, {
    logger: pino(
      { level: 'warn' },
      { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) },
    ),
    metrics: new PrometheusMetrics(),
    signal: agent.signal,
    client,
  });
  await listing;
  agent.abort();
  await within(controller.stop(), 5000, 'stop()');
  assert.deepEqual(warnings, []);
});
