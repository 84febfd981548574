// Broken-pod detection (behaviour §3.3), a pure port of upstream's `matchesFilter`.
import type { RepairPod } from './pod.ts';

export interface BrokenPodFilter {
  /** Only pods carrying this annotation are considered (empty = all pods). */
  readonly sidecarAnnotation: string;
  /** Init container to inspect (empty = any init container). */
  readonly initContainerName: string;
  /** Last termination message filter, compared trimmed (empty = any). */
  readonly initContainerTerminationMessage: string;
  /** Last termination exit code filter (0 = any). */
  readonly initContainerExitCode: number;
}

/** True iff the pod's validation init container is crash-looping with the configured exit code/message. A
 * container that is currently terminated successfully is never broken; the first failure alone is not enough
 * (detection needs `lastState.terminated`, i.e. one restart). */
export function isBrokenPod(pod: RepairPod, filter: BrokenPodFilter): boolean {
  if (filter.sidecarAnnotation !== '' && !Object.hasOwn(pod.annotations, filter.sidecarAnnotation)) {
    return false;
  }
  const wantedMessage = filter.initContainerTerminationMessage.trim();
  for (const status of pod.initContainerStatuses) {
    if (filter.initContainerName !== '' && status.name !== filter.initContainerName) continue;
    const current = status.terminated;
    if (current !== undefined && (current.reason === 'Completed' || current.exitCode === 0)) continue;
    const last = status.lastTerminated;
    if (last === undefined) continue;
    const messageMatches = wantedMessage === '' || wantedMessage === last.message.trim();
    const exitCodeMatches =
      filter.initContainerExitCode === 0 || filter.initContainerExitCode === last.exitCode;
    if (messageMatches && exitCodeMatches) return true;
  }
  return false;
}
