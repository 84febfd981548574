// The plugin's netconf extension (behaviour §2.3): zod/mini (cheaper start-up than classic zod), loose (unknown
// keys ignored, runtimes add fields), Go-like (`null` reads as the zero value, keys match ignoring case).
import * as z from 'zod/mini';
import { goFields } from '../cni/go-field.ts';

// One instance per shape, shared by the fields (each costs ≈ 15–30 µs to build in a fresh process).
const string = z.string();
const unknown = z.unknown();
const optionalString = z.optional(z.nullable(string));
const optionalBool = z.optional(z.nullable(z.boolean()));

export const PluginConfigSchema = z.looseObject({
  cniVersion: optionalString,
  name: string,
  type: optionalString,
  prevResult: z.optional(unknown),
  plugin_log_level: optionalString,
  cni_agent_run_dir: optionalString,
  ambient_enabled: optionalBool,
  enablement_selectors: z.optional(z.nullable(z.array(unknown))),
  exclude_namespaces: z.optional(z.nullable(z.array(string))),
  pod_namespace: optionalString,
  native_nftables: optionalBool,
  enable_ambient_detection_retry: optionalBool,
  /** Ours: overall pod-lookup deadline, written by the agent only when POD_LOOKUP_DEADLINE_SECONDS is set. */
  pod_lookup_deadline_seconds: z.optional(z.nullable(z.number().check(z.positive()))),
});

export type PluginLogLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'none';

export interface PluginConfig {
  readonly cniVersion: string;
  readonly name: string;
  readonly prevResult: unknown;
  /** undefined: no override (default info). */
  readonly pluginLogLevel: PluginLogLevel | undefined;
  readonly cniAgentRunDir: string;
  readonly ambientEnabled: boolean;
  readonly enablementSelectors: readonly unknown[];
  readonly excludeNamespaces: readonly string[];
  readonly podNamespace: string;
  readonly nativeNftables: boolean;
  readonly enableAmbientDetectionRetry: boolean;
  readonly podLookupDeadlineSeconds: number | undefined;
}

const LEVELS: readonly string[] = ['debug', 'info', 'warn', 'error', 'fatal', 'none'];

const FIELDS = Object.keys(PluginConfigSchema.shape);

/** Throws Error("failed to parse network configuration: …") naming the offending fields. Keys match the fields
 * ignoring case, as Go decodes the netconf. */
export function parsePluginConfig(
  netConf: Readonly<Record<string, unknown>>,
  cniVersion: string,
): PluginConfig {
  const parsed = PluginConfigSchema.safeParse(goFields(netConf, FIELDS));
  if (!parsed.success) {
    const detail = parsed.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`)
      .join('; ');
    throw new Error(`failed to parse network configuration: ${detail}`);
  }
  const data = parsed.data;
  const level = (data.plugin_log_level ?? '').toLowerCase();
  return Object.freeze({
    cniVersion,
    name: data.name,
    prevResult: data.prevResult,
    pluginLogLevel: LEVELS.includes(level) ? (level as PluginLogLevel) : undefined,
    cniAgentRunDir: data.cni_agent_run_dir ?? '',
    ambientEnabled: data.ambient_enabled ?? false,
    enablementSelectors: Object.freeze([...(data.enablement_selectors ?? [])]),
    excludeNamespaces: Object.freeze([...(data.exclude_namespaces ?? [])]),
    podNamespace: data.pod_namespace ?? '',
    nativeNftables: data.native_nftables ?? false,
    enableAmbientDetectionRetry: data.enable_ambient_detection_retry ?? false,
    podLookupDeadlineSeconds: data.pod_lookup_deadline_seconds ?? undefined,
  });
}
