// `install-cni version`, as upstream's pkg/version cobra command prints it: the long form by default (Go's `%#v` of
// its BuildInfo), `-s` the version alone, `-o json|yaml` the same fields under `clientVersion`. Pure: the runtime's
// name comes from bin/.
import { stringify } from 'yaml';

export interface BuildInfo {
  readonly version: string;
  /** Upstream's GolangVersion: here the JavaScript runtime the agent runs on (`bun 1.x`, `node v24.x`). */
  readonly runtime: string;
}

export type VersionOutput = '' | 'json' | 'yaml';

export function parseVersionOutput(value: string | undefined): VersionOutput {
  if (value === undefined || value === '') return '';
  if (value === 'json' || value === 'yaml') return value;
  throw new Error(`--output must be 'yaml' or 'json'`);
}

/** Upstream fills revision, status and tag at build time (-ldflags); ours are not recorded, so they read
 * "unknown", as an upstream binary built without them does. */
export function renderVersion(info: BuildInfo, short: boolean, output: VersionOutput): string {
  const fields = {
    version: info.version,
    revision: 'unknown',
    golang_version: info.runtime,
    status: 'unknown',
    tag: 'unknown',
  };
  if (output === 'json') return `${JSON.stringify({ clientVersion: fields }, null, 2)}\n`;
  // ghodss/yaml goes through a map: keys sorted; Fprintln adds a blank line after the document.
  if (output === 'yaml') {
    const sorted = Object.fromEntries(Object.entries(fields).sort(([a], [b]) => a.localeCompare(b)));
    return `${stringify({ clientVersion: sorted })}\n`;
  }
  if (short) return `${info.version}\n`;
  const quoted = (value: string) => JSON.stringify(value);
  return (
    `version.BuildInfo{Version:${quoted(fields.version)}, GitRevision:${quoted(fields.revision)}, ` +
    `GolangVersion:${quoted(fields.golang_version)}, BuildStatus:${quoted(fields.status)}, ` +
    `GitTag:${quoted(fields.tag)}}\n`
  );
}
