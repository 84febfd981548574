// Plugin start-up (issue 3): the built dist/istio-cni as the runtime runs it, against a static C floor compiled in
// this run (reads stdin, prints one JSON line); both timed by bench/support/spawn-timer.c, interleaved. The run dir
// is a node's: the agent's log sink (src/sys/log-sink.ts) listens on its log.sock, so every ADD ends with the POST
// of its records, as on a node. Rows: VERSION and pass-through ADD median wall and peak RSS (budget ≤ 15 ms,
// ≤ 50 MiB), pass-through with no agent listening (records to the rolling file instead), the cost a pod lookup adds
// over pass-through against a local HTTPS API server (budget ≤ 5 ms; its floor: the same GET, verified against the
// same CA, by a bun executable that does nothing else), and the bundle: size, and a hard failure if a heavy module
// slipped into it.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchRow, BenchSection } from './report.ts';
import { startKubeApiServer } from '../test/support/kube-api-server.ts';
import { startLogSink } from '../src/sys/log-sink.ts';
import { bunCompile } from '../scripts/bun-compile.ts';
import { FORBIDDEN_IN_PLUGIN, forbiddenPackagesIn } from '../scripts/plugin-bundle-budget.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const PLUGIN = path.join(ROOT, 'dist/istio-cni');
const RUNS = 40;

const FLOOR_C = `#include <stdio.h>
int main(void) {
  char buffer[65536];
  while (fread(buffer, 1, sizeof buffer, stdin) > 0) {}
  fputs("{\\"cniVersion\\":\\"1.1.0\\",\\"supportedVersions\\":[\\"1.1.0\\"]}\\n", stdout);
  return 0;
}
`;

/** The lookup's floor: one TLS connection and one GET, the CA verified, as a bun executable built like the plugin.
 * Everything comes from the environment; any failure is a non-zero exit (spawn-timer counts it). */
const GET_FLOOR_JS = `const { HOST, PORT, CA, TOKEN, URL_PATH } = process.env;
const request = "GET " + URL_PATH + " HTTP/1.1\\r\\nHost: " + HOST + ":" + PORT + "\\r\\nAccept: application/json\\r\\n" +
  "Authorization: Bearer " + TOKEN + "\\r\\nUser-Agent: floor\\r\\nConnection: close\\r\\n\\r\\n";
let answer = "";
process.exitCode = 1;
Bun.connect({
  hostname: HOST,
  port: Number(PORT),
  tls: { ca: CA, serverName: HOST, rejectUnauthorized: true },
  socket: {
    handshake(socket, verified) { if (verified) socket.write(request); else socket.end(); },
    data(_socket, data) { answer += new TextDecoder().decode(data); },
    close() { if (answer.startsWith("HTTP/1.1 200")) process.exitCode = 0; },
    error() {},
    connectError() {},
  },
});
`;

interface Invocation {
  readonly binary: string;
  readonly env: Record<string, string>;
  readonly stdin: string;
}

interface Timing {
  /** Median wall time, ms. */
  readonly wallMs: number;
  /** Peak RSS over all runs, MiB. */
  readonly peakRssMiB: number;
}

function gcc(dir: string, name: string, args: string[]): string {
  const output = path.join(dir, name);
  const result = spawnSync('gcc', ['-O2', '-o', output, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`gcc ${name} failed: ${result.stderr}`);
  return output;
}

/** Times all invocations, interleaved, with bench/support/spawn-timer.c (posix_spawn + wait4: the process alone,
 * without Node's own spawn overhead). Throws if any run of ours fails. */
async function timeAll(dir: string, timer: string, invocations: readonly Invocation[]): Promise<Timing[]> {
  const args = invocations.flatMap((invocation, index) => {
    const envFile = path.join(dir, `env-${index}`);
    const stdinFile = path.join(dir, `stdin-${index}`);
    writeFileSync(
      envFile,
      Object.entries(invocation.env)
        .map(([key, value]) => `${key}=${value}\0`)
        .join(''),
    );
    writeFileSync(stdinFile, invocation.stdin);
    return [envFile, stdinFile, invocation.binary];
  });
  // Asynchronous: the API test server answering the lookups lives in this process.
  const { stdout } = await promisify(execFile)(timer, [String(RUNS), ...args], { encoding: 'utf8' });
  return stdout
    .trim()
    .split('\n')
    .map((line, index) => {
      const [wall, rssKiB, failures] = line.split(' ').map(Number);
      if (failures !== 0) throw new Error(`${invocations[index]?.binary} failed ${failures} of ${RUNS} runs`);
      return { wallMs: wall ?? NaN, peakRssMiB: (rssKiB ?? NaN) / 1024 };
    });
}

function bundleRows(): BenchRow[] {
  const meta = JSON.parse(readFileSync(path.join(ROOT, 'build/istio-cni.meta.json'), 'utf8')) as {
    inputs: Record<string, unknown>;
  };
  const inputs = Object.keys(meta.inputs);
  const offenders = forbiddenPackagesIn(inputs);
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
      note: `packages: ${[...packages].sort().join(', ')}; none of ${FORBIDDEN_IN_PLUGIN.join(', ')}`,
    },
    { metric: 'forbidden modules in bundle', value: 0, unit: 'count', budget: 0 },
    {
      metric: 'executable size (dist/istio-cni.d/istio-cni)',
      value: statSync(`${PLUGIN}.d/istio-cni`).size / 1024 / 1024,
      unit: 'MiB',
      note: `with the launcher and the glibc beside it: ${(
        [PLUGIN, ...readdirSync(`${PLUGIN}.d`).map((name) => `${PLUGIN}.d/${name}`)].reduce(
          (sum, file) => sum + statSync(file).size,
          0,
        ) /
        1024 /
        1024
      ).toFixed(1)} MiB`,
    },
  ];
}

export async function runBench(): Promise<BenchSection> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ia-bench-'));
  const api = await startKubeApiServer();
  const runDir = path.join(dir, 'run');
  // Each ADD with the agent listening logs one record: all of them must reach the sink, or the figures are not a
  // node's. The plugin does not wait for the sink's answer, so the last ones may land after the timer is done.
  const expected = 2 * RUNS;
  let relayed = 0;
  let malformed = '';
  let allRelayed: () => void = () => undefined;
  const relayedAll = new Promise<void>((resolve) => (allRelayed = resolve));
  const sink = await startLogSink(
    runDir,
    (records) => {
      relayed += records.length;
      if (relayed >= expected) allRelayed();
    },
    (error) => (malformed = error),
  );
  try {
    writeFileSync(path.join(dir, 'floor.c'), FLOOR_C);
    const floor = gcc(dir, 'floor', ['-static', path.join(dir, 'floor.c')]);
    // The runtime's own start, built as the plugin is: on this shared VM it swings more than a C program does
    // (6–10 ms between runs an hour apart), so the rows also say what the plugin adds on top of it.
    writeFileSync(path.join(dir, 'empty.cjs'), '');
    const emptyBun = path.join(dir, 'empty-bun');
    bunCompile(path.join(dir, 'empty.cjs'), emptyBun, true);
    writeFileSync(path.join(dir, 'get-floor.cjs'), GET_FLOOR_JS);
    const getFloor = path.join(dir, 'get-floor');
    bunCompile(path.join(dir, 'get-floor.cjs'), getFloor, true);
    const apiUrl = new URL(api.url);
    const getFloorEnv = {
      HOST: apiUrl.hostname,
      PORT: apiUrl.port,
      CA: api.caPem,
      TOKEN: api.token,
      URL_PATH: '/api/v1/namespaces/default/pods/plain',
    };
    const timer = gcc(dir, 'spawn-timer', [path.join(ROOT, 'bench/support/spawn-timer.c')]);

    const ca = Buffer.from(api.caPem).toString('base64');
    writeFileSync(
      path.join(runDir, 'istio-cni-kubeconfig'),
      `apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: ${ca}\n    server: ${api.url}\n  name: local\nusers:\n- name: istio-cni\n  user:\n    token: ${api.token}\n`,
    );
    api.upsertPod({
      metadata: { name: 'plain', namespace: 'default' },
      spec: { containers: [{ name: 'app', image: 'app' }] },
    });
    const netconfIn = (agentRunDir: string) =>
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'k8s-pod-network',
        type: 'istio-cni',
        cni_agent_run_dir: agentRunDir,
        exclude_namespaces: ['kube-system'],
        prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] },
      });
    const netconf = netconfIn(runDir);
    const cniEnv = (args: string) => ({
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'bench',
      CNI_NETNS: '/var/run/netns/ia-bench-none',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: args,
    });
    const [floorRun, bunRun, getFloorRun, version, passThrough, noAgent, lookup] = await timeAll(dir, timer, [
      { binary: floor, env: {}, stdin: netconf },
      { binary: emptyBun, env: {}, stdin: netconf },
      { binary: getFloor, env: getFloorEnv, stdin: '' },
      { binary: PLUGIN, env: { CNI_COMMAND: 'VERSION' }, stdin: '' },
      { binary: PLUGIN, env: cniEnv(''), stdin: netconf },
      { binary: PLUGIN, env: cniEnv(''), stdin: netconfIn(path.join(dir, 'run-without-agent')) },
      { binary: PLUGIN, env: cniEnv('K8S_POD_NAMESPACE=default;K8S_POD_NAME=plain'), stdin: netconf },
    ]);
    if (!floorRun || !bunRun || !getFloorRun || !version || !passThrough || !noAgent || !lookup) {
      throw new Error('spawn-timer: missing results');
    }
    const settle = setTimeout(allRelayed, 5000);
    await relayedAll;
    clearTimeout(settle);
    if (relayed < expected || malformed !== '') {
      throw new Error(`log sink got ${relayed} records for ${expected} ADDs ${malformed}`);
    }

    const beyondBun = (wallMs: number) =>
      `${(wallMs - bunRun.wallMs).toFixed(1)} ms beyond an empty bun executable`;
    return {
      title: 'Plugin start-up (dist/istio-cni vs static C, both timed by posix_spawn + wait4)',
      rows: [
        {
          metric: 'empty bun executable median wall (the runtime floor, built with the same options)',
          value: bunRun.wallMs,
          floor: floorRun.wallMs,
          unit: 'ms',
        },
        {
          metric: 'VERSION median wall',
          value: version.wallMs,
          floor: floorRun.wallMs,
          unit: 'ms',
          budget: 15,
          note: beyondBun(version.wallMs),
        },
        {
          metric: 'VERSION peak RSS',
          value: version.peakRssMiB,
          floor: floorRun.peakRssMiB,
          unit: 'MiB',
          budget: 50,
        },
        {
          metric: 'pass-through ADD median wall',
          value: passThrough.wallMs,
          floor: floorRun.wallMs,
          unit: 'ms',
          budget: 15,
          note: `prevResult re-encoded, no pod lookup, its record POSTed to the agent; ${beyondBun(passThrough.wallMs)}`,
        },
        {
          metric: 'pass-through ADD median wall, no agent listening',
          value: noAgent.wallMs,
          floor: floorRun.wallMs,
          unit: 'ms',
          note: 'the record goes to <run dir>/istio-cni.log instead',
        },
        {
          metric: 'pass-through ADD peak RSS',
          value: passThrough.peakRssMiB,
          floor: floorRun.peakRssMiB,
          unit: 'MiB',
          budget: 50,
        },
        {
          metric: 'pod lookup added over pass-through',
          value: Math.max(0, lookup.wallMs - passThrough.wallMs),
          floor: getFloorRun.wallMs - bunRun.wallMs,
          unit: 'ms',
          budget: 5,
          note: `kubeconfig read + TLS + one GET, local HTTPS; whole ADD ${lookup.wallMs.toFixed(1)} ms; floor: the same verified GET by a bun executable doing nothing else, beyond an empty one`,
        },
        {
          metric: 'pod lookup ADD peak RSS',
          value: lookup.peakRssMiB,
          floor: floorRun.peakRssMiB,
          unit: 'MiB',
          budget: 50,
        },
        ...bundleRows(),
      ],
    };
  } finally {
    await sink.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
