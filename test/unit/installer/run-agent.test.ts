// runAgent's two ways out, with the real file system, servers and log sink on a temp tree: SIGTERM with a stand-in
// repair controller whose stop() never returns (an API server that accepted the request and went silent), and an
// installer that fails (its watch died).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadAgentConfig } from '../../../src/config/load.ts';
import { runAgent, type AgentRuntime } from '../../../src/installer/run-agent.ts';
import type { startRepairController } from '../../../src/repair/controller.ts';
import { createAgentLogging } from '../../../src/log/agent-logger.ts';
import { createNodeFs } from '../../../src/sys/fs.ts';
import { startHealthServer, startMetricsServer } from '../../../src/sys/http-servers.ts';
import { startLogSink } from '../../../src/sys/log-sink.ts';
import { PrometheusMetrics } from '../../../src/sys/metrics.ts';
import { watchDirectory } from '../../../src/sys/watch.ts';
import { hostTreeEnv, makeHostTree, type HostTree } from '../../support/host-tree.ts';

const TESTDATA = path.resolve(import.meta.dirname, '../../../../shared/conformance/istio-install-testdata');
const CALICO = JSON.stringify({
  name: 'k8s-pod-network',
  cniVersion: '0.3.1',
  plugins: [{ type: 'calico' }],
});

/** runAgent on `tree` (a Calico conflist in its net dir) with the real pieces, except `overrides`. Every server it
 * starts is also closed by close(), so that a runAgent that never returns fails its test instead of hanging the run. */
function startAgent(tree: HostTree, overrides: Partial<AgentRuntime>, env: Record<string, string> = {}) {
  writeFileSync(`${tree.net}/10-calico.conflist`, CALICO);
  const config = loadAgentConfig({
    env: {
      KUBERNETES_SERVICE_HOST: '10.110.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      ...hostTreeEnv(tree),
      MONITORING_PORT: '0',
      READINESS_PORT: '0',
      LISTEN_ADDRESS: '127.0.0.1',
      ...env,
    },
    flags: {},
    mode: 'agent',
  });
  const lines: string[] = [];
  let onLine: (line: string) => void = () => undefined;
  const logging = createAgentLogging({
    level: 'info',
    json: true,
    write: (line) => {
      lines.push(line);
      onLine(line);
    },
  });
  const closables: { close(): Promise<void> }[] = [];
  const tracked = <T extends { close(): Promise<void> }>(started: Promise<T>): Promise<T> =>
    started.then((value) => {
      closables.push(value);
      return value;
    });
  let shutdown: (name: string) => void = () => undefined;
  const exited = runAgent(config, {
    logging,
    fs: createNodeFs(),
    metrics: new PrometheusMetrics(),
    watchDir: watchDirectory,
    startMetricsServer: (...args) => tracked(startMetricsServer(...args)),
    startHealthServer: (...args) => tracked(startHealthServer(...args)),
    startLogSink: (...args) => tracked(startLogSink(...args)),
    loadRepairController: () => Promise.reject(new Error('no repair controller in this test')),
    onShutdownSignal: (listener) => (shutdown = listener),
    ...overrides,
  });
  return {
    lines,
    /** Resolves once a log line contains `text`. */
    logged: (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (lines.some((line) => line.includes(text))) resolve();
        };
        onLine = check;
        check();
      }),
    shutdown: (name: string) => shutdown(name),
    /** runAgent's exit code, or 'still running after …' (its servers then closed, so the run can end). */
    async exitCode(ms: number): Promise<number | string> {
      const code = await exitWithin(exited, ms);
      if (typeof code === 'string') await Promise.all(closables.map((closable) => closable.close()));
      return code;
    },
  };
}

/** `exited`, or the string 'still running' after `ms`. */
async function exitWithin(exited: Promise<number>, ms: number): Promise<number | string> {
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const code = await Promise.race([
    exited,
    new Promise<string>((resolve) => {
      deadline = setTimeout(() => resolve(`still running after ${ms} ms`), ms);
    }),
  ]);
  clearTimeout(deadline);
  return code;
}

/** Runs `body` on a fresh host tree, removed afterwards whatever happens. */
async function withHostTree(body: (tree: HostTree) => Promise<void>): Promise<void> {
  const tree = makeHostTree('ic-run-', {
    sources: { 'istio-cni': 'plugin' },
    token: 'token-foo',
    ca: readFileSync(`${TESTDATA}/kube-ca.crt`),
  });
  try {
    await body(tree);
  } finally {
    tree.remove();
  }
}

test(
  'SIGTERM with a repair controller that never stops: cleanup runs, the exit is not held past its bound, code 0',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      let repairStarted: () => void = () => undefined;
      const started = new Promise<void>((resolve) => (repairStarted = resolve));
      const agent = startAgent(tree, {
        loadRepairController: () =>
          Promise.resolve((() => {
            repairStarted();
            return { stop: () => new Promise<void>(() => undefined) };
          }) as unknown as typeof startRepairController),
        repairStopTimeoutMs: 300,
      });
      await started;
      await agent.logged('CNI plugin installed; ready');
      agent.shutdown('SIGTERM');
      // The stop that never settles is abandoned at its bound: the exit comes, and says why it did not wait.
      assert.equal(await agent.exitCode(15_000), 0);
      assert.ok(agent.lines.some((line) => line.includes('the repair controller did not stop in time')));
      assert.equal(readFileSync(`${tree.net}/10-calico.conflist`, 'utf8').includes('istio-cni'), false);
    }),
);

test(
  'a second SIGTERM while cleanup is under way is logged and changes nothing: every step completes, in order, exit 0',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      // Cleanup is held on its second step (the kubeconfig) until the second signal has been handled.
      const realFs = createNodeFs();
      let cleanupHeld: () => void = () => undefined;
      const held = new Promise<void>((resolve) => (cleanupHeld = resolve));
      let releaseCleanup: () => void = () => undefined;
      const released = new Promise<void>((resolve) => (releaseCleanup = resolve));
      const agent = startAgent(tree, {
        fs: {
          ...realFs,
          remove: async (file) => {
            if (file.endsWith('istio-cni-kubeconfig')) {
              cleanupHeld();
              await released;
            }
            return realFs.remove(file);
          },
        },
      });
      await agent.logged('CNI plugin installed; ready');
      agent.shutdown('SIGTERM');
      await held;
      assert.equal(readFileSync(`${tree.net}/10-calico.conflist`, 'utf8').includes('istio-cni'), false);
      agent.shutdown('SIGTERM');
      await agent.logged('cleanup already in progress');
      assert.ok(
        existsSync(`${tree.bin}/istio-cni`),
        'the second signal did not skip ahead or stop the cleanup',
      );
      releaseCleanup();
      assert.equal(await agent.exitCode(15_000), 0);
      assert.equal(existsSync(`${tree.run}/istio-cni-kubeconfig`), false);
      assert.equal(existsSync(`${tree.bin}/istio-cni`), false);
      assert.equal(agent.lines.filter((line) => line.includes('shutting down')).length, 1);
    }),
);

test(
  'the installer fails after it was ready (its watch died): the node is cleaned up and the exit code is 1',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      let killWatch: (error: Error) => void = () => undefined;
      const agent = startAgent(tree, {
        watchDir: (dir, onChange, onError) => {
          killWatch = onError;
          return watchDirectory(dir, onChange, onError);
        },
      });
      await agent.logged('CNI plugin installed; ready');
      assert.ok(existsSync(`${tree.bin}/istio-cni`));
      killWatch(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }));
      assert.equal(await agent.exitCode(15_000), 1);
      assert.ok(agent.lines.some((line) => line.includes('max_user_instances')));
      assert.equal(readFileSync(`${tree.net}/10-calico.conflist`, 'utf8').includes('istio-cni'), false);
      assert.equal(existsSync(`${tree.bin}/istio-cni`), false);
      assert.equal(existsSync(`${tree.run}/istio-cni-kubeconfig`), false);
    }),
);

test(
  'SIGTERM cleans the config the installer tracks, even one cleanup would not find by its name (CNI_CONF_NAME without an extension)',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      const named = `${tree.net}/calico-net`;
      writeFileSync(named, CALICO);
      const agent = startAgent(tree, {}, { CNI_CONF_NAME: 'calico-net' });
      await agent.logged('CNI plugin installed; ready');
      assert.equal(readFileSync(named, 'utf8').includes('"istio-cni"'), true);
      agent.shutdown('SIGTERM');
      assert.equal(await agent.exitCode(15_000), 0);
      assert.equal(readFileSync(named, 'utf8').includes('istio-cni'), false);
    }),
);

test(
  'the metrics server failing to listen is only logged (the agent goes on to ready); MONITORING_PORT 0 starts none; the log sink failing is fatal (exit 1)',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      let metricsStarts = 0;
      const failingMetrics = startAgent(
        tree,
        {
          startMetricsServer: () => {
            metricsStarts += 1;
            return Promise.reject(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' }));
          },
        },
        { MONITORING_PORT: '15014' },
      );
      await failingMetrics.logged('CNI plugin installed; ready');
      assert.equal(metricsStarts, 1);
      assert.ok(
        failingMetrics.lines.some((line) => line.includes('cannot start the metrics server; continuing')),
      );
      failingMetrics.shutdown('SIGTERM');
      assert.equal(await failingMetrics.exitCode(15_000), 0);

      const disabled = startAgent(tree, {
        startMetricsServer: () => {
          metricsStarts += 1;
          return Promise.reject(new Error('MONITORING_PORT 0 must start no metrics server'));
        },
      });
      await disabled.logged('CNI plugin installed; ready');
      assert.equal(metricsStarts, 1);
      disabled.shutdown('SIGTERM');
      assert.equal(await disabled.exitCode(15_000), 0);

      const noSink = startAgent(tree, {
        startLogSink: () =>
          Promise.reject(Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' })),
      });
      assert.equal(await noSink.exitCode(15_000), 1);
      assert.ok(noSink.lines.some((line) => line.includes('cannot start the log server at')));
      assert.equal(readFileSync(`${tree.net}/10-calico.conflist`, 'utf8').includes('istio-cni'), false);
    }),
);
