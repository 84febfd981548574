// Helpers for the spawned-agent integration tests (test/integration/agent*.test.ts): a temp tree standing in for
// the host paths, the agent process with its JSON log lines as events, and fs.watch-based waits (no sleeps).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { HostTree } from '../support/host-tree.ts';
import { hostTreeEnv, makeHostTree } from '../support/host-tree.ts';
import { untilChangedIn } from '../support/until-changed.ts';
import { within } from '../support/within.ts';

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
  /** With a `stdoutFifo`: stops reading the agent's stdout and fills the FIFO, so the agent's log writes stay
   * pending (Node queues them) and keep it from exiting until `releaseStdout()`. */
  holdStdout(): void;
  releaseStdout(): void;
  readonly logs: LogRecord[];
  readonly stderr: () => string;
  waitForLog(predicate: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  /** Resolves with the exit code; an agent still running after `timeoutMs` is killed (SIGKILL) and the wait
   * rejects, so a hung agent fails its test at once instead of holding the runner until its own limit. */
  exit(timeoutMs?: number): Promise<number | null>;
  /** Sends `signal` (SIGTERM by default) and waits for the exit as `exit()` does. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export function startAgent(
  command: readonly string[],
  env: Record<string, string>,
  args: readonly string[] = ['--log_as_json'],
  stdoutFifo?: string,
): Agent {
  const [file, ...rest] = command;
  // With a FIFO, the agent's stdout reaches us through a `cat` we can stop (a pipe Node creates for a child is a
  // socket pair we could neither stop reading nor open again to fill). cat holds the FIFO read-write, so neither
  // open blocks; it never sees an end of file and is killed with the agent.
  let relay: ChildProcess | undefined;
  let agentStdout: number | 'pipe' = 'pipe';
  if (stdoutFifo !== undefined) {
    execFileSync('mkfifo', [stdoutFifo]);
    const relayStdin = openSync(stdoutFifo, constants.O_RDWR);
    agentStdout = openSync(stdoutFifo, constants.O_WRONLY);
    relay = spawn('cat', [], { stdio: [relayStdin, 'pipe', 'ignore'] });
    closeSync(relayStdin);
  }
  const child = spawn(file!, [...rest, ...args], { env, stdio: ['ignore', agentStdout, 'pipe'] });
  if (typeof agentStdout === 'number') closeSync(agentStdout);
  const stdout = relay?.stdout ?? child.stdout;
  const logs: LogRecord[] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  let errText = '';
  stdout!.setEncoding('utf8').on('data', (chunk: string) => {
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
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    errText += chunk;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      relay?.kill('SIGCONT');
      relay?.kill();
      for (const waiter of waiters) waiter();
      resolve(code);
    });
  });
  const exit = (timeoutMs = 20_000): Promise<number | null> =>
    within(
      exited,
      timeoutMs,
      () => `the agent's exit (killed now; its stderr: ${errText})`,
      () => child.kill('SIGKILL'),
    );
  return {
    child,
    holdStdout() {
      if (relay === undefined || stdoutFifo === undefined) throw new Error('started without a stdout FIFO');
      relay.kill('SIGSTOP');
      const fifo = openSync(stdoutFifo, constants.O_WRONLY | constants.O_NONBLOCK);
      try {
        // Whole records while they fit, then single newlines: a write of up to 4 KiB to a pipe is all or nothing, so
        // the records alone can leave up to 4 KiB free.
        for (const filler of [Buffer.from('{"filler":true}\n'.repeat(256)), Buffer.from('\n')]) {
          try {
            for (;;) writeSync(fifo, filler);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
          }
        }
      } finally {
        closeSync(fifo);
      }
    },
    releaseStdout() {
      relay?.kill('SIGCONT');
    },
    logs,
    stderr: () => errText,
    exit,
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
    async stop(signal = 'SIGTERM', timeoutMs) {
      if (child.exitCode === null) child.kill(signal);
      return exit(timeoutMs);
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
