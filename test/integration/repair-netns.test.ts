// privileged: in-place repair proven in a real network namespace. A process holds the pod IP in a netns we make;
// the controller (API test server for the pod, the real /proc for the scan, SpawnExec for iptables) finds it,
// programs the plugin's rules, and a real connection from inside the pod is redirected to the proxy port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { startKubeApiServer, type KubeObject } from '../support/kube-api-server.ts';
import { authorizerFor } from '../support/rbac.ts';
import { connectFrom, createPodPair, startOrigDstServer } from '../support/netns.ts';
import { brokenPodManifest } from '../support/repair-pods.ts';
import {
  controllerConfig,
  RecordingMetrics,
  serviceAccountDir,
  capturingLogger,
} from '../support/repair-harness.ts';
import { startRepairController } from '../../src/repair/controller.ts';
import { REPAIRED_METRIC } from '../../src/repair/reconcile.ts';
import { findPodNetns, pinNetns } from '../../src/sys/proc-netns.ts';
import { ExecError } from '../../src/errors.ts';
import { readlink, stat } from 'node:fs/promises';
import { SpawnExec } from '../../src/sys/spawn-exec.ts';

test('privileged: repair in place finds the pod netns by IP in /proc, programs rules, traffic is redirected', async () => {
  const pair = await createPodPair({ prefix: 'if' });
  const pause = spawn('nsenter', [`--net=${pair.pod.path}`, 'sleep', '600'], { stdio: 'ignore' });
  const spawned = new Promise<void>((resolve, reject) => {
    pause.once('spawn', resolve);
    pause.once('error', reject);
  });
  const server = await startKubeApiServer({ authorize: authorizerFor('base') });
  const sa = await serviceAccountDir(server);
  let proxy: { stop(): void } | undefined;
  let controller: ReturnType<typeof startRepairController> | undefined;
  try {
    await spawned;
    proxy = await startOrigDstServer(pair.pod.path, { tcp: [15001, 15006] });
    // Before the repair the pod's outbound traffic is not captured: nothing listens on the peer's port 80.
    assert.match(await connectFrom(pair.pod.path, pair.peer.ip, 80), /^error/);

    // The scan finds the oldest process of the pod netns (our "pause"), not the proxy started after it. Its
    // nsenter parent execs sleep in place, so the pid is the same.
    const found = await findPodNetns({ procRoot: '/proc', podIp: pair.pod.ip });
    assert.equal(found.pid, pause.pid);
    // Pinned: the fd path names the scanned namespace, and one that is no longer the scanned one is refused.
    const pinned = await pinNetns(found);
    try {
      assert.equal(await readlink(pinned.path), found.netnsId);
      assert.equal(`net:[${(await stat(pinned.path)).ino}]`, found.netnsId);
    } finally {
      await pinned.close();
    }
    await assert.rejects(
      pinNetns({ ...found, netnsPath: pair.peer.path }),
      (error: unknown) =>
        error instanceof ExecError && error.code === 'NETNS' && /is net:\[\d+\] now/.test(error.message),
    );

    server.upsertPod(brokenPodManifest({ name: 'app', podIp: pair.pod.ip }) as KubeObject);
    const metrics = new RecordingMetrics();
    const log = capturingLogger();
    controller = startRepairController(
      // The agent's ISTIO_OUTBOUND_* environment shapes the rules, as the plugin's does for it (§2.8 step 2).
      controllerConfig(
        server,
        sa.dir,
        { repairPods: true, deletePods: true, hostProcDir: '/proc' },
        { outboundCaptureEnv: { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '4242' } },
      ),
      {
        logger: log.logger,
        metrics,
        signal: AbortSignal.timeout(25_000),
        exec: new SpawnExec(),
      },
    );
    await metrics.waitFor(REPAIRED_METRIC, { type: 'repair', result: 'success' });
    assert.equal(
      controller.reconciler?.repaired.get('default/app'),
      server.getPod('default', 'app')?.metadata.uid,
    );
    assert.ok(server.getPod('default', 'app'), 'repair mode wins over delete');
    await controller.reconciler?.events.idle();
    assert.equal(
      server.events.find((event) => event['reason'] === 'RepairBrokenPod')?.['message'],
      'pod detected as broken, repaired in place',
    );

    assert.match(
      execFileSync('nsenter', [`--net=${pair.pod.path}`, 'iptables-nft-save', '-t', 'nat'], {
        encoding: 'utf8',
      }),
      /^-A ISTIO_OUTPUT -m owner --gid-owner 4242 -j RETURN$/m,
    );
    // A real connection from inside the pod is now redirected to the outbound listener (15001), keeping its
    // original destination.
    assert.equal(await connectFrom(pair.pod.path, pair.peer.ip, 80), `15001 ${pair.peer.ip} 80`);

    // Another update of the same pod (same UID) is reconciled and not repaired twice.
    const current = server.getPod('default', 'app');
    assert.ok(current);
    const before = log.records.length;
    server.upsertPod({ ...current, metadata: { ...current.metadata, labels: { touched: 'yes' } } });
    await log.waitFor('pod already repaired', before);
    await controller.stop();
    controller = undefined;
    assert.equal(metrics.get(REPAIRED_METRIC, { type: 'repair', result: 'success' }), 1);
    assert.equal(metrics.get(REPAIRED_METRIC, { type: 'repair', result: 'fail' }), 0);
  } finally {
    await controller?.stop();
    proxy?.stop();
    pause.kill('SIGKILL');
    await server.close();
    await sa[Symbol.asyncDispose]();
    await pair.destroy();
  }
});
