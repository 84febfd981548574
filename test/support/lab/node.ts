// A whole test node: the containerd lab + the Kubernetes API test server + our agent (dist/install-cni) run the
// way the DaemonSet runs it (env pointing at the lab's CNI dirs and the API, a service-account dir with token + CA).
// Shared by the e2e tests, the demo and the e2e bench.
/* eslint-disable @typescript-eslint/no-explicit-any -- containerd's and the conflist's JSON are read loosely */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { KubeApiServer, KubeObject } from '../kube-api-server.ts';
import { authorizerFor } from '../rbac.ts';
import { startKubeApiServer } from '../kube-api-server.ts';
import { ORIG_DST_SERVER, PYTHON } from '../netns.ts';
import type { Lab, LabPod, RunResult } from './lab.ts';
import { repoRoot, run, startLab } from './lab.ts';
import { copyPluginInto } from '../dist.ts';

export const NODE_NAME = 'lab-node';
export const AGENT_NAMESPACE = 'istio-system';
const probeScript = ORIG_DST_SERVER;
const python = PYTHON;

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function httpStatus(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: urlPath, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export type Agent = {
  readonly process: ChildProcess;
  runDir: string;
  saDir: string;
  readinessPort: number;
  logs(): string;
  /** Resolves once the agent's output after `fromOffset` (default: everything so far is skipped) holds `text`;
   * rejects when the agent exits or the time is up. */
  waitForOutput(text: string, options?: { fromOffset?: number; timeoutMs?: number }): Promise<void>;
  ready(): Promise<boolean>;
  waitReady(timeoutMs?: number): Promise<void>;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
};

export type AgentOptions = {
  env?: Record<string, string>;
  name?: string;
  /** false: return once the agent process runs, without waiting for /readyz */
  waitReady?: boolean;
};

/** The CNI chain containerd has loaded (plugin types of the node network), from CRI Status. */
export async function loadedChain(lab: Lab): Promise<string[]> {
  const status = await lab.cri.status();
  const config = JSON.parse(status.info.cniconfig ?? '{}');
  const networks: any[] = config.Networks ?? [];
  const node = networks.find((n) => n.Config?.Name !== 'cni-loopback');
  return (node?.Config?.Plugins ?? []).map((p: any) => p.Network?.type as string);
}

export function conflistPluginTypes(lab: Lab): string[] {
  const file = path.join(lab.confDir, lab.conflistName);
  if (!existsSync(file)) return [];
  const parsed = JSON.parse(readFileSync(file, 'utf8'));
  return (parsed.plugins ?? []).map((p: any) => p.type as string);
}

export type TestNode = {
  lab: Lab;
  api: KubeApiServer;
  saDir: string;
  agent: Agent | undefined;
  startAgent(options?: AgentOptions): Promise<Agent>;
  /** Waits until containerd runs a chain with (or without) istio-cni. */
  waitForChain(withIstio: boolean, timeoutMs?: number): Promise<void>;
  /** kubelet-style token rotation: the projected volume swaps the token file; the API accepts only the new one. */
  rotateToken(): string;
  /** Puts the pod into the API (bound to this node) and creates its sandbox through CRI. */
  createPod(manifest: KubeObject, options?: { attempt?: number; register?: boolean }): Promise<LabPod>;
  natRules(pod: LabPod): Promise<string>;
  /** SO_ORIGINAL_DST listeners on 15001/15006 inside the pod (engineer B's orig-dst-server.py); a connection
   * answers "<port that answered> <original ip> <original port>". */
  startProbe(pod: LabPod): Promise<() => void>;
  /** A plain server on 0.0.0.0:<port> in the node netns (the "real destination"). */
  startNodeServer(port: number): Promise<() => void>;
  connectFromPod(pod: LabPod, host: string, port: number, uid?: number): Promise<RunResult>;
  connectFromNode(host: string, port: number): Promise<RunResult>;
  close(): Promise<void>;
};

export function injectedAnnotations(extra: Record<string, string> = {}): Record<string, string> {
  return {
    'sidecar.istio.io/status': JSON.stringify({
      initContainers: null,
      containers: ['istio-proxy'],
      volumes: ['istio-envoy', 'istio-data', 'istio-podinfo', 'istio-token', 'istiod-ca-cert'],
      imagePullSecrets: null,
      revision: 'default',
    }),
    'kubectl.kubernetes.io/default-container': 'app',
    'traffic.sidecar.istio.io/excludeInboundPorts': '15020',
    'traffic.sidecar.istio.io/includeInboundPorts': '*',
    'traffic.sidecar.istio.io/includeOutboundIPRanges': '*',
    'status.sidecar.istio.io/port': '15020',
    ...extra,
  };
}

/** A pod as the sidecar injector leaves it: app + istio-proxy (uid/gid 1337) + the status annotation. */
export function meshedPod(
  namespace: string,
  name: string,
  options: {
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    proxyEnv?: Record<string, string>;
  } = {},
): KubeObject {
  return {
    metadata: {
      namespace,
      name,
      uid: randomUUID(),
      labels: { app: name, 'security.istio.io/tlsMode': 'istio', ...options.labels },
      annotations: injectedAnnotations(options.annotations),
    },
    spec: {
      nodeName: NODE_NAME,
      containers: [
        { name: 'app', image: 'app:1', ports: [{ containerPort: 9080 }] },
        {
          name: 'istio-proxy',
          image: 'proxyv2:1',
          args: ['proxy', 'sidecar', '--domain', `${namespace}.svc.cluster.local`],
          env: Object.entries(options.proxyEnv ?? {}).map(([key, value]) => ({ name: key, value })),
          securityContext: { runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true },
        },
      ],
    },
    status: { phase: 'Pending' },
  };
}

export function plainPod(namespace: string, name: string): KubeObject {
  return {
    metadata: { namespace, name, uid: randomUUID(), labels: { app: name } },
    spec: { nodeName: NODE_NAME, containers: [{ name: 'app', image: 'app:1' }] },
    status: { phase: 'Pending' },
  };
}

export async function startNode(
  options: { startAgent?: boolean; agent?: AgentOptions; primaryConflist?: boolean } = {},
): Promise<TestNode> {
  const lab = await startLab(options.primaryConflist === false ? { primaryConflist: false } : {});
  let api: KubeApiServer | undefined;
  try {
    // On the host end of the node's link: the agent (host netns) and the plugin (node netns) use one URL.
    // The RBAC our base manifests grant the istio-cni service account: a call they do not allow fails here as in a cluster.
    api = await startKubeApiServer({ host: lab.hostAddress, authorize: authorizerFor('base') });
    api.upsertNode({
      metadata: { name: NODE_NAME, labels: { 'kubernetes.io/hostname': NODE_NAME } },
      spec: {},
    });
    for (const ns of ['default', AGENT_NAMESPACE, 'kube-system']) api.upsertNamespace(ns);
    const saDir = path.join(lab.root, 'serviceaccount');
    mkdirSync(saDir, { recursive: true });
    writeFileSync(path.join(saDir, 'token'), api.token);
    writeFileSync(path.join(saDir, 'ca.crt'), api.caPem);
    writeFileSync(path.join(saDir, 'namespace'), AGENT_NAMESPACE);
    const srcBin = path.join(lab.root, 'agent-src-bin');
    mkdirSync(srcBin, { recursive: true });
    copyPluginInto(srcBin);
    const node = makeNode(lab, api, saDir, srcBin);
    if (options.startAgent !== false) {
      await node.startAgent(options.agent);
    }
    return node;
  } catch (error) {
    await api?.close();
    await lab.close();
    throw error;
  }
}

function makeNode(lab: Lab, api: KubeApiServer, saDir: string, srcBin: string): TestNode {
  const cleanups: Array<() => void> = [];
  let tokenGeneration = 0;

  const node: TestNode = {
    lab,
    api,
    saDir,
    agent: undefined,
    async startAgent(options = {}) {
      const runDir = path.join(lab.root, 'agent-run');
      mkdirSync(runDir, { recursive: true });
      const readinessPort = await freePort();
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        MOUNTED_CNI_NET_DIR: lab.confDir,
        CNI_BIN_SOURCE_DIR: srcBin,
        CNI_BIN_TARGET_DIRS: lab.binDir,
        CNI_AGENT_RUN_DIR: runDir,
        SERVICE_ACCOUNT_DIR: saDir,
        KUBERNETES_SERVICE_HOST: api.host,
        KUBERNETES_SERVICE_PORT: String(api.port),
        KUBERNETES_SERVICE_PROTOCOL: 'https',
        KUBE_CA_FILE: path.join(saDir, 'ca.crt'),
        READINESS_PORT: String(readinessPort),
        MONITORING_PORT: '0',
        REPAIR_ENABLED: 'false',
        CHAINED_CNI_PLUGIN: 'true',
        EXCLUDE_NAMESPACES: 'kube-system',
        POD_NAMESPACE: AGENT_NAMESPACE,
        POD_NAME: options.name ?? 'istio-cni-node-lab01',
        NODE_NAME,
        POD_LOOKUP_DEADLINE_SECONDS: '3',
        ...options.env,
      };
      const logFile = path.join(lab.root, `agent-${Date.now()}.log`);
      const child = spawn(path.join(repoRoot, 'dist', 'install-cni'), ['--log_output_level=default:info'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      const outputListeners = new Set<() => void>();
      const collect = (chunk: Buffer): void => {
        output += chunk.toString('utf8');
        writeFileSync(logFile, output);
        for (const listener of outputListeners) listener();
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const agent: Agent = {
        process: child,
        runDir,
        saDir,
        readinessPort,
        logs: () => output,
        waitForOutput(text, { fromOffset = 0, timeoutMs = 20_000 } = {}) {
          return new Promise<void>((resolve, reject) => {
            const check = (): void => {
              if (output.indexOf(text, fromOffset) !== -1) finish();
              else if (child.exitCode !== null || child.signalCode !== null) {
                finish(new Error(`agent exited ${child.exitCode} before "${text}": ${output.slice(-2000)}`));
              }
            };
            const timer = setTimeout(
              () =>
                finish(
                  new Error(`timed out after ${timeoutMs} ms waiting for "${text}": ${output.slice(-2000)}`),
                ),
              timeoutMs,
            );
            function finish(error?: Error): void {
              clearTimeout(timer);
              outputListeners.delete(check);
              child.off('exit', check);
              if (error === undefined) resolve();
              else reject(error);
            }
            outputListeners.add(check);
            child.on('exit', check);
            check();
          });
        },
        ready: async () => (await httpStatus(readinessPort, '/readyz')) === 200,
        async waitReady(timeoutMs = 20_000) {
          // Event-driven: every transition to ready logs this line; look only at output from now on.
          const from = output.length;
          if ((await httpStatus(readinessPort, '/readyz')) === 200) return;
          await agent.waitForOutput('CNI plugin installed; ready', { fromOffset: from, timeoutMs });
          assert.equal(await httpStatus(readinessPort, '/readyz'), 200, 'ready after "installed; ready"');
        },
        async stop(signal = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      };
      cleanups.push(() => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      node.agent = agent;
      if (options.waitReady !== false) await agent.waitReady();
      return agent;
    },
    async waitForChain(withIstio, timeoutMs = 15_000) {
      await waitFor(
        `containerd to load a chain ${withIstio ? 'with' : 'without'} istio-cni`,
        async () => (await loadedChain(lab)).includes('istio-cni') === withIstio,
        timeoutMs,
      );
    },
    rotateToken() {
      tokenGeneration++;
      const token = `rotated-${tokenGeneration}-${randomUUID()}`;
      const tmp = path.join(saDir, `..token.tmp`);
      writeFileSync(tmp, token);
      renameSync(tmp, path.join(saDir, 'token'));
      api.token = token;
      return token;
    },
    async createPod(manifest, options = {}) {
      if (options.register !== false) api.upsertPod(manifest);
      const uid = manifest.metadata.uid ?? randomUUID();
      return lab.runPod({
        name: manifest.metadata.name,
        namespace: manifest.metadata.namespace ?? 'default',
        uid,
        attempt: options.attempt ?? 0,
        labels: manifest.metadata.labels ?? {},
        annotations: manifest.metadata.annotations ?? {},
      });
    },
    async natRules(pod) {
      const nft = await lab.podExec(pod, ['iptables-nft-save', '-t', 'nat']);
      const legacy = await lab.podExec(pod, ['iptables-legacy-save', '-t', 'nat']);
      return `${nft.stdout}${legacy.stdout}`;
    },
    async startProbe(pod) {
      const child = spawn(
        'nsenter',
        [`--net=${pod.netnsPath}`, python, probeScript, 'serve', '15001,15006'],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`probe exited ${code}`)));
      });
      const stop = (): void => {
        if (child.exitCode === null) child.kill('SIGKILL');
      };
      cleanups.push(stop);
      return stop;
    },
    async startNodeServer(port) {
      const child = spawn(
        'nsenter',
        [`--net=${lab.nodeNetnsPath}`, python, probeScript, 'serve', String(port)],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`node server exited ${code}`)));
      });
      const stop = (): void => {
        if (child.exitCode === null) child.kill('SIGKILL');
      };
      cleanups.push(stop);
      return stop;
    },
    connectFromPod(pod, host, port, uid) {
      const probe = [python, probeScript, 'client', host, String(port)];
      const argv =
        uid === undefined
          ? probe
          : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...probe];
      return lab.podExec(pod, argv, { timeoutMs: 10_000 });
    },
    connectFromNode(host, port) {
      return lab.nodeExec([python, probeScript, 'client', host, String(port)], { timeoutMs: 10_000 });
    },
    async close() {
      for (const cleanup of cleanups) cleanup();
      if (node.agent && node.agent.process.exitCode === null) await node.agent.stop('SIGKILL');
      await lab.close();
      await api.close();
    },
  };
  return node;
}

export { run };
