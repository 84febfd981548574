// Pure: the chained install's decisions about a CNI config file (§1.5.4–§1.5.5): whether our entry in it is current,
// whether the merge may touch it at all, and the name a single-network file is converted to.
import { confFileProblem } from './conf-dir.ts';
import { PLUGIN_TYPE } from './conflist.ts';
import { isJsonObject, type Json, type JsonObject } from './go-json.ts';

function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => deepEqual(a[key], b[key]));
  }
  return false;
}

/** Chained file state: undefined when our current entry is present (semantically equal) and last. */
export function chainedStaleness(doc: JsonObject, desired: JsonObject): string | undefined {
  const plugins = doc['plugins'];
  if (!Array.isArray(plugins)) return 'no "plugins" array';
  const ours = plugins.filter((plugin) => isJsonObject(plugin) && plugin['type'] === PLUGIN_TYPE);
  if (ours.length === 0) return 'istio-cni plugin entry missing';
  if (ours.length > 1) return 'more than one istio-cni entry';
  const last = plugins[plugins.length - 1];
  if (!isJsonObject(last) || last['type'] !== PLUGIN_TYPE) return 'istio-cni entry is not the last plugin';
  const expected: JsonObject = { ...desired };
  delete expected['cniVersion'];
  return deepEqual(last, expected) ? undefined : 'istio-cni entry is stale';
}

/** Why the chained merge must not touch `file` (libcni would not load it as it is, or it has nothing besides
 * our entry); undefined when it may. A `.conflist` is a list whatever else it holds; another name (a `.conf`, or
 * CNI_CONF_NAME's free-form name) is a single network when it has a `type`, as the merge treats it. */
export function mergeTargetProblem(
  file: string,
  doc: JsonObject,
  text: string,
  named: boolean,
): string | undefined {
  const asList = file.endsWith('.conflist') || !('type' in doc);
  if (!named) {
    const problem = confFileProblem(asList ? 'x.conflist' : 'x.conf', text);
    if (problem !== undefined) return problem;
  } else if (!asList) {
    if (typeof doc['type'] !== 'string' || doc['type'] === '') return 'it has no "type"';
  } else {
    // CNI_CONF_NAME is taken as named, without libcni's validity check (§1.5.2): only what the merge needs.
    const plugins = doc['plugins'];
    if (!Array.isArray(plugins) || plugins.length === 0) return 'conflist has no plugins';
    if (plugins.some((plugin) => !isJsonObject(plugin) || typeof plugin['type'] !== 'string'))
      return 'a plugin has no "type"';
  }
  if (asList && !(doc['plugins'] as Json[]).some((p) => isJsonObject(p) && p['type'] !== PLUGIN_TYPE))
    return 'it has no plugin besides istio-cni';
  return undefined;
}

/** The `.conflist` a `.conf` or `.json` file is converted to; undefined for a name the conversion leaves alone. */
export function convertedName(file: string): string | undefined {
  if (file.endsWith('.conf')) return `${file}list`;
  if (file.endsWith('.json')) return `${file.slice(0, -'.json'.length)}.conflist`;
  return undefined;
}
