// The repair controller's API server client (behaviour §3.1: the DaemonSet's own service account, not the
// plugin kubeconfig). Wraps @kubernetes/client-node and exposes only the narrow RepairApi / PodInformer ports,
// mapping its exceptions to KubeError.
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { KubeError, errorMessage } from '../errors.ts';
import type {
  NodeTaints,
  PodEventType,
  PodInformer,
  PodRef,
  PodSelectors,
  RepairApi,
  Taint,
} from '../repair/api.ts';

export interface RepairClientSettings {
  readonly kubernetesServiceHost: string;
  readonly kubernetesServicePort: string;
  readonly kubernetesServiceProtocol: string;
  readonly serviceAccountDir: string;
  /** Resolved CA file (KUBE_CA_FILE or <serviceAccountDir>/ca.crt). */
  readonly kubeCaFile: string;
  readonly skipTlsVerify: boolean;
  /** Recorded as the event source host. */
  readonly nodeName: string;
}

export interface RepairClient {
  readonly api: RepairApi;
  createPodInformer(selectors: PodSelectors): PodInformer;
}

function serverUrl(settings: RepairClientSettings): string {
  const host = settings.kubernetesServiceHost.includes(':')
    ? `[${settings.kubernetesServiceHost}]`
    : settings.kubernetesServiceHost;
  const protocol = settings.kubernetesServiceProtocol === '' ? 'https' : settings.kubernetesServiceProtocol;
  return `${protocol}://${host}:${settings.kubernetesServicePort}`;
}

/** A KubeConfig equivalent to client-go's in-cluster config, built from the agent settings. The token is read
 * through client-node's tokenFile provider, which re-reads it every 60 s (projected token rotation). */
export function repairKubeConfig(settings: RepairClientSettings): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser(
    {
      name: 'in-cluster',
      server: serverUrl(settings),
      skipTLSVerify: settings.skipTlsVerify,
      ...(settings.skipTlsVerify ? {} : { caFile: settings.kubeCaFile }),
    },
    {
      name: 'istio-cni',
      authProvider: { name: 'tokenFile', config: { tokenFile: `${settings.serviceAccountDir}/token` } },
    },
  );
  return kc;
}

export function toKubeError(what: string, error: unknown): KubeError {
  if (error instanceof KubeError) return error;
  if (error instanceof ApiException) {
    const status = error.code;
    const body: unknown = error.body;
    let detail = '';
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: unknown };
        detail = typeof parsed.message === 'string' ? parsed.message : body;
      } catch {
        detail = body;
      }
    } else if (
      body !== null &&
      typeof body === 'object' &&
      typeof (body as { message?: unknown }).message === 'string'
    ) {
      detail = (body as { message: string }).message;
    }
    const retryable = status === 409 || status === 429 || status >= 500;
    return new KubeError(`${what}: ${status}${detail === '' ? '' : ` ${detail}`}`, {
      status,
      retryable,
      cause: error,
    });
  }
  return new KubeError(`${what}: ${errorMessage(error)}`, { retryable: true, cause: error });
}

async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toKubeError(what, error);
  }
}

function parseTaints(value: unknown): Taint[] {
  if (!Array.isArray(value)) return [];
  const taints: Taint[] = [];
  for (const item of value as unknown[]) {
    if (item === null || typeof item !== 'object') continue;
    const record = item as Record<string, unknown>;
    if (typeof record['key'] !== 'string' || typeof record['effect'] !== 'string') continue;
    const timeAdded = record['timeAdded'];
    taints.push({
      key: record['key'],
      effect: record['effect'],
      ...(typeof record['value'] === 'string' ? { value: record['value'] } : {}),
      ...(timeAdded instanceof Date
        ? { timeAdded: timeAdded.toISOString() }
        : typeof timeAdded === 'string'
          ? { timeAdded }
          : {}),
    });
  }
  return taints;
}

export function createRepairClient(settings: RepairClientSettings): RepairClient {
  const kc = repairKubeConfig(settings);
  const core = kc.makeApiClient(CoreV1Api);

  const api: RepairApi = {
    async deletePod(pod: PodRef): Promise<void> {
      await call(`delete pod ${pod.namespace}/${pod.name}`, () =>
        core.deleteNamespacedPod({
          name: pod.name,
          namespace: pod.namespace,
          body: { preconditions: { uid: pod.uid, resourceVersion: pod.resourceVersion } },
        }),
      );
    },
    async labelPod(pod: PodRef, labels: Readonly<Record<string, string>>): Promise<void> {
      await call(`label pod ${pod.namespace}/${pod.name}`, () =>
        core.patchNamespacedPodStatus(
          { name: pod.name, namespace: pod.namespace, body: { metadata: { labels } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      );
    },
    async recordPodEvent(pod: PodRef, reason: string, message: string): Promise<void> {
      const now = new Date();
      await call(`record event on pod ${pod.namespace}/${pod.name}`, () =>
        core.createNamespacedEvent({
          namespace: pod.namespace,
          body: {
            metadata: {
              name: `${pod.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
              namespace: pod.namespace,
            },
            involvedObject: {
              kind: 'Pod',
              apiVersion: 'v1',
              namespace: pod.namespace,
              name: pod.name,
              uid: pod.uid,
              resourceVersion: pod.resourceVersion,
            },
            reason,
            message,
            type: 'Warning',
            count: 1,
            firstTimestamp: now,
            lastTimestamp: now,
            source: {
              component: 'cni-repair',
              ...(settings.nodeName === '' ? {} : { host: settings.nodeName }),
            },
            reportingComponent: 'cni-repair',
            reportingInstance: settings.nodeName,
          },
        }),
      );
    },
    async getNodeTaints(nodeName: string): Promise<NodeTaints> {
      const node = await call(`get node ${nodeName}`, () => core.readNode({ name: nodeName }));
      return {
        resourceVersion: node.metadata?.resourceVersion ?? '',
        taints: parseTaints(node.spec?.taints),
      };
    },
    async setNodeTaints(nodeName: string, resourceVersion: string, taints: readonly Taint[]): Promise<void> {
      await call(`patch node ${nodeName} taints`, () =>
        core.patchNode(
          { name: nodeName, body: { metadata: { resourceVersion }, spec: { taints } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      );
    },
  };

  function createPodInformer(selectors: PodSelectors): PodInformer {
    const listFn = () =>
      core.listPodForAllNamespaces({
        ...(selectors.fieldSelector === '' ? {} : { fieldSelector: selectors.fieldSelector }),
        ...(selectors.labelSelector === '' ? {} : { labelSelector: selectors.labelSelector }),
      });
    const informer = new ListWatch<KubernetesObject>(
      '/api/v1/pods',
      new Watch(kc),
      listFn,
      false,
      selectors.labelSelector === '' ? undefined : selectors.labelSelector,
      selectors.fieldSelector === '' ? undefined : selectors.fieldSelector,
    );
    return {
      async start(): Promise<void> {
        // ListWatch reports list failures through the error callbacks, not by rejecting start().
        let failure: unknown;
        const onFailure = (error: unknown) => {
          failure = error ?? new Error('pod list/watch failed');
        };
        informer.on('error', onFailure);
        try {
          await informer.start();
        } finally {
          informer.off('error', onFailure);
        }
        if (failure !== undefined) {
          await informer.stop();
          throw toKubeError('list pods', failure);
        }
      },
      stop: () => informer.stop(),
      get: (namespace: string, name: string) => informer.get(name, namespace),
      onEvent(listener: (type: PodEventType, pod: unknown) => void): void {
        informer.on('add', (pod) => listener('add', pod));
        informer.on('update', (pod) => listener('update', pod));
        informer.on('delete', (pod) => listener('delete', pod));
      },
      onError(listener: (error: unknown) => void): void {
        informer.on('error', (error: unknown) => listener(toKubeError('watch pods', error)));
      },
    };
  }

  return { api, createPodInformer };
}
