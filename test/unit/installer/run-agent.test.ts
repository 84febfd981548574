// runAgent's two ways out, with the real file system, servers and log sink on a temp tree: SIGTERM with a stand-in
// repair controller whose stop() never returns (an API server that accepted the request and went silent), and an
// installer that fails (its watch died).
import { test } from 'node:test';
import { request } from 'node:http';
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

/** Something a test waits for: `happened` resolves once `fire` is called. */
function latch(): { happened: Promise<void>; fire: () => void } {
  let fire: () => void = () => undefined;
  const happened = new Promise<void>((resolve) => (fire = resolve));
  return { happened, fire };
}

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
      const { happened: started, fire: repairStarted } = latch();
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
      const { happened: held, fire: cleanupHeld } = latch();
      const { happened: released, fire: releaseCleanup } = latch();
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
      assert.ok(
        noSink.lines.some((line) => line.includes(`cannot start the log server at ${tree.run}/log.sock`)),
      );
      assert.equal(readFileSync(`${tree.net}/10-calico.conflist`, 'utf8').includes('istio-cni'), false);
    }),
);

/** POSTs `body` to the agent's log.sock at /log; resolves with the status. */
function postLog(socketPath: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/log', method: 'POST' }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** GET `path` on 127.0.0.1:`port`; resolves with the status. */
function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    })
      .on('error', reject)
      .end();
  });
}

/** The port a "<what> server listening" line names. */
function listeningPort(lines: readonly string[], what: string): number {
  const line = lines
    .flatMap((candidate) => candidate.split('\n'))
    .find((candidate) => candidate.includes(`${what} server listening`));
  assert.ok(line, `a "${what} server listening" line`);
  return (JSON.parse(line) as { port: number }).port;
}

test(
  "the plugin's records posted to log.sock are relayed into the agent's log and counted by outcome; a malformed batch is a warning",
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      const metrics = new PrometheusMetrics();
      const agent = startAgent(tree, { metrics });
      await agent.logged('CNI plugin installed; ready');
      // startAgent's repair controller fails to load: logged, and the agent carries on.
      await agent.logged('cannot start the repair controller');
      const record = JSON.stringify({
        level: 'info',
        time: '2026-11-23T18:15:19.042Z',
        msg: 'redirect rules applied',
        pod: 'default/app',
      });
      const other = JSON.stringify({ level: 'info', time: '2026-11-23T18:15:19.043Z', msg: 'just chatter' });
      assert.equal(await postLog(`${tree.run}/log.sock`, JSON.stringify([record, other])), 200);
      await agent.logged('just chatter');
      const records = agent.lines.flatMap((line) => line.split('\n')).filter((line) => line !== '');
      const relayed = records.find((line) => line.includes('redirect rules applied'));
      assert.ok(relayed);
      assert.equal((JSON.parse(relayed) as { scope: string }).scope, 'cni-plugin');
      const adds = metrics
        .render()
        .split('\n')
        .filter((line) => line.startsWith('istio_cni_plugin_adds_total'));
      assert.deepEqual(adds, ['istio_cni_plugin_adds_total{outcome="redirected"} 1']);
      assert.equal(await postLog(`${tree.run}/log.sock`, 'not json'), 200);
      await agent.logged('log.sock: request body is not a JSON array of strings');
      const warning = agent.lines
        .flatMap((line) => line.split('\n'))
        .find((line) => line.includes('request body is not a JSON array'));
      assert.equal((JSON.parse(warning ?? '{}') as { level: string }).level, 'warn');
      agent.shutdown('SIGTERM');
      assert.equal(await agent.exitCode(15_000), 0);
    }),
);

test(
  'until the first install is valid, /readyz answers 503 and no repair controller is loaded; then 200, and the repair controller starts',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      const realFs = createNodeFs();
      const { happened: held, fire: installHeld } = latch();
      const { happened: released, fire: releaseInstall } = latch();
      let loads = 0;
      const { happened: started, fire: repairStarted } = latch();
      const agent = startAgent(tree, {
        fs: {
          ...realFs,
          writeFileAtomic: async (file, data, mode) => {
            if (file.endsWith('istio-cni-kubeconfig')) {
              installHeld();
              await released;
            }
            return realFs.writeFileAtomic(file, data, mode);
          },
        },
        loadRepairController: () => {
          loads += 1;
          return Promise.resolve((() => {
            repairStarted();
            return { stop: () => Promise.resolve() };
          }) as unknown as typeof startRepairController);
        },
      });
      await held;
      const port = listeningPort(agent.lines, 'health');
      assert.equal(await httpStatus(port, '/readyz'), 503);
      assert.equal(loads, 0);
      releaseInstall();
      await agent.logged('CNI plugin installed; ready');
      await started;
      assert.equal(loads, 1);
      assert.equal(await httpStatus(port, '/readyz'), 200);
      agent.shutdown('SIGTERM');
      assert.equal(await agent.exitCode(15_000), 0);
    }),
);

test(
  'the health server failing to listen is fatal: exit 1, the port named, nothing installed',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      const agent = startAgent(
        tree,
        {
          startHealthServer: () =>
            Promise.reject(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' })),
        },
        { READINESS_PORT: '8000' },
      );
      assert.equal(await agent.exitCode(15_000), 1);
      assert.ok(agent.lines.some((line) => line.includes('cannot listen on READINESS_PORT 8000')));
      assert.equal(existsSync(`${tree.bin}/istio-cni`), false);
    }),
);

test(
  'at exit: cleanup first, then the repair controller is stopped (its signal aborted), then the servers and last the log sink are closed',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      const events: string[] = [];
      const realFs = createNodeFs();
      let repairSignal: AbortSignal | undefined;
      const { happened: started, fire: repairStarted } = latch();
      const closing =
        <T extends { close(): Promise<void> }>(name: string) =>
        (server: T): T => ({
          ...server,
          close: () => {
            events.push(`close ${name}`);
            return server.close();
          },
        });
      const agent = startAgent(
        tree,
        {
          fs: {
            ...realFs,
            remove: async (file) => {
              if (file.endsWith('/istio-cni')) events.push('remove binary');
              return realFs.remove(file);
            },
          },
          // A free port of its own: MONITORING_PORT only has to be > 0 for a metrics server to start.
          startMetricsServer: (_port, host, render) =>
            startMetricsServer(0, host, render).then(closing('metrics')),
          startHealthServer: (...args) => startHealthServer(...args).then(closing('health')),
          startLogSink: (...args) => startLogSink(...args).then(closing('log sink')),
          loadRepairController: () =>
            Promise.resolve(((_config: unknown, options: { signal: AbortSignal }) => {
              repairSignal = options.signal;
              repairStarted();
              return {
                stop: () => {
                  events.push(`stop repair (aborted: ${String(options.signal.aborted)})`);
                  // A stop that fails is still a stop: no "did not stop in time" warning.
                  return Promise.reject(new Error('watch closed'));
                },
              };
            }) as unknown as typeof startRepairController),
        },
        { MONITORING_PORT: '15014' },
      );
      await started;
      await agent.logged('CNI plugin installed; ready');
      assert.equal(await httpStatus(listeningPort(agent.lines, 'metrics'), '/metrics'), 200);
      assert.ok(agent.lines.some((line) => line.includes('starting install-cni')));
      agent.shutdown('SIGINT');
      assert.equal(await agent.exitCode(15_000), 0);
      assert.deepEqual(events, [
        'remove binary',
        'stop repair (aborted: true)',
        'close metrics',
        'close health',
        'close log sink',
      ]);
      assert.equal(repairSignal?.aborted, true);
      assert.equal(
        agent.lines.some((line) => line.includes('did not stop in time')),
        false,
      );
    }),
);

test(
  'the installer failing (no signal) also aborts the repair controller and stops it before exit 1',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      let killWatch: (error: Error) => void = () => undefined;
      let repairSignal: AbortSignal | undefined;
      let stops = 0;
      const { happened: started, fire: repairStarted } = latch();
      const agent = startAgent(tree, {
        watchDir: (dir, onChange, onError) => {
          killWatch = onError;
          return watchDirectory(dir, onChange, onError);
        },
        loadRepairController: () =>
          Promise.resolve(((_config: unknown, options: { signal: AbortSignal }) => {
            repairSignal = options.signal;
            repairStarted();
            return {
              stop: () => {
                stops += 1;
                return Promise.resolve();
              },
            };
          }) as unknown as typeof startRepairController),
      });
      await started;
      await agent.logged('CNI plugin installed; ready');
      killWatch(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }));
      assert.equal(await agent.exitCode(15_000), 1);
      assert.ok(agent.lines.some((line) => line.includes('installer failed; cleaning up and exiting')));
      assert.equal(repairSignal?.aborted, true);
      assert.equal(stops, 1);
    }),
);

test('a repair controller that finishes loading only after SIGTERM is not started', { timeout: 30_000 }, () =>
  withHostTree(async (tree) => {
    const realFs = createNodeFs();
    const { happened: held, fire: cleanupHeld } = latch();
    const { happened: released, fire: releaseCleanup } = latch();
    let finishLoading: (start: typeof startRepairController) => void = () => undefined;
    const { happened: requested, fire: loadRequested } = latch();
    let starts = 0;
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
      loadRepairController: () => {
        loadRequested();
        return new Promise((resolve) => (finishLoading = resolve));
      },
    });
    await requested;
    agent.shutdown('SIGTERM');
    await held;
    finishLoading((() => {
      starts += 1;
      return { stop: () => Promise.resolve() };
    }) as unknown as typeof startRepairController);
    releaseCleanup();
    assert.equal(await agent.exitCode(15_000), 0);
    assert.equal(starts, 0);
  }),
);

test(
  'a cleanup that hangs is abandoned after 20 s (not before): "cleanup timed out" is logged and the exit code stays 0',
  { timeout: 30_000 },
  (t) =>
    withHostTree(async (tree) => {
      const realFs = createNodeFs();
      const { happened: held, fire: cleanupHeld } = latch();
      const agent = startAgent(tree, {
        fs: {
          ...realFs,
          remove: async (file) => {
            if (file.endsWith('istio-cni-kubeconfig')) {
              cleanupHeld();
              await new Promise<never>(() => undefined);
            }
            return realFs.remove(file);
          },
        },
      });
      await agent.logged('CNI plugin installed; ready');
      let exited: number | undefined;
      t.mock.timers.enable({ apis: ['setTimeout'] });
      agent.shutdown('SIGTERM');
      // Its bound is on the mocked clock too: far past the ticks below.
      const code = agent.exitCode(3_600_000).then((value) => {
        exited = value as number;
        return value;
      });
      await held;
      t.mock.timers.tick(19_999);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(exited, undefined);
      assert.equal(
        agent.lines.some((line) => line.includes('cleanup timed out')),
        false,
      );
      t.mock.timers.tick(1);
      assert.equal(await code, 0);
      assert.ok(agent.lines.some((line) => line.includes('cleanup timed out; exiting')));
    }),
);

test(
  'a failing cleanup step is logged and skips the later steps (the binary stays, as the config no longer names it); exit 0',
  { timeout: 30_000 },
  () =>
    withHostTree(async (tree) => {
      const realFs = createNodeFs();
      const agent = startAgent(tree, {
        fs: {
          ...realFs,
          remove: (file) =>
            file.endsWith('istio-cni-kubeconfig')
              ? Promise.reject(Object.assign(new Error('EBUSY: resource busy'), { code: 'EBUSY' }))
              : realFs.remove(file),
        },
      });
      await agent.logged('CNI plugin installed; ready');
      agent.shutdown('SIGTERM');
      assert.equal(await agent.exitCode(15_000), 0);
      assert.ok(agent.lines.some((line) => line.includes('cleanup failed (later steps skipped')));
      assert.equal(readFileSync(`${tree.net}/10-calico.conflist`, 'utf8').includes('istio-cni'), false);
      assert.equal(existsSync(`${tree.bin}/istio-cni`), true);
    }),
);

test(
  'without a bound of its own, a repair controller that never stops is waited for 5 s, not less, then abandoned',
  { timeout: 30_000 },
  (t) =>
    withHostTree(async (tree) => {
      const { happened: started, fire: repairStarted } = latch();
      const { happened: stopping, fire: stopCalled } = latch();
      const agent = startAgent(tree, {
        loadRepairController: () =>
          Promise.resolve((() => {
            repairStarted();
            return {
              stop: () => {
                stopCalled();
                return new Promise<void>(() => undefined);
              },
            };
          }) as unknown as typeof startRepairController),
      });
      await started;
      await agent.logged('CNI plugin installed; ready');
      t.mock.timers.enable({ apis: ['setTimeout'] });
      let exited = false;
      // Its bound is on the mocked clock too: far past the ticks below.
      const code = agent.exitCode(3_600_000).then((value) => {
        exited = true;
        return value;
      });
      agent.shutdown('SIGTERM');
      await stopping;
      t.mock.timers.tick(4_999);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(exited, false);
      t.mock.timers.tick(1);
      assert.equal(await code, 0);
      assert.ok(agent.lines.some((line) => line.includes('the repair controller did not stop in time')));
    }),
);
