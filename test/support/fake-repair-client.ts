// A stand-in for the repair controller's API side (RepairClientPort): an informer that lists the given pods once
// released, and recording pod writes. For unit tests of the controller; the integration tests use the real client
// against the API test server.
import type { RepairStartOptions } from '../../src/repair/controller.ts';

/** A client whose informer lists `pods` once `release` is called; `onDelete` runs for each DELETE, `onEvent` for
 * each event recorded (the reconcile's last step). */
export function fakeRepairClient(
  pods: object[],
  onDelete: (name: string) => void,
  onEvent: () => void = () => undefined,
) {
  const cache = new Map<string, object>();
  const listeners: ((type: string, pod: unknown) => void)[] = [];
  let release: () => void = () => undefined;
  const listed = new Promise<void>((resolve) => (release = resolve));
  const client = () => ({
    api: {
      deletePod: (pod: { name: string }) => {
        onDelete(pod.name);
        return Promise.resolve();
      },
      labelPod: () => Promise.resolve(),
      recordPodEvent: () => {
        onEvent();
        return Promise.resolve();
      },
      getNodeTaints: () => Promise.resolve({ resourceVersion: '1', taints: [] }),
      setNodeTaints: () => Promise.resolve(),
    },
    createPodInformer: () => ({
      async start() {
        await listed;
        for (const pod of pods) {
          const name = (pod as { metadata: { name: string } }).metadata.name;
          cache.set(`ns/${name}`, pod);
          for (const listener of listeners) listener('add', pod);
        }
      },
      stop: () => Promise.resolve(),
      get: (namespace: string, name: string) => cache.get(`${namespace}/${name}`),
      onEvent: (listener: (type: string, pod: unknown) => void) => listeners.push(listener),
      onError: () => undefined,
    }),
  });
  return { client: client as unknown as NonNullable<RepairStartOptions['client']>, release };
}
