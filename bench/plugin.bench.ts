// Plugin start-up (issue 3): the built dist/istio-cni as the runtime runs it, against a static C floor compiled in
// this run (reads stdin, prints one JSON line). Rows: VERSION and pass-through ADD median wall and peak RSS
// (budget ≤ 15 ms, ≤ 50 MiB), the cost a pod lookup adds over pass-through against a local HTTPS API server
// (budget ≤ 5 ms), and the bundle: size, and a hard failure if a heavy module slipped into it.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchRow, BenchSection } from './report.ts';
import { median } from './report.ts';
import { startKubeApiServer } from '../test/support/kube-api-server.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const PLUGIN = path.join(ROOT, 'dist/istio-cni');
const RUNS = 30;
const FORBIDDEN = ['@kubernetes/client-node', 'chokidar', 'commander', 'execa'];

const FLOOR_C = `#include <stdio.h>
int main(void) {
  char buffer[65536];
  while (fread(buffer, 1, sizeof buffer, stdin) > 0) {}
  fputs("{\\"cniVersion\\":\\"1.1.0\\",\\"supportedVersions\\":[\\"1.1.0\\"]}\\n", stdout);
  return 0;
}
`;

interface Invocation {
  readonly env: Record<string, string>;
  readonly stdin: string;
}

function timeOnce(binary: string, invocation: Invocation): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(binary, [], { env: invocation.env, stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', reject);
    child.on('close', (code) => {
      const elapsed = performance.now() - start;
      if (code === 0) resolve(elapsed);
      else reject(new Error(`${binary} exited ${code}`));
    });
    child.stdin.end(invocation.stdin);
  });
}

/** Peak RSS (MiB) through /usr/bin/time -f %M (KiB). */
function peakRss(binary: string, invocation: Invocation): number {
  const result = spawnSync('/usr/bin/time', ['-f', '%M', binary], {
    env: invocation.env,
    input: invocation.stdin,
    encoding: 'utf8',
  });
  const lines = result.stderr.trim().split('\n');
  return Number(lines.at(-1)) / 1024;
}

/** Interleaved runs (floor, ours, floor, ours…) so drift hits both. */
async function compare(
  floor: string,
  invocation: Invocation,
  floorInvocation: Invocation,
): Promise<{ ours: number; floor: number }> {
  const ours: number[] = [];
  const base: number[] = [];
  await timeOnce(PLUGIN, invocation); // warm the page cache
  for (let index = 0; index < RUNS; index += 1) {
    base.push(await timeOnce(floor, floorInvocation));
    ours.push(await timeOnce(PLUGIN, invocation));
  }
  return { ours: median(ours), floor: median(base) };
}

function bundleRows(): BenchRow[] {
  const meta = JSON.parse(readFileSync(path.join(ROOT, 'build/istio-cni.meta.json'), 'utf8')) as {
    inputs: Record<string, unknown>;
  };
  const inputs = Object.keys(meta.inputs);
  const offenders = FORBIDDEN.filter((name) =>
    inputs.some((input) => input.includes(`node_modules/${name}/`)),
  );
  if (offenders.length > 0) {
    throw new Error(`plugin bundle contains forbidden modules: ${offenders.join(', ')}`);
  }
  const packages = new Set(
    inputs.flatMap((input) => {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
      return match?.[1] === undefined ? [] : [match[1]];
    }),
  );
  return [
    {
      metric: 'bundle size (build/istio-cni.cjs)',
      value: statSync(path.join(ROOT, 'build/istio-cni.cjs')).size / 1024,
      unit: 'KiB',
      note: `packages: ${[...packages].sort().join(', ')}; none of ${FORBIDDEN.join(', ')}`,
    },
    { metric: 'forbidden modules in bundle', value: 0, unit: 'count', budget: 0 },
    { metric: 'executable size (dist/istio-cni)', value: statSync(PLUGIN).size / 1024 / 1024, unit: 'MiB' },
  ];
}

export async function runBench(): Promise<BenchSection> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ia-bench-'));
  const api = await startKubeApiServer();
  try {
    writeFileSync(path.join(dir, 'floor.c'), FLOOR_C);
    const floor = path.join(dir, 'floor');
    const gcc = spawnSync('gcc', ['-O2', '-static', '-o', floor, path.join(dir, 'floor.c')], {
      encoding: 'utf8',
    });
    if (gcc.status !== 0) throw new Error(`gcc failed: ${gcc.stderr}`);

    const runDir = path.join(dir, 'run');
    spawnSync('mkdir', ['-p', runDir]);
    const ca = Buffer.from(api.caPem).toString('base64');
    writeFileSync(
      path.join(runDir, 'istio-cni-kubeconfig'),
      `apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: ${ca}\n    server: ${api.url}\n  name: local\nusers:\n- name: istio-cni\n  user:\n    token: ${api.token}\n`,
    );
    api.upsertPod({
      metadata: { name: 'plain', namespace: 'default' },
      spec: { containers: [{ name: 'app', image: 'app' }] },
    });
    const netconf = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      type: 'istio-cni',
      cni_agent_run_dir: runDir,
      exclude_namespaces: ['kube-system'],
      prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] },
    });
    const cniEnv = (args: string) => ({
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'bench',
      CNI_NETNS: '/var/run/netns/ia-bench-none',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: args,
    });
    const version: Invocation = { env: { CNI_COMMAND: 'VERSION' }, stdin: '' };
    const passThrough: Invocation = { env: cniEnv(''), stdin: netconf };
    const lookup: Invocation = {
      env: cniEnv('K8S_POD_NAMESPACE=default;K8S_POD_NAME=plain'),
      stdin: netconf,
    };
    const floorInvocation: Invocation = { env: {}, stdin: netconf };

    const versionWall = await compare(floor, version, floorInvocation);
    const addWall = await compare(floor, passThrough, floorInvocation);
    const lookupWall = await compare(floor, lookup, floorInvocation);
    const floorRss = peakRss(floor, floorInvocation);
    const rss = (invocation: Invocation) => median([1, 2, 3, 4, 5].map(() => peakRss(PLUGIN, invocation)));

    return {
      title: 'Plugin start-up (dist/istio-cni vs static C)',
      rows: [
        {
          metric: 'VERSION median wall',
          value: versionWall.ours,
          floor: versionWall.floor,
          unit: 'ms',
          budget: 15,
        },
        { metric: 'VERSION peak RSS', value: rss(version), floor: floorRss, unit: 'MiB', budget: 50 },
        {
          metric: 'pass-through ADD median wall',
          value: addWall.ours,
          floor: addWall.floor,
          unit: 'ms',
          budget: 15,
          note: 'prevResult re-encoded, no pod lookup',
        },
        {
          metric: 'pass-through ADD peak RSS',
          value: rss(passThrough),
          floor: floorRss,
          unit: 'MiB',
          budget: 50,
        },
        {
          metric: 'pod lookup added over pass-through',
          value: Math.max(0, lookupWall.ours - addWall.ours),
          unit: 'ms',
          budget: 5,
          note: `kubeconfig read + TLS + one GET, local HTTPS; whole ADD ${lookupWall.ours.toFixed(1)} ms`,
        },
        { metric: 'pod lookup ADD peak RSS', value: rss(lookup), floor: floorRss, unit: 'MiB', budget: 50 },
        ...bundleRows(),
      ],
    };
  } finally {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
