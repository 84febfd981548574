// cniVersion handling (containernetworking/cni `pkg/version`): decode from the netconf, membership check,
// semver comparison for the CHECK/GC/STATUS gates.
import { CniError, CNI_ERROR, SUPPORTED_VERSIONS } from './spec.ts';

/** The config's cniVersion; absent or "" means 0.1.0 (ConfigDecoder). Not a string → decoding failure. */
export function configVersion(netConf: Readonly<Record<string, unknown>>): string {
  const value = netConf['cniVersion'];
  if (value === undefined || value === null || value === '') return '0.1.0';
  if (typeof value !== 'string') {
    throw new CniError(
      CNI_ERROR.DECODING_FAILURE,
      `decoding version from network config: cniVersion must be a string, got ${typeof value}`,
    );
  }
  return value;
}

export function isSupportedVersion(version: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

/** The error skel's VersionReconciler reports. */
export function assertSupportedVersion(version: string): void {
  if (!isSupportedVersion(version)) {
    const supported = SUPPORTED_VERSIONS.map((item) => JSON.stringify(item)).join(' ');
    throw new CniError(
      CNI_ERROR.INCOMPATIBLE_VERSION,
      'incompatible CNI versions',
      `config is ${JSON.stringify(version)}, plugin supports [${supported}]`,
    );
  }
}

function parseSemver(version: string): [number, number, number] {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (match === null) {
    throw new CniError(CNI_ERROR.DECODING_FAILURE, `unable to parse version ${JSON.stringify(version)}`);
  }
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

/** version >= other (semver, numeric per field). Unparseable → decoding failure, as upstream. */
export function versionAtLeast(version: string, other: string): boolean {
  const left = parseSemver(version);
  const right = parseSemver(other);
  for (let index = 0; index < 3; index += 1) {
    const a = left[index] ?? 0;
    const b = right[index] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** Result-shape family of a cniVersion. */
export type ResultFamily = '0.2' | '0.4' | '1';

export function resultFamily(version: string): ResultFamily {
  if (version === '0.1.0' || version === '0.2.0') return '0.2';
  if (version.startsWith('0.')) return '0.4';
  return '1';
}
