// Pod → redirect parameters (behaviour §2.7, upstream cni/pkg/plugin/sidecar_redirect.go). Pure: the pod manifest
// and a snapshot of the plugin's environment in, a CaptureConfig out. Shared with `install-cni rules --pod` and the
// repair controller so that all three derive exactly the same parameters from the same pod.
import * as z from 'zod/mini';
import { AppError, bounded, quoted } from '../errors.ts';
import { parseGoBool } from '../go-bool.ts';
import type { CaptureConfig, InterceptionMode } from '../rules/capture-config.ts';
import { DEFAULT_CAPTURE_CONFIG } from '../rules/capture-config.ts';
import { cidrError } from '../cni/cidr.ts';

/** What the plugin needs to know about a pod (upstream's PodInfo), independent of any Kubernetes client. */
export interface PodInfo {
  readonly name: string;
  readonly namespace: string;
  /** Names of init containers then regular containers. */
  readonly containers: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** 2nd arg of istio-proxy when its 1st arg is `proxy` (e.g. `sidecar`, `router`); "" otherwise. */
  readonly proxyType: string;
  /** istio-proxy env: literal `value`s; `valueFrom` entries yield "". */
  readonly proxyEnvironments: Readonly<Record<string, string>>;
  /** istio-proxy container securityContext.runAsUser / runAsGroup (the pod-level context is not consulted). */
  readonly proxyUid: number | undefined;
  readonly proxyGid: number | undefined;
  readonly hostNetwork: boolean;
}

// Built on first use: constructing zod schemas costs start-up time, and a pass-through ADD (no pod lookup) never
// parses a pod. Schemas are immutable, so one instance serves every field of its shape: each instance costs
// ≈ 15–30 µs to build in a fresh process.
function buildPodSchema() {
  const string = z.string();
  const optionalString = z.optional(z.nullable(string));
  const optionalNumber = z.optional(z.nullable(z.number()));
  const optionalList = <T extends z.core.SomeType>(item: T) => z.optional(z.nullable(z.array(item)));
  const stringMap = z.optional(z.nullable(z.record(string, string)));
  const containerList = optionalList(
    z.looseObject({
      name: string,
      args: optionalList(string),
      env: optionalList(z.looseObject({ name: string, value: optionalString })),
      securityContext: z.optional(
        z.nullable(z.looseObject({ runAsUser: optionalNumber, runAsGroup: optionalNumber })),
      ),
    }),
  );
  return z.looseObject({
    metadata: z.looseObject({
      name: optionalString,
      namespace: optionalString,
      labels: stringMap,
      annotations: stringMap,
    }),
    spec: z.looseObject({
      containers: containerList,
      initContainers: containerList,
      hostNetwork: z.optional(z.nullable(z.boolean())),
    }),
  });
}
let podSchema: ReturnType<typeof buildPodSchema> | undefined;
type Container = NonNullable<z.infer<ReturnType<typeof buildPodSchema>>['spec']['containers']>[number];

function describeIssues(error: z.core.$ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const where = issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
      return `${where}: ${issue.message}`;
    })
    .join('; ');
}

/** Validates a Pod object (JSON as returned by the API server) and extracts the plugin's view of it (§2.5 step 10).
 * Throws AppError 'KUBE_API' when the object is not a Pod the plugin can read. */
export function podInfoFromManifest(manifest: unknown): PodInfo {
  const parsed = (podSchema ??= buildPodSchema()).safeParse(manifest);
  if (!parsed.success) {
    throw new AppError('KUBE_API', `invalid pod object: ${describeIssues(parsed.error)}`);
  }
  const pod = parsed.data;
  const all: Container[] = [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])];
  let proxyType = '';
  let proxyEnvironments: Record<string, string> = {};
  let proxyUid: number | undefined;
  let proxyGid: number | undefined;
  for (const container of all) {
    if (container.name !== 'istio-proxy') continue;
    const args = container.args ?? [];
    proxyType = args.length >= 2 && args[0] === 'proxy' ? (args[1] ?? '') : '';
    proxyEnvironments = {};
    for (const entry of container.env ?? []) proxyEnvironments[entry.name] = entry.value ?? '';
    proxyUid = container.securityContext?.runAsUser ?? undefined;
    proxyGid = container.securityContext?.runAsGroup ?? undefined;
  }
  return Object.freeze({
    name: pod.metadata.name ?? '',
    namespace: pod.metadata.namespace ?? '',
    containers: Object.freeze(all.map((container) => container.name)),
    labels: Object.freeze({ ...(pod.metadata.labels ?? {}) }),
    annotations: Object.freeze({ ...(pod.metadata.annotations ?? {}) }),
    proxyType,
    proxyEnvironments: Object.freeze(proxyEnvironments),
    proxyUid,
    proxyGid,
    hostNetwork: pod.spec.hostNetwork ?? false,
  });
}

// ---- validators: messages follow upstream's wording (Go error text) so operators can search for them ----

type Validator = (value: string) => string | undefined;

const alwaysValid: Validator = () => undefined;

function validateInterceptionMode(mode: string): string | undefined {
  return mode === 'REDIRECT' || mode === 'TPROXY' ? undefined : `interceptionMode invalid: ${mode}`;
}

function validateCidrList(cidrs: string): string | undefined {
  if (cidrs.length === 0) return undefined;
  for (const cidr of cidrs.split(',')) {
    const problem = cidrError(cidr);
    if (problem !== undefined) return `failed parsing cidr '${bounded(cidr)}': ${problem}`;
  }
  return undefined;
}

function validateCidrListWithWildcard(ranges: string): string | undefined {
  if (ranges === '*') return undefined;
  const problem = validateCidrList(ranges);
  return problem === undefined ? undefined : `IPRanges invalid: ${problem}`;
}

function portError(text: string): string | undefined {
  const trimmed = text.trim();
  const goQuoted = quoted(trimmed);
  if (!/^\d+$/.test(trimmed)) return `strconv.ParseUint: parsing ${goQuoted}: invalid syntax`;
  if (Number(trimmed) > 65535) return `strconv.ParseUint: parsing ${goQuoted}: value out of range`;
  return undefined;
}

function validatePortList(ports: string): string | undefined {
  const trimmed = ports.trim();
  if (trimmed.length === 0) return undefined;
  for (const port of trimmed.split(',')) {
    const problem = portError(port);
    if (problem !== undefined) {
      return `portList ${quoted(ports)} invalid: failed parsing port ${quoted(port)}: ${problem}`;
    }
  }
  return undefined;
}

function validatePortListWithWildcard(ports: string): string | undefined {
  return ports === '*' ? undefined : validatePortList(ports);
}

const INTERFACE_NAME_RE = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/;

function validateInterfaceNames(interfaces: string): string | undefined {
  if (interfaces.length === 0) return undefined;
  for (const raw of interfaces.split(',')) {
    const name = raw.trim();
    // "eth1," and "a,,b" hold an empty name: rejected, as upstream's validation rejects it.
    if (name.length === 0) return 'empty interface name';
    // Bytes, as Go's len() counts them: "éééééééé" is 16 and too long upstream, not a character error.
    if (Buffer.byteLength(name, 'utf8') > 15) return `interface name ${quoted(name)} too long (max 15 chars)`;
    if (!INTERFACE_NAME_RE.test(name)) {
      return `interface name ${quoted(name)} contains invalid characters`;
    }
  }
  return undefined;
}

interface AnnotationParam {
  readonly key: string;
  readonly defaultValue: string;
  readonly validate: Validator;
}

/** Upstream's annotationRegistry: parameter name → annotation key, default, validator. */
const ANNOTATIONS = {
  redirectMode: {
    key: 'sidecar.istio.io/interceptionMode',
    defaultValue: 'REDIRECT',
    validate: validateInterceptionMode,
  },
  includeIPCidrs: {
    key: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
    defaultValue: '*',
    validate: validateCidrListWithWildcard,
  },
  excludeIPCidrs: {
    key: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
    defaultValue: '',
    validate: validateCidrList,
  },
  excludeInboundPorts: {
    key: 'traffic.sidecar.istio.io/excludeInboundPorts',
    defaultValue: '15020',
    validate: validatePortListWithWildcard,
  },
  includeInboundPorts: {
    key: 'traffic.sidecar.istio.io/includeInboundPorts',
    defaultValue: '*',
    validate: validatePortListWithWildcard,
  },
  excludeOutboundPorts: {
    key: 'traffic.sidecar.istio.io/excludeOutboundPorts',
    defaultValue: '15020',
    validate: validatePortListWithWildcard,
  },
  includeOutboundPorts: {
    key: 'traffic.sidecar.istio.io/includeOutboundPorts',
    defaultValue: '',
    validate: validatePortListWithWildcard,
  },
  excludeInterfaces: {
    key: 'traffic.sidecar.istio.io/excludeInterfaces',
    defaultValue: '',
    validate: validateInterfaceNames,
  },
  'reroute-virtual-interfaces': {
    key: 'istio.io/reroute-virtual-interfaces',
    defaultValue: '',
    validate: alwaysValid,
  },
  kubevirtInterfaces: {
    key: 'traffic.sidecar.istio.io/kubevirtInterfaces',
    defaultValue: '',
    validate: alwaysValid,
  },
} as const satisfies Record<string, AnnotationParam>;

type AnnotationName = keyof typeof ANNOTATIONS;

function annotationOrDefault(
  name: AnnotationName,
  annotations: Readonly<Record<string, string>>,
): { found: boolean; value: string } {
  const param: AnnotationParam = ANNOTATIONS[name];
  if (!Object.hasOwn(annotations, param.key)) return { found: false, value: param.defaultValue };
  const value = annotations[param.key] ?? '';
  const problem = param.validate(value);
  if (problem !== undefined) {
    throw new AppError(
      'ANNOTATION_INVALID',
      `annotation value error for value ${name}; annotationFound = true: ${problem}`,
    );
  }
  return { found: true, value };
}

/** Order-preserving de-duplication (upstream dedupPorts; non-numeric entries are kept as they are). */
export function dedupPorts(ports: readonly string[]): string[] {
  return [...new Set(ports)];
}

/** Exclude-inbound post-processing: always add 15020,15021,15090 (quirk §8.7 replicated: `*` survives). */
export function withMandatoryInboundExclusions(value: string): string {
  let ports = value.trim();
  if (ports.length > 0 && !ports.endsWith(',')) ports += ',';
  ports += '15020,15021,15090';
  return dedupPorts(ports.split(',')).join(',');
}

function proxyBool(pod: PodInfo, name: string, what: string, warnings: string[]): boolean {
  if (!Object.hasOwn(pod.proxyEnvironments, name)) return false;
  const text = pod.proxyEnvironments[name] ?? '';
  const value = parseGoBool(text);
  if (value === undefined) {
    warnings.push(
      `cannot parse ${what} environment variable strconv.ParseBool: parsing ${quoted(text)}: invalid syntax`,
    );
    return false;
  }
  return value;
}

/** Like captureConfigFromPod, also returning the warnings upstream logs for unparseable proxy env booleans. */
export function captureConfigFromPodWithWarnings(
  pod: PodInfo,
  env: Readonly<Record<string, string | undefined>>,
): { config: CaptureConfig; warnings: readonly string[] } {
  const annotations = pod.annotations;
  const redirectMode = annotationOrDefault('redirectMode', annotations).value as InterceptionMode;
  const includeIPCidrs = annotationOrDefault('includeIPCidrs', annotations).value;
  const excludeIPCidrs = annotationOrDefault('excludeIPCidrs', annotations).value;
  const excludeInboundPorts = annotationOrDefault('excludeInboundPorts', annotations).value;
  const includeInboundPorts = annotationOrDefault('includeInboundPorts', annotations).value;
  const excludeOutboundPorts = annotationOrDefault('excludeOutboundPorts', annotations).value;
  const includeOutboundPorts = annotationOrDefault('includeOutboundPorts', annotations).value;
  const excludeInterfaces = annotationOrDefault('excludeInterfaces', annotations).value;
  let reroute = annotationOrDefault('reroute-virtual-interfaces', annotations);
  if (!reroute.found) reroute = annotationOrDefault('kubevirtInterfaces', annotations);

  const warnings: string[] = [];
  const dns = proxyBool(pod, 'ISTIO_META_DNS_CAPTURE', 'DNS capture', warnings);
  const dualStack = proxyBool(pod, 'ISTIO_DUAL_STACK', 'dual stack', warnings);
  const dropInvalid = proxyBool(pod, 'INVALID_DROP', 'invalid drop', warnings);

  const config: CaptureConfig = Object.freeze({
    ...DEFAULT_CAPTURE_CONFIG,
    proxyPort: '15001',
    inboundCapturePort: '15006',
    inboundTunnelPort: '15008',
    proxyUid: pod.proxyUid !== undefined && pod.proxyUid !== 0 ? String(pod.proxyUid) : '1337',
    proxyGid: pod.proxyGid !== undefined && pod.proxyGid !== 0 ? String(pod.proxyGid) : '1337',
    inboundInterceptionMode: redirectMode,
    inboundPortsInclude: includeInboundPorts,
    inboundPortsExclude: withMandatoryInboundExclusions(excludeInboundPorts),
    outboundPortsInclude: includeOutboundPorts,
    outboundPortsExclude: excludeOutboundPorts,
    outboundIpRangesInclude: includeIPCidrs,
    outboundIpRangesExclude: excludeIPCidrs,
    excludeInterfaces,
    rerouteVirtualInterfaces: reroute.value,
    redirectDns: dns,
    captureAllDns: dns,
    dnsServersV4: [],
    dnsServersV6: [],
    dropInvalid,
    dualStack,
    enableIpv6: false,
    ...outboundEnvConfig(env),
  });
  return { config, warnings };
}

/** The parameters istio-iptables reads from its environment (§2.8 step 2), with its defaults. */
export function outboundEnvConfig(
  env: Readonly<Record<string, string | undefined>>,
): Pick<CaptureConfig, 'ownerGroupsInclude' | 'ownerGroupsExclude' | 'hostIpv4LoopbackCidr'> {
  return {
    ownerGroupsInclude: env['ISTIO_OUTBOUND_OWNER_GROUPS'] ?? '*',
    ownerGroupsExclude: env['ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE'] ?? '',
    hostIpv4LoopbackCidr: env['ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR'] ?? '127.0.0.1/32',
  };
}

/** The redirect parameters the plugin programs for `pod` (§2.7). `env` supplies ISTIO_OUTBOUND_OWNER_GROUPS,
 * ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE and ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR (§2.8 step 2). Throws AppError
 * 'ANNOTATION_INVALID' with upstream's message ("annotation value error for value <param>; …"). */
export function captureConfigFromPod(
  pod: PodInfo,
  env: Readonly<Record<string, string | undefined>>,
): CaptureConfig {
  return captureConfigFromPodWithWarnings(pod, env).config;
}
