// runAgent's shutdown with the real file system, servers and log sink on a temp tree; only the repair controller is
// a stand-in, one whose stop() never returns (an API server that accepted the request and went silent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadAgentConfig } from '../../../src/config/load.ts';
import { runAgent } from '../../../src/installer/run-agent.ts';
import type { startRepairController } from '../../../src/repair/controller.ts';
import { createAgentLogging } from '../../../src/log/agent-logger.ts';
import { createNodeFs } from '../../../src/sys/fs.ts';
import { startHealthServer, startMetricsServer } from '../../../src/sys/http-servers.ts';
import { startLogSink } from '../../../src/sys/log-sink.ts';
import { PrometheusMetrics } from '../../../src/sys/metrics.ts';
import { watchDirectory } from '../../../src/sys/watch.ts';
import { hostTreeEnv, makeHostTree } from '../../support/host-tree.ts';

const TESTDATA = path.resolve(import.meta.dirname, '../../../../shared/conformance/istio-install-testdata');
const CALICO = JSON.stringify({
  name: 'k8s-pod-network',
  cniVersion: '0.3.1',
  plugins: [{ type: 'calico' }],
});

test(
  'SIGTERM with a repair controller that never stops: cleanup runs, the exit is not held past its bound, code 0',
  { timeout: 30_000 },
  async () => {
    const tree = makeHostTree('ic-run-', {
      sources: { 'istio-cni': 'plugin' },
      token: 'token-foo',
      ca: readFileSync(`${TESTDATA}/kube-ca.crt`),
    });
    try {
      writeFileSync(`${tree.net}/10-calico.conflist`, CALICO);
      const config = loadAgentConfig({
        env: {
          KUBERNETES_SERVICE_HOST: '10.110.0.1',
          KUBERNETES_SERVICE_PORT: '443',
          ...hostTreeEnv(tree),
          MONITORING_PORT: '0',
          READINESS_PORT: '0',
          LISTEN_ADDRESS: '127.0.0.1',
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
      const logged = (text: string) =>
        new Promise<void>((resolve) => {
          const check = () => {
            if (lines.some((line) => line.includes(text))) resolve();
          };
          onLine = check;
          check();
        });
      let shutdown: (name: string) => void = () => undefined;
      let repairStarted: () => void = () => undefined;
      const started = new Promise<void>((resolve) => (repairStarted = resolve));
      // Closed by the test too, so that a runAgent that never returns fails this test instead of hanging the run.
      const closables: { close(): Promise<void> }[] = [];
      const tracked = <T extends { close(): Promise<void> }>(started: Promise<T>): Promise<T> =>
        started.then((value) => {
          closables.push(value);
          return value;
        });
      const exited = runAgent(config, {
        logging,
        fs: createNodeFs(),
        metrics: new PrometheusMetrics(),
        watchDir: watchDirectory,
        startMetricsServer: (...args) => tracked(startMetricsServer(...args)),
        startHealthServer: (...args) => tracked(startHealthServer(...args)),
        startLogSink: (...args) => tracked(startLogSink(...args)),
        loadRepairController: () =>
          Promise.resolve((() => {
            repairStarted();
            return { stop: () => new Promise<void>(() => undefined) };
          }) as unknown as typeof startRepairController),
        onShutdownSignal: (listener) => (shutdown = listener),
      });
      await started;
      await logged('CNI plugin installed; ready');
      const signalledAt = Date.now();
      shutdown('SIGTERM');
      let deadline: ReturnType<typeof setTimeout> | undefined;
      const code = await Promise.race([
        exited,
        new Promise<string>((resolve) => {
          deadline = setTimeout(() => resolve('still running after 15 s'), 15_000);
        }),
      ]);
      clearTimeout(deadline);
      if (typeof code === 'string') await Promise.all(closables.map((closable) => closable.close()));
      assert.equal(code, 0);
      const took = Date.now() - signalledAt;
      assert.ok(took >= 4_000 && took < 10_000, `runAgent returned ${took} ms after SIGTERM`);
      assert.ok(lines.some((line) => line.includes('the repair controller did not stop in time')));
      assert.equal(readFileSync(`${tree.net}/10-calico.conflist`, 'utf8').includes('istio-cni'), false);
    } finally {
      tree.remove();
    }
  },
);
