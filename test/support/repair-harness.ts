// Helpers for repair-controller tests: a recording Metrics port, controller config, SA dir for the API test server.
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { MetricLabels, Metrics } from '../../src/sys/ports.ts';
import type { RepairControllerConfig } from '../../src/repair/controller.ts';
import type { RepairConfig } from '../../src/config/load.ts';
import type { KubeApiServer } from './kube-api-server.ts';

/** How long a test waits for a counter or a log record (each takes well under a second when the code works). */
const WAIT_TIMEOUT_MS = 15_000;

/** `promise`, or a rejection naming `what` after `timeoutMs`; the timer is cleared either way. */
function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)),
      timeoutMs,
    );
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

export class RecordingMetrics implements Metrics {
  readonly counters = new Map<string, number>();
  #waiters: { check: () => boolean; resolve: () => void }[] = [];

  static key(name: string, labels: MetricLabels = {}): string {
    const parts = Object.entries(labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`);
    return `${name}{${parts.join(',')}}`;
  }

  increment(name: string, _help: string, labels?: MetricLabels, by = 1): void {
    const key = RecordingMetrics.key(name, labels);
    this.counters.set(key, (this.counters.get(key) ?? 0) + by);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.check()) return true;
      waiter.resolve();
      return false;
    });
  }
  setGauge(): void {}
  observe(): void {}

  get(name: string, labels?: MetricLabels): number {
    return this.counters.get(RecordingMetrics.key(name, labels)) ?? 0;
  }

  /** Resolves once counter `name{labels}` reaches `atLeast`; rejects after `timeoutMs`, naming the counter and
   * its value (a regression fails its test, instead of waiting out the runner's limit with servers left running). */
  waitFor(name: string, labels: MetricLabels, atLeast = 1, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
    const check = () => this.get(name, labels) >= atLeast;
    if (check()) return Promise.resolve();
    const key = RecordingMetrics.key(name, labels);
    return withDeadline(
      new Promise((resolve) => this.#waiters.push({ check, resolve })),
      timeoutMs,
      () => `${key} >= ${atLeast} (it is ${this.get(name, labels)})`,
    );
  }
}

export function silentLogger(): Logger {
  return pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
}

/** A logger that keeps its records; `waitFor` resolves on the first record whose message includes `text`, among the
 * records from index `from` on (`records.length` before an action: a record the action causes). */
export function capturingLogger(): {
  logger: Logger;
  records: Record<string, unknown>[];
  waitFor(text: string, from?: number): Promise<Record<string, unknown>>;
} {
  const records: Record<string, unknown>[] = [];
  const waiters: { text: string; resolve: (record: Record<string, unknown>) => void }[] = [];
  const matches = (record: Record<string, unknown>, text: string) => String(record['msg']).includes(text);
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        const record = JSON.parse(line) as Record<string, unknown>;
        records.push(record);
        for (const waiter of waiters.filter((w) => matches(record, w.text))) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(record);
        }
      },
    },
  );
  return {
    logger,
    records,
    waitFor(text, from = 0) {
      const found = records.slice(from).find((record) => matches(record, text));
      if (found !== undefined) return Promise.resolve(found);
      return withDeadline(
        new Promise((resolve) => waiters.push({ text, resolve })),
        WAIT_TIMEOUT_MS,
        () => `a log record with "${text}" (last: ${JSON.stringify(records.at(-1)?.['msg'])})`,
      );
    },
  };
}

export const DEFAULT_REPAIR: RepairConfig = Object.freeze({
  enabled: true,
  deletePods: false,
  labelPods: false,
  repairPods: false,
  brokenPodLabelKey: 'cni.istio.io/uninitialized',
  brokenPodLabelValue: 'true',
  nodeName: 'node-a',
  sidecarAnnotation: 'sidecar.istio.io/status',
  initContainerName: 'istio-validation',
  initContainerTerminationMessage: '',
  initContainerExitCode: 126,
  labelSelectors: '',
  fieldSelectors: '',
  notReadyTaintKey: '',
  hostProcDir: '/host/proc',
});

export interface ApiLocation {
  host: string;
  port: number;
  caFile: string;
  token: string;
}

/** A service-account dir holding the API test server's token and CA (as kubelet mounts them), removed by the
 * returned dispose. */
export async function serviceAccountDir(
  server: ApiLocation,
): Promise<{ dir: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'if-sa-'));
  await writeFile(join(dir, 'token'), server.token);
  await copyFile(server.caFile, join(dir, 'ca.crt'));
  return { dir, [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }) };
}

export function controllerConfig(
  server: ApiLocation,
  saDir: string,
  repair: Partial<RepairConfig> = {},
  extra: Partial<RepairControllerConfig> = {},
): RepairControllerConfig {
  return {
    repair: { ...DEFAULT_REPAIR, ...repair },
    nativeNftables: false,
    forceIptablesBinary: '',
    nodeName: 'node-a',
    kubernetesServiceHost: server.host,
    kubernetesServicePort: String(server.port),
    serviceAccountDir: saDir,
    outboundCaptureEnv: {},
    ...extra,
  };
}

/** Resolves once `check` holds, re-checking whenever the API test server serves a request (the server-side state
 * only changes then); rejects after `timeoutMs`. */
export function until(
  server: KubeApiServer,
  check: () => boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  return new Promise((resolve, reject) => {
    const finish = (error?: Error): void => {
      stop();
      clearTimeout(timer);
      if (error === undefined) resolve();
      else reject(error);
    };
    const stop = server.onActivity(() => {
      if (check()) finish();
    });
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}`)), timeoutMs);
    if (check()) finish();
  });
}
