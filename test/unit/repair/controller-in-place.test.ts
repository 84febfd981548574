// In-place repair (REPAIR_REPAIR_PODS) with a stand-in API client and a recording Exec: which backend and binaries
// the rules are programmed with, that no speculative restore runs ahead of the probe in a pod carrying traffic, and
// that a host-network pod is refused before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync, statSync } from 'node:fs';
import { pino } from 'pino';
import { loadAgentConfig } from '../../../src/config/load.ts';
import { startRepairController } from '../../../src/repair/controller.ts';
import { PrometheusMetrics } from '../../../src/sys/metrics.ts';
import type { Exec, ExecRequest, ExecResult } from '../../../src/sys/ports.ts';
import { fakeRepairClient } from '../../support/fake-repair-client.ts';
import { brokenPodManifest } from '../../support/repair-pods.ts';

const PROBE_OUTPUT = [
  '==> /proc/net/ip_tables_names <==',
  '==> /proc/net/ip6_tables_names <==',
  '==> /proc/net/if_inet6 <==',
  '==> /proc/net/fib_trie <==',
  'Main:',
  '  +-- 0.0.0.0/0 3 0 5',
  '     |-- 10.0.0.9',
  '        /32 host LOCAL',
  '',
].join('\n');

/** `readlink` of a path, or undefined when it names nothing (a closed descriptor). */
function linkOf(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

class ProbeAnsweringExec implements Exec {
  readonly requests: ExecRequest[] = [];
  /** What each request's netns path named while the command ran. */
  readonly netnsAtRun: (string | undefined)[] = [];
  run(request: ExecRequest): Promise<ExecResult> {
    this.requests.push(request);
    this.netnsAtRun.push(request.netns === undefined ? undefined : linkOf(request.netns));
    return Promise.resolve({
      exitCode: 0,
      stdout: request.argv[0] === 'head' ? PROBE_OUTPUT : '',
      stderr: '',
    });
  }
}

function brokenPod(hostNetwork = false): object {
  const manifest = brokenPodManifest({ name: 'app', namespace: 'ns', nodeName: 'n1', podIp: '10.0.0.9' });
  return { ...manifest, spec: { ...(manifest['spec'] as object), hostNetwork } };
}

const OWN_NETNS = '/proc/self/ns/net';

function ownNetnsId(): string {
  return `net:[${statSync(OWN_NETNS).ino}]`;
}

/** Repairs one broken pod in place with `env` on top of the defaults; returns the commands and the log lines. */
async function repairOnce(env: Record<string, string>, pod = brokenPod()) {
  const config = loadAgentConfig({
    env: {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: '1',
      NODE_NAME: 'n1',
      REPAIR_REPAIR_PODS: 'true',
      ...env,
    },
    flags: {},
    mode: 'agent',
  });
  const lines: string[] = [];
  let settled: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (settled = resolve));
  const logger = pino(
    {},
    {
      write: (line: string) => {
        lines.push(line);
        if (/programmed redirect rules in pod netns|giving up on pod/.test(line)) settled();
      },
    },
  );
  // The plugin's own netns stands in for the pod's: it is only opened and pinned, never written (the Exec records).
  const own = OWN_NETNS;
  const exec = new ProbeAnsweringExec();
  const { client, release } = fakeRepairClient([pod], () => undefined);
  const controller = startRepairController(config, {
    logger,
    metrics: new PrometheusMetrics(),
    signal: new AbortController().signal,
    client,
    exec,
    retryInitialMs: 1,
    findNetns: () => Promise.resolve({ pid: process.pid, netnsPath: own, netnsId: ownNetnsId() }),
  });
  release();
  await done;
  await controller.stop();
  return {
    commands: exec.requests.map((request) => request.argv[0]),
    lines,
    netns: exec.requests.map((request) => request.netns),
    netnsAtRun: exec.netnsAtRun,
  };
}

test('in place, iptables: the probe runs first (no speculative restore in a live pod), then iptables-nft-restore', async () => {
  const { commands } = await repairOnce({});
  assert.equal(commands[0], 'head');
  assert.ok(commands.includes('iptables-nft-restore'), commands.join(', '));
});

test('in place with FORCE_IPTABLES_BINARY=legacy: the legacy restore is used', async () => {
  const { commands } = await repairOnce({ FORCE_IPTABLES_BINARY: 'legacy' });
  assert.ok(commands.includes('iptables-legacy-restore'), commands.join(', '));
  assert.equal(commands.includes('iptables-nft-restore'), false);
});

test('in place with NATIVE_NFTABLES: one nft transaction, no iptables', async () => {
  const { commands } = await repairOnce({ NATIVE_NFTABLES: 'true' });
  assert.ok(commands.includes('nft'), commands.join(', '));
  assert.equal(
    commands.some((command) => command?.startsWith('iptables')),
    false,
  );
});

test('a host-network pod is refused before anything runs: its IP is the node', async () => {
  const { commands, lines } = await repairOnce({}, brokenPod(true));
  assert.deepEqual(commands, []);
  assert.ok(lines.some((line) => line.includes('host-network pod: refusing to program rules')));
});

test('rules go into the found netns through a descriptor held open on it (not the scanned path), closed afterwards', async () => {
  const { commands, netns, netnsAtRun } = await repairOnce({});
  const paths = [...new Set(netns)];
  assert.equal(paths.length, 1, JSON.stringify(netns));
  const [pinned = ''] = paths;
  // A PID reused half-way through must not redirect a command: no command names the netns by the scanned path.
  assert.notEqual(pinned, OWN_NETNS);
  assert.deepEqual(
    netnsAtRun,
    commands.map(() => ownNetnsId()),
  );
  // Once the rules are programmed the descriptor is closed: a repair leaks none.
  assert.notEqual(linkOf(pinned), ownNetnsId());
});
