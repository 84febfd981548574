// cniVersion handling (containernetworking/cni `pkg/version`): decode from the netconf, membership check,
// semver comparison for the CHECK/GC/STATUS gates.
import { goField } from './go-field.ts';
import { CniError, CNI_ERROR, SUPPORTED_VERSIONS } from './spec.ts';

/** The config's cniVersion; absent or "" means 0.1.0 (ConfigDecoder). Not a string → decoding failure. */
export function configVersion(netConf: Readonly<Record<string, unknown>>): string {
  const value = goField(netConf, 'cniVersion');
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

/** Go's strconv.Atoi: optional sign, decimal digits, within a 64-bit int. */
const GO_INT = /^[+-]?\d+$/;
const GO_INT_MAX = 9223372036854775807n;

/** containernetworking/cni `version.ParseVersion`: one to three numeric parts, missing ones are 0 ("1.1" is
 * 1.1.0); anything else is a decoding failure with Go's wording. */
function parseVersion(version: string): [number, number, number] {
  if (version === '') return [0, 1, 0];
  const parts = version.split('.');
  if (parts.length >= 4) {
    throw new CniError(
      CNI_ERROR.DECODING_FAILURE,
      `invalid version ${JSON.stringify(version)}: too many parts`,
    );
  }
  const names = ['major', 'minor', 'micro'];
  const numbers: [number, number, number] = [0, 0, 0];
  parts.forEach((part, index) => {
    const atoiError = (reason: string) =>
      new CniError(
        CNI_ERROR.DECODING_FAILURE,
        `failed to convert ${names[index]} version part ${JSON.stringify(part)}: strconv.Atoi: parsing ${JSON.stringify(part)}: ${reason}`,
      );
    if (!GO_INT.test(part)) throw atoiError('invalid syntax');
    const value = BigInt(part);
    if (value > GO_INT_MAX || value < -GO_INT_MAX - 1n) throw atoiError('value out of range');
    numbers[index] = Number(part);
  });
  return numbers;
}

/** version >= other (numeric per part). Unparseable → decoding failure, as upstream. */
export function versionAtLeast(version: string, other: string): boolean {
  const left = parseVersion(version);
  const right = parseVersion(other);
  for (let index = 0; index < 3; index += 1) {
    if (left[index] !== right[index]) return left[index]! > right[index]!;
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
