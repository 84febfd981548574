// ADD output (behaviour §2.4): the prevResult decoded in the config's cniVersion, re-encoded in that version with
// the key order and omissions of containernetworking/cni's Go types (types/020, types/040, types/100), or an
// empty result when there is none. Unknown fields are dropped and keys match their fields ignoring case, as with
// Go's decoder (go-field.ts); upstream decodes the prevResult from a Go map marshalled again, so among keys that
// differ only in case the last in byte order wins.
import { cidrError } from './cidr.ts';
import { goField } from './go-field.ts';
import { goJson } from './spec.ts';
import type { ResultFamily } from './version.ts';
import { resultFamily } from './version.ts';

type Json = Record<string, unknown>;

export interface ResultIp {
  readonly interfaceIndex: number | undefined;
  readonly address: string;
  readonly gateway: string | undefined;
}

/** A decoded prevResult: the canonical JSON to print plus the IPs (what the ambient event forwards). */
export interface PrevResult {
  readonly json: Json;
  readonly ips: readonly ResultIp[];
}

class ResultShapeError extends Error {}

function fail(path: string, expected: string): never {
  throw new ResultShapeError(`${path}: expected ${expected}`);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optString(source: Json, key: string, path: string): string | undefined {
  const value = goField(source, key, 'sorted');
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') fail(`${path}.${key}`, 'a string');
  return value;
}

function optNumber(source: Json, key: string, path: string): number | undefined {
  const value = goField(source, key, 'sorted');
  if (value === undefined || value === null || value === 0) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(`${path}.${key}`, 'an integer');
  return value;
}

/** A Go `*int` field: absent or null is omitted, every integer (0 included) is kept. */
function optPointerNumber(source: Json, key: string, path: string): number | undefined {
  const value = goField(source, key, 'sorted');
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(`${path}.${key}`, 'an integer');
  return value;
}

function optArray(source: Json, key: string, path: string): unknown[] {
  const value = goField(source, key, 'sorted');
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(`${path}.${key}`, 'an array');
  return value;
}

function object(value: unknown, path: string): Json {
  if (!isObject(value)) fail(path, 'an object');
  return value;
}

function cidr(source: Json, key: string, path: string, required: boolean): string | undefined {
  const value = optString(source, key, path);
  if (value === undefined) {
    if (required) fail(`${path}.${key}`, 'a CIDR address');
    return undefined;
  }
  const problem = cidrError(value);
  if (problem !== undefined)
    throw new ResultShapeError(`${path}.${key}: invalid CIDR ${JSON.stringify(value)}`);
  return value;
}

function ip(source: Json, key: string, path: string): string | undefined {
  const value = optString(source, key, path);
  if (value === undefined) return undefined;
  const bits = value.includes(':') ? 128 : 32;
  if (cidrError(`${value}/${bits}`) !== undefined) {
    throw new ResultShapeError(`${path}.${key}: invalid IP ${JSON.stringify(value)}`);
  }
  return value;
}

function compact(entries: readonly [string, unknown][]): Json {
  const out: Json = {};
  for (const [key, value] of entries) {
    if (value === undefined) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    out[key] = value;
  }
  return out;
}

function dns(value: unknown, path: string): Json {
  if (value === undefined || value === null) return {};
  const source = object(value, path);
  const strings = (key: string) =>
    optArray(source, key, path).map((item, index) => {
      if (typeof item !== 'string') fail(`${path}.${key}[${index}]`, 'a string');
      return item;
    });
  return compact([
    ['nameservers', strings('nameservers')],
    ['domain', optString(source, 'domain', path)],
    ['search', strings('search')],
    ['options', strings('options')],
  ]);
}

/** A 0.3.x/0.4.0/1.x route keeps every field of Go's shared `types.Route`: `mtu`, `advmss` and `priority` are plain
 * ints (0 is omitted), `table` and `scope` are pointers (an explicit 0 — the main table, RT_SCOPE_UNIVERSE — is
 * kept). A 0.1.0/0.2.0 result is printed through types040's convertTo02x, which copies only `dst` and `gw`. */
function route(value: unknown, path: string, family: ResultFamily): Json {
  const source = object(value, path);
  const entries: [string, unknown][] = [
    ['dst', cidr(source, 'dst', path, true)],
    ['gw', ip(source, 'gw', path)],
  ];
  if (family !== '0.2') {
    entries.push(
      ['mtu', optNumber(source, 'mtu', path)],
      ['advmss', optNumber(source, 'advmss', path)],
      ['priority', optNumber(source, 'priority', path)],
      ['table', optPointerNumber(source, 'table', path)],
      ['scope', optPointerNumber(source, 'scope', path)],
    );
  }
  return compact(entries);
}

function decodeModern(source: Json, family: '0.4' | '1', cniVersion: string): PrevResult {
  const interfaces = optArray(source, 'interfaces', 'prevResult').map((value, index) => {
    const path = `prevResult.interfaces[${index}]`;
    const item = object(value, path);
    const name = optString(item, 'name', path) ?? '';
    const entries: [string, unknown][] = [
      ['name', name],
      ['mac', optString(item, 'mac', path)],
    ];
    if (family === '1') entries.push(['mtu', optNumber(item, 'mtu', path)]);
    entries.push(['sandbox', optString(item, 'sandbox', path)]);
    if (family === '1') {
      entries.push(
        ['socketPath', optString(item, 'socketPath', path)],
        ['pciID', optString(item, 'pciID', path)],
      );
    }
    const out = compact(entries);
    out['name'] = name;
    return out;
  });
  const ips: ResultIp[] = [];
  const ipJson = optArray(source, 'ips', 'prevResult').map((value, index) => {
    const path = `prevResult.ips[${index}]`;
    const item = object(value, path);
    const address = cidr(item, 'address', path, true) ?? '';
    const rawInterface = goField(item, 'interface', 'sorted');
    if (rawInterface !== undefined && rawInterface !== null && !Number.isInteger(rawInterface)) {
      fail(`${path}.interface`, 'an integer');
    }
    const interfaceIndex = typeof rawInterface === 'number' ? rawInterface : undefined;
    const gateway = ip(item, 'gateway', path);
    ips.push({ interfaceIndex, address, gateway });
    const entries: [string, unknown][] = [];
    if (family === '0.4') entries.push(['version', address.includes(':') ? '6' : '4']);
    entries.push(['interface', interfaceIndex], ['address', address], ['gateway', gateway]);
    return compact(entries);
  });
  const routes = optArray(source, 'routes', 'prevResult').map((value, index) =>
    route(value, `prevResult.routes[${index}]`, family),
  );
  const dnsJson = dns(goField(source, 'dns', 'sorted'), 'prevResult.dns');
  const json = compact([
    ['cniVersion', cniVersion],
    ['interfaces', interfaces],
    ['ips', ipJson],
    ['routes', routes],
  ]);
  if (family === '0.4' || Object.keys(dnsJson).length > 0) json['dns'] = dnsJson;
  // types100's MarshalJSON drops an empty dns by a round trip through a Go map, which prints every level's keys
  // sorted; types040 prints its structs in field order.
  return { json: family === '1' ? (sortedKeys(json) as Json) : json, ips };
}

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const key of Object.keys(value).sort()) out[key] = sortedKeys(value[key]);
  return out;
}

function decodeLegacy(source: Json, cniVersion: string): PrevResult {
  const ips: ResultIp[] = [];
  const ipConfig = (key: 'ip4' | 'ip6'): Json | undefined => {
    const value = goField(source, key, 'sorted');
    if (value === undefined || value === null) return undefined;
    const path = `prevResult.${key}`;
    const item = object(value, path);
    const address = cidr(item, 'ip', path, true) ?? '';
    const gateway = ip(item, 'gateway', path);
    ips.push({ interfaceIndex: undefined, address, gateway });
    const routes = optArray(item, 'routes', path).map((entry, index) =>
      route(entry, `${path}.routes[${index}]`, '0.2'),
    );
    return compact([
      ['ip', address],
      ['gateway', gateway],
      ['routes', routes],
    ]);
  };
  const json = compact([
    ['cniVersion', cniVersion],
    ['ip4', ipConfig('ip4')],
    ['ip6', ipConfig('ip6')],
  ]);
  json['dns'] = dns(goField(source, 'dns', 'sorted'), 'prevResult.dns');
  return { json, ips };
}

/** types040's convertTo02x: a 0.1.0/0.2.0 result without an IPv4 or IPv6 address cannot be printed, so upstream's
 * ADD fails when printing it (TestCmdAddInvalidVersion); ours fails the same way, before doing anything. */
const NO_IP_FOR_LEGACY = 'cannot convert: no valid IP addresses';

/** The prevResult versions each result type accepts (Go's per-type `supportedVersions`; "" only for 0.1.0/0.2.0). */
const RESULT_VERSIONS: Readonly<Record<ResultFamily, readonly string[]>> = {
  '0.2': ['', '0.1.0', '0.2.0'],
  '0.4': ['0.3.0', '0.3.1', '0.4.0'],
  '1': ['1.0.0', '1.1.0'],
};

/**
 * Decodes `prevResult` in the config's version, as upstream's `version.NewResult(conf.CNIVersion, …)`: the shape
 * first, then the prevResult's own cniVersion must be one the config version's result type accepts — a 0.2.0
 * result under a 1.0.0 config fails instead of being printed without its IPs. Throws Error "could not parse
 * prevResult: …".
 */
export function parsePrevResult(value: unknown, cniVersion: string): PrevResult {
  try {
    const source = object(value, 'prevResult');
    const family = resultFamily(cniVersion);
    const decoded =
      family === '0.2' ? decodeLegacy(source, cniVersion) : decodeModern(source, family, cniVersion);
    const own = optString(source, 'cniVersion', 'prevResult') ?? '';
    const accepted = RESULT_VERSIONS[family];
    if (!accepted.includes(own)) {
      throw new ResultShapeError(
        `result type supports [${accepted.join(' ')}] but unmarshalled CNIVersion is ${JSON.stringify(own)}`,
      );
    }
    if (family === '0.2' && decoded.ips.length === 0) throw new Error(NO_IP_FOR_LEGACY);
    return decoded;
  } catch (error) {
    if (error instanceof ResultShapeError)
      throw new Error(`could not parse prevResult: ${error.message}`, { cause: error });
    throw error;
  }
}

/** The result printed when there is no prevResult (none for 0.1.0/0.2.0: an empty result has no address). */
export function emptyResult(cniVersion: string): Json {
  const family = resultFamily(cniVersion);
  if (family === '0.2') throw new Error(NO_IP_FOR_LEGACY);
  return family === '1' ? { cniVersion } : { cniVersion, dns: {} };
}

/** skel's result printing: 4-space indented JSON (Go escaping), no trailing newline. */
export function encodeResult(json: Json): string {
  return goJson(json, 4);
}
