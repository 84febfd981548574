// Per-key reconcile of the repair controller (behaviour §3.2, §3.4): pod gone → forget; not broken → done;
// else the first enabled mode of repair > delete > label. Side effects go through the RepairApi port and the
// injected `repairInPlace`; errors are returned to the work queue, which retries (≤ 5 attempts).
import type { Logger } from 'pino';
import type { Metrics } from '../sys/ports.ts';
import { KubeError, errorMessage } from '../errors.ts';
import type { PodRef, RepairApi } from './api.ts';
import { isBrokenPod, type BrokenPodFilter } from './detect.ts';
import type { RepairPod } from './pod.ts';
import { createPodEventRecorder, type PodEventRecorder } from './event-recorder.ts';

export const REPAIRED_METRIC = 'istio_cni_repair_pods_repaired_total';
const REPAIRED_HELP = 'Total number of pods repaired by repair controller';

export interface ReconcileSettings extends BrokenPodFilter {
  readonly repairPods: boolean;
  readonly deletePods: boolean;
  readonly labelPods: boolean;
  readonly brokenPodLabelKey: string;
  readonly brokenPodLabelValue: string;
}

export interface ReconcileDeps {
  readonly api: RepairApi;
  /** The pod currently cached under `namespace/name`, mapped (undefined when gone or unusable). */
  readonly getPod: (key: string) => RepairPod | undefined;
  /** Finds the pod's netns and programs the plugin's rules in it. */
  readonly repairInPlace: (pod: RepairPod) => Promise<void>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Where the actions' events go; default: written through `api` in the background. */
  readonly events?: PodEventRecorder;
}

export interface Reconciler {
  reconcile(key: string): Promise<void>;
  /** key → UID of pods repaired in place (exposed for tests and debugging). */
  readonly repaired: ReadonlyMap<string, string>;
  /** The actions' events, written after the action has returned. */
  readonly events: PodEventRecorder;
}

function ref(pod: RepairPod): PodRef {
  return { namespace: pod.namespace, name: pod.name, uid: pod.uid, resourceVersion: pod.resourceVersion };
}

export function createReconciler(settings: ReconcileSettings, deps: ReconcileDeps): Reconciler {
  const repaired = new Map<string, string>();
  const { api, metrics } = deps;
  const events = deps.events ?? createPodEventRecorder(api);

  function count(type: 'repair' | 'delete' | 'label', result: 'success' | 'fail' | 'skip'): void {
    metrics.increment(REPAIRED_METRIC, REPAIRED_HELP, { type, result });
  }

  /**
   * Runs one action with upstream's event and metric bookkeeping: a Warning event saying what happened, the
   * counter `{type, result}`, and the error handed back to the work queue for a retry. A pod that is already gone
   * (404) needs no delete or label: that is done, not failed.
   */
  async function act(
    pod: RepairPod,
    action: {
      type: 'repair' | 'delete' | 'label';
      reason: string;
      verb: string;
      done: string;
      failed: string;
    },
    run: () => Promise<void>,
    logger: Logger,
  ): Promise<void> {
    logger.info(`pod detected as broken, ${action.verb}`);
    try {
      await run();
    } catch (error) {
      if (action.type !== 'repair' && error instanceof KubeError && error.status === 404) {
        logger.info('pod already gone');
        return;
      }
      const message = `pod detected as broken, but failed to ${action.failed}: ${errorMessage(error)}`;
      // Best effort, in the background: a refused or slow event never fails or delays the action.
      events.record(ref(pod), action.reason, message, logger);
      count(action.type, 'fail');
      throw error;
    }
    events.record(ref(pod), action.reason, `pod detected as broken, ${action.done}`, logger);
    count(action.type, 'success');
  }

  async function repairPod(key: string, pod: RepairPod, logger: Logger): Promise<void> {
    const known = repaired.get(key);
    if (known === pod.uid) {
      logger.debug('pod already repaired');
      return;
    }
    if (known !== undefined) {
      // Upstream logs an error and skips forever; a different UID is a new pod (recreated under the same name
      // while we missed the delete), so we repair it.
      logger.warn({ previousUid: known }, 'pod was recreated since it was repaired; repairing the new pod');
    }
    const action = {
      type: 'repair',
      reason: 'RepairBrokenPod',
      verb: 'repairing in place',
      done: 'repaired in place',
      failed: 'repair',
    } as const;
    // Remembered before the event and the counter, so anyone who saw the success also sees the record.
    await act(
      pod,
      action,
      async () => {
        await deps.repairInPlace(pod);
        repaired.set(key, pod.uid);
      },
      logger,
    );
  }

  function deletePod(pod: RepairPod, logger: Logger): Promise<void> {
    const action = {
      type: 'delete',
      reason: 'DeleteBrokenPod',
      verb: 'deleting',
      done: 'deleted',
      failed: 'delete',
    } as const;
    return act(pod, action, () => api.deletePod(ref(pod)), logger);
  }

  async function labelPod(pod: RepairPod, logger: Logger): Promise<void> {
    if (Object.hasOwn(pod.labels, settings.brokenPodLabelKey)) {
      count('label', 'skip');
      return;
    }
    const action = {
      type: 'label',
      reason: 'LabelBrokenPod',
      verb: 'adding label',
      done: 'labeled',
      failed: 'label',
    } as const;
    const labels = { [settings.brokenPodLabelKey]: settings.brokenPodLabelValue };
    await act(pod, action, () => api.labelPod(ref(pod), labels), logger);
  }

  return {
    repaired,
    events,
    async reconcile(key: string): Promise<void> {
      const pod = deps.getPod(key);
      if (pod === undefined) {
        repaired.delete(key);
        return;
      }
      // A pod already being deleted stays (Terminating, sending updates) for its grace period: deleting it again,
      // labelling it or repairing its netns would only repeat events and inflate the counts. Upstream acts on it.
      if (pod.terminating || !isBrokenPod(pod, settings)) return;
      const logger = deps.logger.child({ pod: key, uid: pod.uid });
      if (settings.repairPods) return repairPod(key, pod, logger);
      if (settings.deletePods) return deletePod(pod, logger);
      if (settings.labelPods) return labelPod(pod, logger);
    },
  };
}
