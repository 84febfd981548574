// Pure: build our plugin entry (§1.5.3), merge it into another CNI's config (§1.5.5), remove it (§1.10), and
// decide whether a config file already carries it (§1.5.4). Other plugins' fields are kept as opaque JSON.
import { AppError } from '../errors.ts';
import type { AgentConfig } from '../config/load.ts';
import {
  isJsonObject,
  marshalOrdered,
  marshalSorted,
  parseGoJson,
  type Json,
  type JsonObject,
} from './go-json.ts';

export const PLUGIN_TYPE = 'istio-cni';

export type PluginEntryConfig = Pick<
  AgentConfig,
  | 'pluginLogLevel'
  | 'runDir'
  | 'ambientEnabled'
  | 'excludeNamespaces'
  | 'podNamespace'
  | 'nativeNftables'
  | 'enableAmbientDetectionRetry'
  | 'podLookupDeadlineSeconds'
>;

/** The standalone entry in upstream's struct order; `pod_lookup_deadline_seconds` only when configured. */
export function buildPluginEntry(config: PluginEntryConfig): JsonObject {
  const entry: JsonObject = {
    cniVersion: '0.3.1',
    name: 'istio-cni',
    type: PLUGIN_TYPE,
    ipam: {},
    dns: {},
    plugin_log_level: config.pluginLogLevel,
    cni_agent_run_dir: config.runDir,
    ambient_enabled: config.ambientEnabled,
    enablement_selectors: [],
    exclude_namespaces: config.excludeNamespaces.length === 0 ? null : [...config.excludeNamespaces],
    pod_namespace: config.podNamespace,
    native_nftables: config.nativeNftables,
    enable_ambient_detection_retry: config.enableAmbientDetectionRetry,
  };
  if (config.podLookupDeadlineSeconds !== undefined) {
    entry['pod_lookup_deadline_seconds'] = config.podLookupDeadlineSeconds;
  }
  return entry;
}

export function renderStandalone(entry: JsonObject): string {
  return marshalOrdered(entry);
}

function conflistError(message: string): AppError {
  return new AppError('CONFLIST_INVALID', message);
}

export function parseJsonObject(text: string, what: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = parseGoJson(text);
  } catch (error) {
    throw conflistError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isJsonObject(parsed)) throw conflistError(`${what} is not a JSON object`);
  return parsed;
}

/** Merge our entry into an existing config (§1.5.5 step 4). A single network becomes a list named
 * `k8s-pod-network` with cniVersion 0.3.1 (quirk §8.2, replicated for byte-compatibility). `isList` (a `.conflist`
 * file): a list whatever it holds — libcni ignores a stray top-level `type` there, where upstream would nest the
 * whole list as one plugin. */
export function insertEntry(
  existingText: string,
  entry: JsonObject,
  what = 'existing CNI config',
  isList = false,
): string {
  const existing = parseJsonObject(existingText, what);
  const ours: JsonObject = { ...entry };
  delete ours['cniVersion'];
  if ('type' in existing && !isList) {
    const network: JsonObject = { ...existing };
    delete network['cniVersion'];
    return marshalSorted({ cniVersion: '0.3.1', name: 'k8s-pod-network', plugins: [network, ours] });
  }
  const plugins = existing['plugins'];
  if (!Array.isArray(plugins)) throw conflistError(`${what} has no "plugins" array`);
  const kept: Json[] = [];
  for (const plugin of plugins) {
    if (!isJsonObject(plugin)) throw conflistError(`${what} has a plugin that is not a JSON object`);
    // Upstream drops only the first istio-cni entry, so a file with two keeps two (the runtime runs the plugin
    // twice per pod) and our "exactly one, last" check would rewrite it forever: drop them all.
    if (plugin['type'] === PLUGIN_TYPE) continue;
    kept.push(plugin);
  }
  kept.push(ours);
  return marshalSorted({ ...existing, plugins: kept });
}

/** Remove the istio-cni plugin entries (§1.10 step 1: upstream removes the first; a second one left behind would
 * name a binary that cleanup deletes next); undefined when there is none (nothing to write). */
export function removeEntry(existingText: string, what = 'CNI config'): string | undefined {
  const existing = parseJsonObject(existingText, what);
  const plugins = existing['plugins'];
  if (!Array.isArray(plugins)) return undefined;
  const isOurs = (plugin: Json): boolean => isJsonObject(plugin) && plugin['type'] === PLUGIN_TYPE;
  if (!plugins.some(isOurs)) return undefined;
  return marshalSorted({ ...existing, plugins: plugins.filter((plugin) => !isOurs(plugin)) });
}

/** Chained validity (§1.5.4 step 5): a JSON object whose `plugins` array holds objects with string `type`s, one
 * of them ours. Returns the reason when not valid. */
export function chainedEntryProblem(text: string): string | undefined {
  let doc: JsonObject;
  try {
    doc = parseJsonObject(text, 'config');
  } catch (error) {
    return (error as Error).message;
  }
  const plugins = doc['plugins'];
  if (!Array.isArray(plugins)) return 'no "plugins" array';
  let found = false;
  for (const plugin of plugins) {
    if (!isJsonObject(plugin) || typeof plugin['type'] !== 'string') return 'a plugin has no string "type"';
    if (plugin['type'] === PLUGIN_TYPE) found = true;
  }
  return found ? undefined : 'istio-cni plugin entry missing';
}

export function hasOurEntry(text: string): boolean {
  return chainedEntryProblem(text) === undefined;
}

/** Standalone validity (§1.5.4 step 6). */
export function standaloneProblem(text: string): string | undefined {
  try {
    const doc = parseJsonObject(text, 'config');
    return doc['type'] === PLUGIN_TYPE ? undefined : 'top-level type is not istio-cni';
  } catch (error) {
    return (error as Error).message;
  }
}
