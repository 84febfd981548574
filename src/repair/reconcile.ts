// Per-key reconcile of the repair controller (behaviour §3.2, §3.4): pod gone → forget; not broken → done;
// else the first enabled mode of repair > delete > label. Side effects go through the RepairApi port and the
// injected `repairInPlace`; errors are returned to the work queue, which retries (≤ 5 attempts).
import type { Logger } from 'pino';
import type { Metrics } from '../sys/ports.ts';
import { KubeError, errorMessage } from '../errors.ts';
import type { PodRef, RepairApi } from './api.ts';
import { isBrokenPod, type BrokenPodFilter } from './detect.ts';
import type { RepairPod } from './pod.ts';

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
}

export interface Reconciler {
  reconcile(key: string): Promise<void>;
  /** key → UID of pods repaired in place (exposed for tests and debugging). */
  readonly repaired: ReadonlyMap<string, string>;
}

function ref(pod: RepairPod): PodRef {
  return { namespace: pod.namespace, name: pod.name, uid: pod.uid, resourceVersion: pod.resourceVersion };
}

export function createReconciler(settings: ReconcileSettings, deps: ReconcileDeps): Reconciler {
  const repaired = new Map<string, string>();
  const { api, metrics } = deps;

  function count(type: 'repair' | 'delete' | 'label', result: 'success' | 'fail' | 'skip'): void {
    metrics.increment(REPAIRED_METRIC, REPAIRED_HELP, { type, result });
  }

  async function event(pod: RepairPod, reason: string, message: string, logger: Logger): Promise<void> {
    try {
      await api.recordPodEvent(ref(pod), reason, message);
    } catch (error) {
      // An event is best effort: never fail (and so repeat) the action because the event was refused.
      logger.warn({ err: errorMessage(error), reason }, 'failed to record event');
    }
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
    logger.info('pod detected as broken, repairing in place');
    try {
      await deps.repairInPlace(pod);
    } catch (error) {
      await event(
        pod,
        'RepairBrokenPod',
        `pod detected as broken, but failed to repair: ${errorMessage(error)}`,
        logger,
      );
      count('repair', 'fail');
      throw error;
    }
    repaired.set(key, pod.uid);
    await event(pod, 'RepairBrokenPod', 'pod detected as broken, repaired in place', logger);
    count('repair', 'success');
  }

  async function deletePod(pod: RepairPod, logger: Logger): Promise<void> {
    logger.info('pod detected as broken, deleting');
    try {
      await api.deletePod(ref(pod));
    } catch (error) {
      if (error instanceof KubeError && error.status === 404) {
        logger.info('pod already gone');
        return;
      }
      await event(
        pod,
        'DeleteBrokenPod',
        `pod detected as broken, but failed to delete: ${errorMessage(error)}`,
        logger,
      );
      count('delete', 'fail');
      throw error;
    }
    await event(pod, 'DeleteBrokenPod', 'pod detected as broken, deleted', logger);
    count('delete', 'success');
  }

  async function labelPod(pod: RepairPod, logger: Logger): Promise<void> {
    if (Object.hasOwn(pod.labels, settings.brokenPodLabelKey)) {
      count('label', 'skip');
      return;
    }
    logger.info('pod detected as broken, adding label');
    try {
      await api.labelPod(ref(pod), { [settings.brokenPodLabelKey]: settings.brokenPodLabelValue });
    } catch (error) {
      if (error instanceof KubeError && error.status === 404) {
        logger.info('pod already gone');
        return;
      }
      await event(
        pod,
        'LabelBrokenPod',
        `pod detected as broken, but failed to label: ${errorMessage(error)}`,
        logger,
      );
      count('label', 'fail');
      throw error;
    }
    await event(pod, 'LabelBrokenPod', 'pod detected as broken, labeled', logger);
    count('label', 'success');
  }

  return {
    repaired,
    async reconcile(key: string): Promise<void> {
      const pod = deps.getPod(key);
      if (pod === undefined) {
        repaired.delete(key);
        return;
      }
      if (!isBrokenPod(pod, settings)) return;
      const logger = deps.logger.child({ pod: key, uid: pod.uid });
      if (settings.repairPods) return repairPod(key, pod, logger);
      if (settings.deletePods) return deletePod(pod, logger);
      if (settings.labelPods) return labelPod(pod, logger);
    },
  };
}
