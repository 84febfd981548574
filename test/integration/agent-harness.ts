// Helpers for the spawned-agent integration tests (test/integration/agent*.test.ts): a temp tree standing in for
// the host paths, the agent process with its JSON log lines as events, and fs.watch-based waits (no sleeps).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { HostTree } from '../support/host-tree.ts';
import { hostTreeEnv, makeHostTree } from '../support/host-tree.ts';
import { untilChangedIn } from '../support/until-changed.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const NODE_AGENT = [path.join(ROOT, 'node_modules/.bin/node'), path.join(ROOT, 'bin/install-cni.ts')];
export const DIST_AGENT = [path.join(ROOT, 'dist/install-cni')];
export const TESTDATA = path.resolve(ROOT, '../shared/conformance/istio-install-testdata');

export const CALICO = `${JSON.stringify(
  {
    name: 'k8s-pod-network',
    cniVersion: '0.3.1',
    plugins: [
      { type: 'calico', datastore_type: 'kubernetes', ipam: { type: 'calico-ipam' } },
      { type: 'portmap', snat: true, capabilities: { portMappings: true } },
    ],
  },
  null,
  2,
)}\n`;

export type Tree = HostTree;

export function makeTree(): Tree {
  return makeHostTree('ic-it-', {
    sources: { 'istio-cni': '#!/bin/sh\nexit 0\n' },
    token: readFileSync(`${TESTDATA}/token-foo`),
    ca: readFileSync(`${TESTDATA}/kube-ca.crt`),
  });
}

export function agentEnv(tree: Tree, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: tree.root,
    KUBERNETES_SERVICE_HOST: '10.110.0.1',
    KUBERNETES_SERVICE_PORT: '443',
    REPAIR_ENABLED: 'false',
    MONITORING_PORT: '0',
    READINESS_PORT: '0',
    LISTEN_ADDRESS: '127.0.0.1',
    ...hostTreeEnv(tree),
    EXCLUDE_NAMESPACES: 'istio-system',
    ...extra,
  };
}

export type LogRecord = Record<string, unknown> & { msg?: string };

export interface Agent {
  readonly child: ChildProcess;
  readonly logs: LogRecord[];
  readonly stderr: () => string;
  waitForLog(predicate: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startAgent(
  command: readonly string[],
  env: Record<string, string>,
  args: readonly string[] = ['--log_as_json'],
): Agent {
  const [file, ...rest] = command;
  const child = spawn(file!, [...rest, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogRecord[] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  let errText = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as LogRecord);
      } catch {
        logs.push({ msg: line });
      }
    }
    for (const waiter of waiters) waiter();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    errText += chunk;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      for (const waiter of waiters) waiter();
      resolve(code);
    });
  });
  return {
    child,
    logs,
    stderr: () => errText,
    exited,
    waitForLog(predicate, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = logs.find(predicate);
          if (found !== undefined) {
            finish();
            resolve(found);
          } else if (child.exitCode !== null) {
            finish();
            reject(new Error(`agent exited (${child.exitCode}) before the log line; stderr: ${errText}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`timed out waiting for a log line; last: ${JSON.stringify(logs.slice(-3))}`));
        }, timeoutMs);
        function finish(): void {
          clearTimeout(timer);
          waiters.delete(check);
        }
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Resolves when `check()` holds, re-checking on every change in `dir` (fs.watch; no polling). */
export function until(dir: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  return untilChangedIn(dir, `a change in ${dir}`, check, timeoutMs);
}

export const read = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8') : '');
export const hasIstio = (file: string): boolean => read(file).includes('"type": "istio-cni"');

export async function httpGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  return { status: response.status, body: await response.text() };
}

export const msgIs =
  (text: string) =>
  (record: LogRecord): boolean =>
    typeof record.msg === 'string' && record.msg.includes(text);
