// Pure: libcni's rules for the primary network config (§1.5.1): candidate extensions, byte-wise sort, validity.
import { isJsonObject, parseGoJson } from './go-json.ts';

/** libcni ConfFiles extensions. Upstream istio ignores `.json`; container runtimes (libcni) load it, so we do. */
export const CONF_EXTENSIONS = ['.conf', '.conflist', '.json'] as const;

export function hasConfExtension(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot !== -1 && (CONF_EXTENSIONS as readonly string[]).includes(name.slice(dot));
}

export function sortNames(names: readonly string[]): string[] {
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

const isOptString = (value: unknown): boolean => value === undefined || typeof value === 'string';
const isOptObject = (value: unknown): boolean => value === undefined || isJsonObject(value);
/** A Go []string: null items decode as "" there. */
const isOptStrings = (value: unknown): boolean =>
  value === undefined || (Array.isArray(value) && value.every((v) => v === null || typeof v === 'string'));
const isOptBoolish = (value: unknown): boolean =>
  value === undefined || typeof value === 'boolean' || value === 'true' || value === 'false';

/** A plugin is decoded into libcni's NetworkConfig struct with Go's json, which reads `null` as "not set" (the
 * list-level keys are type-asserted instead, so there `null` is rejected). */
function pluginProblem(plugin: unknown): string | undefined {
  if (!isJsonObject(plugin)) return 'a plugin is not a JSON object';
  if (typeof plugin['type'] !== 'string' || plugin['type'] === '') return 'a plugin has no "type"';
  const field = (key: string): unknown => plugin[key] ?? undefined;
  if (!isOptString(field('cniVersion')) || !isOptString(field('name')))
    return 'cniVersion/name must be strings';
  const ipam = field('ipam');
  const dns = field('dns');
  if (!isOptObject(ipam) || !isOptObject(dns)) return 'ipam/dns must be objects';
  // The typed fields of those objects and prevResult: a wrong type fails the whole decode, as above.
  if (isJsonObject(ipam) && !isOptString(ipam['type'] ?? undefined)) return 'ipam.type must be a string';
  if (isJsonObject(dns)) {
    if (!isOptString(dns['domain'] ?? undefined)) return 'dns.domain must be a string';
    for (const key of ['nameservers', 'search', 'options']) {
      if (!isOptStrings(dns[key] ?? undefined)) return `dns.${key} must be an array of strings`;
    }
  }
  if (!isOptObject(field('prevResult'))) return 'prevResult must be an object';
  const capabilities = field('capabilities');
  if (capabilities !== undefined) {
    if (
      !isJsonObject(capabilities) ||
      Object.values(capabilities).some((v) => v !== null && typeof v !== 'boolean')
    ) {
      return 'capabilities must be a map of booleans';
    }
  }
  return undefined;
}

/** Why libcni would reject this file, or undefined when it is a loadable network config. */
export function confFileProblem(name: string, text: string): string | undefined {
  let doc: unknown;
  try {
    // As libcni decodes it: a number Go cannot hold (1e400) fails the file there too.
    doc = parseGoJson(text);
  } catch {
    return 'not valid JSON';
  }
  if (!isJsonObject(doc)) return 'not a JSON object';
  if (!name.endsWith('.conflist')) return pluginProblem(doc);
  if (typeof doc['name'] !== 'string') return 'conflist has no string "name"';
  if (!isOptString(doc['cniVersion'])) return 'cniVersion must be a string';
  const versions = doc['cniVersions'];
  if (versions !== undefined && (!Array.isArray(versions) || versions.some((v) => typeof v !== 'string'))) {
    return 'cniVersions must be an array of strings';
  }
  for (const key of ['disableCheck', 'disableGC', 'loadOnlyInlinedPlugins']) {
    if (!isOptBoolish(doc[key])) return `${key} must be a boolean`;
  }
  const plugins = doc['plugins'];
  // libcni would also load `<dir>/<name>/*.conf` plugin files when `plugins` is absent; no runtime we target
  // ships such configs, so a list without inline plugins counts as invalid (as when that dir is empty).
  if (!Array.isArray(plugins) || plugins.length === 0) return 'conflist has no plugins';
  for (const plugin of plugins) {
    const problem = pluginProblem(plugin);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
