// The ambient branch (behaviour §2.6.2, §2.6.3), pure parts: enablement selectors, the "is this pod ambient"
// predicate, and the add-event body the node agent expects on pluginevent.sock (Go field names, net.IPNet shape).
import * as z from 'zod/mini';
import type { ResultIp } from '../cni/result.ts';

// Built on first use (only an ambient-enabled ADD compiles selectors): zod schema construction costs start-up time.
function buildSelectorPairSchema() {
  const RequirementSchema = z.object({
    key: z.string(),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: z.optional(z.nullable(z.array(z.string()))),
  });
  const LabelSelectorSchema = z.optional(
    z.nullable(
      z.looseObject({
        matchLabels: z.optional(z.nullable(z.record(z.string(), z.string()))),
        matchExpressions: z.optional(z.nullable(z.array(RequirementSchema))),
      }),
    ),
  );
  return z.looseObject({
    podSelector: LabelSelectorSchema,
    namespaceSelector: LabelSelectorSchema,
  });
}
let selectorPairSchema: ReturnType<typeof buildSelectorPairSchema> | undefined;
type LabelSelector = z.infer<ReturnType<typeof buildSelectorPairSchema>>['podSelector'];

export type LabelMatcher = (labels: Readonly<Record<string, string>>) => boolean;

export interface EnablementSelector {
  readonly pod: LabelMatcher;
  readonly namespace: LabelMatcher;
}

function compileSelector(selector: LabelSelector): LabelMatcher {
  const matchLabels = Object.entries(selector?.matchLabels ?? {});
  const expressions = (selector?.matchExpressions ?? []).map((requirement) => {
    const values = requirement.values ?? [];
    if ((requirement.operator === 'In' || requirement.operator === 'NotIn') && values.length === 0) {
      throw new Error(`values: Required value: must be specified when operator is ${requirement.operator}`);
    }
    if ((requirement.operator === 'Exists' || requirement.operator === 'DoesNotExist') && values.length > 0) {
      throw new Error(`values: Forbidden: may not be specified when operator is ${requirement.operator}`);
    }
    return { ...requirement, values };
  });
  return (labels) =>
    matchLabels.every(([key, value]) => labels[key] === value) &&
    expressions.every(({ key, operator, values }) => {
      const has = Object.hasOwn(labels, key);
      switch (operator) {
        case 'In':
          return has && values.includes(labels[key] ?? '');
        case 'NotIn':
          return !has || !values.includes(labels[key] ?? '');
        case 'Exists':
          return has;
        case 'DoesNotExist':
          return !has;
      }
    });
}

/** Throws Error("failed to instantiate ambient enablement selector: …"). */
export function compileEnablementSelectors(raw: readonly unknown[]): readonly EnablementSelector[] {
  return raw.map((entry, index) => {
    const parsed = (selectorPairSchema ??= buildSelectorPairSchema()).safeParse(entry);
    try {
      if (!parsed.success) {
        throw new Error(
          parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
        );
      }
      return {
        pod: compileSelector(parsed.data.podSelector),
        namespace: compileSelector(parsed.data.namespaceSelector),
      };
    } catch (error) {
      throw new Error(
        `failed to instantiate ambient enablement selector: [${index}] ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  });
}

export interface AmbientPodView {
  readonly hostNetwork: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** §2.6.2: not hostNetwork, not sidecar-injected, and one selector pair matches pod and namespace labels. */
export function isAmbientPod(
  pod: AmbientPodView,
  namespaceLabels: Readonly<Record<string, string>>,
  selectors: readonly EnablementSelector[],
): boolean {
  if (pod.hostNetwork) return false;
  if (Object.hasOwn(pod.annotations, 'sidecar.istio.io/status')) return false;
  return selectors.some((selector) => selector.pod(pod.labels) && selector.namespace(namespaceLabels));
}

function maskBytes(prefix: number, bytes: number): Buffer {
  const mask = Buffer.alloc(bytes);
  for (let index = 0; index < bytes; index += 1) {
    const bits = Math.max(0, Math.min(8, prefix - index * 8));
    mask[index] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return mask;
}

/** The body of POST /cmdadd (Go default field names; net.IPNet → {"IP","Mask": base64}). */
export function cniAddEvent(
  netns: string,
  podName: string,
  podNamespace: string,
  ips: readonly ResultIp[] | undefined,
): Record<string, unknown> {
  return {
    Netns: netns,
    PodName: podName,
    PodNamespace: podNamespace,
    IPs:
      ips === undefined || ips.length === 0
        ? null
        : ips.map((ip) => {
            const [address = '', prefix = '0'] = ip.address.split('/');
            const bytes = address.includes(':') ? 16 : 4;
            return {
              Interface: ip.interfaceIndex ?? null,
              Address: { IP: address, Mask: maskBytes(Number(prefix), bytes).toString('base64') },
              Gateway: ip.gateway ?? null,
            };
          }),
  };
}
