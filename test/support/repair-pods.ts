// Pod manifests for repair-controller tests (shapes as served by the API server).

export interface InitStatusInput {
  name: string;
  state?: unknown;
  lastState?: unknown;
}

export interface PodInput {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  nodeName?: string;
  podIp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  initStatuses?: InitStatusInput[];
}

export function podManifest(input: PodInput = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: input.name ?? 'test',
      namespace: input.namespace ?? 'default',
      uid: input.uid ?? '11111111-2222-3333-4444-555555555555',
      ...(input.resourceVersion === undefined ? {} : { resourceVersion: input.resourceVersion }),
      labels: input.labels ?? {},
      annotations: input.annotations ?? {
        'sidecar.istio.io/status': '{"initContainers":["istio-validation"]}',
      },
    },
    spec: {
      nodeName: input.nodeName ?? 'node-a',
      initContainers: [{ name: 'istio-validation', image: 'proxyv2' }],
      containers: [
        { name: 'app', image: 'app' },
        { name: 'istio-proxy', image: 'proxyv2' },
      ],
    },
    status: {
      phase: 'Pending',
      ...(input.podIp === undefined ? {} : { podIP: input.podIp, podIPs: [{ ip: input.podIp }] }),
      initContainerStatuses: input.initStatuses ?? [],
    },
  };
}

export interface BrokenInput extends PodInput {
  containerName?: string;
  lastExitCode?: number;
  lastMessage?: string;
}

/** A pod whose istio-validation init container is crash-looping (waiting, last exit 126). */
export function brokenPodManifest(input: BrokenInput = {}): Record<string, unknown> {
  return podManifest({
    ...input,
    initStatuses: [
      {
        name: input.containerName ?? 'istio-validation',
        state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: {
          terminated: {
            exitCode: input.lastExitCode ?? 126,
            reason: 'Error',
            message: input.lastMessage ?? '',
          },
        },
      },
    ],
  });
}
