// The repair controller's own view of a pod (style-anchors §D2: map API objects into our types at the boundary).
// Built from the raw pod JSON that the informer caches; every field is tolerant of missing or oddly typed
// values, because a pod with a half-written status must be skipped, never crash the controller.
import { z } from 'zod';

export interface ContainerTermination {
  readonly exitCode: number;
  readonly reason: string;
  readonly message: string;
}

export interface InitContainerStatus {
  readonly name: string;
  /** The container's *current* state, when it is terminated. */
  readonly terminated: ContainerTermination | undefined;
  /** `lastTerminationState.terminated` (present only after at least one restart). */
  readonly lastTerminated: ContainerTermination | undefined;
}

export interface RepairPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly podIp: string;
  /** `metadata.deletionTimestamp` is set: the pod is being deleted (graceful deletion keeps it a while). */
  readonly terminating: boolean;
  readonly initContainerStatuses: readonly InitContainerStatus[];
  /** The raw pod object (JSON as served by the API), for the plugin's pod → redirect mapping. */
  readonly manifest: unknown;
}

const StringMapSchema = z
  .record(z.string(), z.unknown())
  .catch({})
  .transform((record) => {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(record)) {
      if (typeof value === 'string') out[key] = value;
    }
    return out;
  });

const TerminationSchema = z
  .object({
    exitCode: z.number().int().catch(-1),
    reason: z.string().catch(''),
    message: z.string().catch(''),
  })
  .optional()
  .catch(undefined);

const StateSchema = z
  .object({ terminated: TerminationSchema })
  .optional()
  .catch(undefined)
  .transform((state) => state?.terminated);

const InitStatusSchema = z.object({
  name: z.string().catch(''),
  state: StateSchema,
  lastState: StateSchema,
});

const PodSchema = z.object({
  metadata: z.object({
    name: z.string().min(1),
    namespace: z.string().catch(''),
    uid: z.string().catch(''),
    resourceVersion: z.string().catch(''),
    labels: StringMapSchema.optional().transform((value) => value ?? {}),
    annotations: StringMapSchema.optional().transform((value) => value ?? {}),
    deletionTimestamp: z.string().optional().catch(undefined),
  }),
  status: z
    .object({
      podIP: z.string().catch(''),
      initContainerStatuses: z
        .array(z.unknown())
        .catch([])
        .transform((items) =>
          items.flatMap((item) => {
            const parsed = InitStatusSchema.safeParse(item);
            return parsed.success ? [parsed.data] : [];
          }),
        ),
    })
    .partial()
    .optional()
    .catch(undefined),
});

function withDefaultMessage(value: { exitCode: number; reason: string; message: string } | undefined) {
  return value === undefined
    ? undefined
    : { exitCode: value.exitCode, reason: value.reason, message: value.message };
}

/** Maps a raw pod object to a RepairPod; undefined when it has no name (not a usable pod). */
export function repairPodFromManifest(manifest: unknown): RepairPod | undefined {
  const parsed = PodSchema.safeParse(manifest);
  if (!parsed.success) return undefined;
  const { metadata, status } = parsed.data;
  return {
    namespace: metadata.namespace,
    name: metadata.name,
    uid: metadata.uid,
    resourceVersion: metadata.resourceVersion,
    labels: metadata.labels,
    annotations: metadata.annotations,
    podIp: status?.podIP ?? '',
    terminating: (metadata.deletionTimestamp ?? '') !== '',
    initContainerStatuses: (status?.initContainerStatuses ?? []).map((item) => ({
      name: item.name,
      terminated: withDefaultMessage(item.state),
      lastTerminated: withDefaultMessage(item.lastState),
    })),
    manifest,
  };
}

/** The informer/work-queue key of a pod: `namespace/name`. */
export function podKey(pod: { readonly namespace: string; readonly name: string }): string {
  return `${pod.namespace}/${pod.name}`;
}
