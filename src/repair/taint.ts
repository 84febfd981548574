// Node readiness (beyond upstream, field-lessons §1c.5): nodes register "born tainted" with
// `<notReadyTaintKey>=true:NoSchedule` (kubelet --register-with-taints); the agent removes that taint from its own
// node once the plugin install is valid, so pods are only scheduled where the CNI chain is complete.
import type { Logger } from 'pino';
import { KubeError } from '../errors.ts';
import type { RepairApi, Taint } from './api.ts';

/** The node's taints without any taint of `key` (every effect). */
export function withoutTaint(taints: readonly Taint[], key: string): Taint[] {
  return taints.filter((taint) => taint.key !== key);
}

export interface RemoveTaintDeps {
  readonly api: Pick<RepairApi, 'getNodeTaints' | 'setNodeTaints'>;
  readonly logger: Logger;
  /** Attempts after a 409 Conflict (someone else changed the node between our read and our patch). */
  readonly maxConflictRetries?: number;
}

/** Removes taint `key` (any effect) from node `nodeName`: read, then merge-patch the remaining taints with the
 * read resourceVersion as precondition; re-read and retry on conflict. Resolves 'removed' or 'absent'; rejects
 * with KubeError on other failures (the caller retries with back-off). */
export async function removeNotReadyTaint(
  nodeName: string,
  key: string,
  deps: RemoveTaintDeps,
): Promise<'removed' | 'absent'> {
  const maxConflictRetries = deps.maxConflictRetries ?? 5;
  for (let attempt = 0; ; attempt++) {
    const node = await deps.api.getNodeTaints(nodeName);
    const remaining = withoutTaint(node.taints, key);
    if (remaining.length === node.taints.length) return 'absent';
    try {
      await deps.api.setNodeTaints(nodeName, node.resourceVersion, remaining);
      deps.logger.info({ node: nodeName, taint: key }, 'removed not-ready taint from node');
      return 'removed';
    } catch (error) {
      if (error instanceof KubeError && error.status === 409 && attempt < maxConflictRetries) {
        deps.logger.debug({ node: nodeName }, 'conflict while removing taint; retrying');
        continue;
      }
      throw error;
    }
  }
}
