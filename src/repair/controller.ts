// Repair controller (behaviour §3) and node readiness taint removal. The agent calls startRepairController once
// the first install is valid, never before: nothing here can block the plugin install or readiness. Informer
// start (and taint removal) retry in the background with back-off while the API server is unreachable.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/load.ts';
import { AppError, KubeError, errorFields } from '../errors.ts';
import { captureConfigFromPod, podInfoFromManifest } from '../plugin/redirect.ts';
import { applyCaptureRules, type RuleTarget } from '../rules/apply.ts';
import type { Exec, Metrics } from '../sys/ports.ts';
import type { PodInformer, PodSelectors, RepairApi } from './api.ts';
import { podKey, repairPodFromManifest, type RepairPod } from './pod.ts';
import { createWorkQueue } from './queue.ts';
import { createReconciler, type Reconciler } from './reconcile.ts';
import { removeNotReadyTaint } from './taint.ts';
import { iptablesVariantFrom, podSelectors } from './selectors.ts';
import { createRepairClient } from '../kube/repair-client.ts';
import { findPodNetns, pinNetns, type PodNetns } from '../sys/proc-netns.ts';
import { SpawnExec } from '../sys/spawn-exec.ts';

/** The AgentConfig fields the controller reads (AgentConfig satisfies it). */
export type RepairControllerConfig = Pick<
  AgentConfig,
  | 'repair'
  | 'nativeNftables'
  | 'forceIptablesBinary'
  | 'nodeName'
  | 'kubernetesServiceHost'
  | 'kubernetesServicePort'
  | 'serviceAccountDir'
  | 'outboundCaptureEnv'
>;

/** The API side the controller needs: createRepairClient(config) (src/kube/repair-client.ts) unless a test passes
 * its own. */
export interface RepairClientPort {
  readonly api: RepairApi;
  createPodInformer(selectors: PodSelectors): PodInformer;
}

export interface RepairHandle {
  /** Stops informers, background retries and the work queue; resolves when idle. */
  stop(): Promise<void>;
  /** Resolves once the pod informer has synced (tests, debugging); never resolves when repair is disabled. */
  readonly synced: Promise<void>;
  readonly reconciler: Reconciler | undefined;
}

export interface RepairStartOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly signal: AbortSignal;
  /** Default: createRepairClient(config) (in-cluster service account). A factory so that a construction failure
   * is logged, not thrown. */
  readonly client?: () => RepairClientPort;
  /** Runs iptables/nft in the pod netns; default SpawnExec. */
  readonly exec?: Exec;
  /** ISTIO_OUTBOUND_* values for captureConfigFromPod (the plugin reads them from its env); default the
   * agent's own (`config.outboundCaptureEnv`). */
  readonly captureEnv?: Readonly<Record<string, string | undefined>>;
  /** Back-off for informer start and taint removal retries. */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  /** Finds the pod netns; default findPodNetns over HOST_PROC_DIR. */
  readonly findNetns?: (podIp: string) => Promise<PodNetns>;
}

/** How long stop() waits for queued events to be written. */
const EVENTS_AT_STOP_MS = 1000;

function backoff(initialMs: number, maxMs: number): (attempt: number) => number {
  return (attempt) => Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
}

async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

export function startRepairController(
  config: RepairControllerConfig,
  options: RepairStartOptions,
): RepairHandle {
  const logger = options.logger.child({ component: 'repair' });
  const stopping = new AbortController();
  // Shutdown starts here, not when stop() is called after the node's cleanup: queued keys and retries must not go on
  // repairing, deleting or labelling pods while the entry is being taken out.
  let stopWork: () => void = () => undefined;
  const onAbort = () => {
    stopping.abort();
    stopWork();
  };
  options.signal.addEventListener('abort', onAbort, { once: true });
  // A signal aborted before the start never fires its listener: stopped from the start (the queue below).
  if (options.signal.aborted) stopping.abort();
  const signal = stopping.signal;
  const delay = backoff(options.retryInitialMs ?? 1000, options.retryMaxMs ?? 30_000);
  const background: Promise<void>[] = [];
  let resolveSynced: () => void = () => {};
  const synced = new Promise<void>((resolve) => (resolveSynced = resolve));

  const taintKey = config.repair.notReadyTaintKey;
  if (!config.repair.enabled && taintKey === '') {
    logger.info('repair controller disabled');
    return { stop: () => Promise.resolve(), synced, reconciler: undefined };
  }

  let client: RepairClientPort;
  try {
    client = options.client === undefined ? createRepairClient(config) : options.client();
  } catch (error) {
    // Upstream exits here; we keep the installed plugin and readiness, and report the failure.
    logger.error(errorFields(error), 'failed to build the Kubernetes client; repair controller not started');
    return { stop: () => Promise.resolve(), synced, reconciler: undefined };
  }

  if (taintKey !== '') {
    const nodeName = config.nodeName;
    background.push(
      (async () => {
        if (nodeName === '') {
          logger.error({ taint: taintKey }, 'NODE_NAME is empty; cannot remove the not-ready taint');
          return;
        }
        for (let attempt = 0; !signal.aborted; attempt++) {
          try {
            const outcome = await removeNotReadyTaint(nodeName, taintKey, { api: client.api, logger });
            if (outcome === 'absent')
              logger.debug({ node: nodeName, taint: taintKey }, 'node has no not-ready taint');
            return;
          } catch (error) {
            logger.warn(
              { ...errorFields(error), attempt: attempt + 1 },
              'failed to remove not-ready taint; retrying',
            );
            if (!(await sleepUnlessAborted(delay(attempt), signal))) return;
          }
        }
      })(),
    );
  }

  if (!config.repair.enabled) {
    logger.info('repair controller disabled');
    return {
      synced,
      reconciler: undefined,
      async stop() {
        stopping.abort();
        options.signal.removeEventListener('abort', onAbort);
        await Promise.all(background);
      },
    };
  }

  const selectors = podSelectors(config);
  const informer = client.createPodInformer(selectors);
  const procRoot = config.repair.hostProcDir;
  const captureEnv = options.captureEnv ?? config.outboundCaptureEnv;
  const exec = options.exec ?? new SpawnExec();
  const findNetns =
    options.findNetns ??
    ((podIp: string) =>
      findPodNetns({
        procRoot,
        podIp,
        onSkip: (pid, reason) => logger.debug({ pid, reason }, 'skipped proc entry'),
      }));

  async function repairInPlace(pod: RepairPod): Promise<void> {
    if (pod.podIp === '') throw new AppError('REPAIR_FAILED', 'pod has no IP yet');
    const info = podInfoFromManifest(pod.manifest);
    if (info.hostNetwork) throw new AppError('REPAIR_FAILED', 'host-network pod: refusing to program rules');
    const capture = captureConfigFromPod(info, captureEnv);
    const variant = iptablesVariantFrom(config.forceIptablesBinary);
    const found = await findNetns(pod.podIp);
    const pinned = await pinNetns(found);
    try {
      const target: RuleTarget = {
        netns: pinned.path,
        backend: config.nativeNftables ? 'nftables' : 'iptables',
        // A running pod carries live traffic: no speculative IPv4 restore that may have to be taken back.
        speculative: false,
        ...(variant === undefined ? {} : { iptablesVariant: variant }),
      };
      const outcome = await applyCaptureRules(capture, target, { exec, logger });
      logger.info(
        { pod: podKey(pod), netns: found.netnsPath, changed: outcome.changed },
        'programmed redirect rules in pod netns',
      );
    } finally {
      await pinned.close();
    }
  }

  const reconciler = createReconciler(
    { ...config.repair },
    {
      api: client.api,
      getPod(key: string): RepairPod | undefined {
        const slash = key.indexOf('/');
        return repairPodFromManifest(informer.get(key.slice(0, slash), key.slice(slash + 1)));
      },
      repairInPlace,
      metrics: options.metrics,
      logger,
    },
  );

  const queue = createWorkQueue({
    process: (key) => reconciler.reconcile(key),
    retryAfterMs: (error) => (error instanceof KubeError ? error.retryAfterMs : undefined),
    onError(key, error, attempt, final) {
      const fields = { pod: key, ...errorFields(error), attempt };
      if (final) logger.error(fields, 'giving up on pod after repeated failures');
      else logger.warn(fields, 'reconcile failed; will retry');
    },
  });

  stopWork = () => void queue.shutDown();
  if (stopping.signal.aborted) stopWork();

  informer.onEvent((_type, raw) => {
    // A list that was in flight when stop() came must not start repairs: shutdown (and cleanup) is under way.
    if (signal.aborted) return;
    const metadata = (raw as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
    if (typeof metadata?.name !== 'string') return;
    queue.add(`${typeof metadata.namespace === 'string' ? metadata.namespace : ''}/${metadata.name}`);
  });

  let wake: (() => void) | undefined;
  informer.onError((error) => {
    if (signal.aborted) return; // stop() aborts the watch request
    logger.warn(errorFields(error), 'pod watch failed; restarting');
    wake?.();
  });

  background.push(
    (async () => {
      const aborted = new Promise<void>((resolve) =>
        signal.addEventListener('abort', () => resolve(), { once: true }),
      );
      let attempt = 0;
      while (!signal.aborted) {
        const failed = new Promise<void>((resolve) => (wake = resolve));
        try {
          await informer.start();
          const startedAt = Date.now();
          logger.info({ ...selectors }, 'repair controller watching pods');
          resolveSynced();
          // Run until the watch fails (onError) or we stop.
          await Promise.race([failed, aborted]);
          if (signal.aborted) return;
          // A watch that held for a while resets the back-off; one failing right after the list does not.
          if (Date.now() - startedAt > 60_000) attempt = 0;
          await informer.stop();
        } catch (error) {
          // stop() aborts a list in flight: that is the shutdown, not a failure.
          if (signal.aborted) return;
          logger.warn(
            { ...errorFields(error), attempt: attempt + 1 },
            'failed to start pod informer; retrying',
          );
        }
        if (!(await sleepUnlessAborted(delay(attempt), signal))) return;
        attempt++;
      }
    })(),
  );

  return {
    synced,
    reconciler,
    async stop() {
      stopping.abort();
      options.signal.removeEventListener('abort', onAbort);
      // The queue takes no new work from here on; what runs now is awaited last.
      const drained = queue.shutDown();
      await informer.stop();
      await Promise.all(background);
      await drained;
      // Events still queued get a moment (they say what happened to a pod), not the whole grace period.
      await Promise.race([reconciler.events.idle(), sleep(EVENTS_AT_STOP_MS, undefined, { ref: false })]);
    },
  };
}
