// Node agent (issue 5), running the built dist/install-cni against temp dirs:
//  - start → ready (plugin binary copied — the real dist/istio-cni when built —, conflist merged, kubeconfig
//    written), floor: the same executable's `version` (process start-up alone);
//  - drift repair: another agent atomically rewrites the primary conflist without our entry 100 times, one at a
//    time, waiting for our entry to come back each time; floor: the same write observed through fs.watch alone;
//    the fight must be detected and reported;
//  - steady state: CPU over a few idle seconds and RSS.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { copyPluginInto } from '../test/support/dist.ts';
import { hostTreeEnv, makeHostTree } from '../test/support/host-tree.ts';
import type { BenchSection } from './report.ts';
import { median, percentile } from './report.ts';

const root = path.resolve(import.meta.dirname, '..');
const AGENT = path.join(root, 'dist/install-cni');
const PLUGIN = path.join(root, 'dist/istio-cni');
// The agent's inputs as the agent tests make them (test/support/host-tree.ts, the conformance token and CA), so the
// bench cannot drift from what the agent accepts (a CA without a certificate keeps its entry out).
const TESTDATA = path.resolve(root, '../shared/conformance/istio-install-testdata');
/** Upper bound on any one awaited agent log line: the agent is ready in well under a second. */
const AGENT_LINE_TIMEOUT_MS = 30_000;
const CALICO = `${JSON.stringify({ name: 'k8s-pod-network', cniVersion: '0.3.1', plugins: [{ type: 'calico' }, { type: 'portmap' }] }, null, 2)}\n`;

interface Tree {
  root: string;
  net: string;
  env: Record<string, string>;
}

function makeTree(): Tree {
  const tree = makeHostTree('ic-bench-', {
    sources: { 'istio-cni': '#!/bin/sh\nexit 0\n' },
    token: readFileSync(`${TESTDATA}/token-foo`),
    ca: readFileSync(`${TESTDATA}/kube-ca.crt`),
  });
  // The real plugin when built (a kernel-side copy, as an image layer would hold it).
  if (existsSync(PLUGIN)) copyPluginInto(tree.src);
  writeFileSync(`${tree.net}/10-calico.conflist`, CALICO);
  return {
    root: tree.root,
    net: tree.net,
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      REPAIR_ENABLED: 'false',
      MONITORING_PORT: '0',
      READINESS_PORT: '0',
      LISTEN_ADDRESS: '127.0.0.1',
      ...hostTreeEnv(tree),
    },
  };
}

/** Agents still running, killed if the bench fails half-way (a rejected wait must not leave one behind). */
const running = new Set<ChildProcess>();

function startAgent(tree: Tree): {
  child: ChildProcess;
  waitFor(text: string, timeoutMs?: number): Promise<number>;
} {
  const child = spawn(AGENT, ['--log_as_json'], { env: tree.env, stdio: ['ignore', 'pipe', 'inherit'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let seen = '';
  const waiters: { text: string; resolve: (at: number) => void }[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    seen += chunk;
    const now = performance.now();
    for (const waiter of [...waiters]) {
      if (seen.includes(waiter.text)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(now);
      }
    }
  });
  return {
    child,
    waitFor: (text, timeoutMs = AGENT_LINE_TIMEOUT_MS) =>
      new Promise((resolve, reject) => {
        if (seen.includes(text)) {
          resolve(performance.now());
          return;
        }
        const waiter = {
          text,
          resolve: (at: number) => {
            clearTimeout(timer);
            resolve(at);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`agent did not log "${text}" within ${timeoutMs} ms; its output:\n${seen}`));
        }, timeoutMs);
        waiters.push(waiter);
      }),
  };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

/** Atomically replaces `file` with `content` and resolves when `done(text)` holds, observed through fs.watch. */
function rewriteAndWait(
  dir: string,
  file: string,
  content: string,
  done: (text: string) => boolean,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`${file}: the expected content did not appear within ${AGENT_LINE_TIMEOUT_MS} ms`));
    }, AGENT_LINE_TIMEOUT_MS);
    const check = (): boolean => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        return false;
      }
      if (!done(text)) return false;
      clearTimeout(timer);
      watcher.close();
      resolve(performance.now() - start);
      return true;
    };
    const watcher = watch(dir, () => void check());
    writeFileSync(`${file}.tmp.bench`, content);
    renameSync(`${file}.tmp.bench`, file);
    check();
  });
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) / 1024;
}

export async function runBench(): Promise<BenchSection> {
  try {
    return await measure();
  } finally {
    for (const child of running) child.kill('SIGKILL');
  }
}

async function measure(): Promise<BenchSection> {
  // Floor for start: the executable's own start-up.
  const versionRuns: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    spawnSync(AGENT, ['version']);
    versionRuns.push(performance.now() - start);
  }
  const startRuns: number[] = [];
  for (let i = 0; i < 5; i++) {
    const tree = makeTree();
    const start = performance.now();
    const agent = startAgent(tree);
    const readyAt = await agent.waitFor('CNI plugin installed; ready');
    startRuns.push(readyAt - start);
    await stop(agent.child);
    rmSync(tree.root, { recursive: true, force: true });
  }

  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  const agent = startAgent(tree);
  await agent.waitFor('CNI plugin installed; ready');
  const pid = agent.child.pid!;
  const repairs: number[] = [];
  for (let i = 0; i < 100; i++) {
    repairs.push(await rewriteAndWait(tree.net, file, CALICO, (text) => text.includes('"istio-cni"')));
  }
  const fightReported = await agent.waitFor('another agent is fighting over it', 2000).then(
    () => 1,
    () => 0,
  );
  // Floor: the same atomic rewrite, observed through fs.watch, with nobody repairing.
  const floorDir = mkdtempSync(path.join(tmpdir(), 'ic-bench-floor-'));
  const floors: number[] = [];
  for (let i = 0; i < 100; i++) {
    floors.push(
      await rewriteAndWait(floorDir, `${floorDir}/x.conflist`, `${CALICO}${i}`, (t) => t.endsWith(`${i}`)),
    );
  }
  rmSync(floorDir, { recursive: true, force: true });

  // Idle: let the throttle settle, then measure CPU over 3 s.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const ticksBefore = cpuTicks(pid);
  const idleStart = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const idleCpu = ((cpuTicks(pid) - ticksBefore) * 10 * 100) / (performance.now() - idleStart);
  const rss = rssMiB(pid);
  await stop(agent.child);
  rmSync(tree.root, { recursive: true, force: true });

  return {
    title: 'Node agent (dist/install-cni)',
    rows: [
      {
        metric: 'start → ready median',
        value: median(startRuns),
        unit: 'ms',
        floor: median(versionRuns),
        budget: 1000,
        note: `5 runs; plugin binary ${existsSync(PLUGIN) ? 'dist/istio-cni' : 'stub'}`,
      },
      {
        metric: 'drift repair p50',
        value: median(repairs),
        unit: 'ms',
        floor: median(floors),
        budget: 50,
        note: '100 rewrites',
      },
      {
        metric: 'drift repair p99',
        value: percentile(repairs, 99),
        unit: 'ms',
        floor: percentile(floors, 99),
        budget: 250,
      },
      {
        metric: 'fight detected and reported',
        value: fightReported,
        unit: 'count',
        note: 'warning logged (1 = yes)',
      },
      { metric: 'idle CPU', value: idleCpu, unit: '%', budget: 1, note: '3 s, after the fight' },
      { metric: 'RSS', value: rss, unit: 'MiB', budget: 80 },
    ],
  };
}
