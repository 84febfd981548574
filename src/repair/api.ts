// Ports of the repair controller towards the API server (types only; src/kube/repair-client.ts implements
// them with @kubernetes/client-node, tests use the Kubernetes API test server or small fakes).

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
}

export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
  readonly timeAdded?: string;
}

export interface NodeTaints {
  readonly resourceVersion: string;
  readonly taints: readonly Taint[];
}

/** Errors are KubeError (src/errors.ts) with the HTTP status when there was one. */
export interface RepairApi {
  /** DELETE with preconditions uid + resourceVersion (a changed or recreated pod is never deleted). */
  deletePod(pod: PodRef): Promise<void>;
  /** Merge patch `{"metadata":{"labels":…}}` on the pods/status subresource. */
  labelPod(pod: PodRef, labels: Readonly<Record<string, string>>): Promise<void>;
  /** A core/v1 Warning Event about the pod, source component `cni-repair`. */
  recordPodEvent(pod: PodRef, reason: string, message: string): Promise<void>;
  getNodeTaints(nodeName: string): Promise<NodeTaints>;
  /** Replaces the node's taints; 409 (KubeError status 409) when resourceVersion no longer matches. */
  setNodeTaints(nodeName: string, resourceVersion: string, taints: readonly Taint[]): Promise<void>;
}

export type PodEventType = 'add' | 'update' | 'delete';

/** A list+watch cache of pods (an informer). `start` resolves once the initial list is in the cache and the
 * watch runs; it rejects when listing fails. After a start failure or `onError`, call `start` again. */
export interface PodInformer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The cached raw pod object, or undefined when not (or no longer) in the cache. */
  get(namespace: string, name: string): unknown;
  onEvent(listener: (type: PodEventType, pod: unknown) => void): void;
  /** The list or watch failed; the informer is stopped until `start` is called again. */
  onError(listener: (error: unknown) => void): void;
}

export interface PodSelectors {
  readonly fieldSelector: string;
  readonly labelSelector: string;
}
