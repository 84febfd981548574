// IP prefix validation with the error text of Go's netip.ParsePrefix (used for annotation and prevResult checks).
import { quoted } from '../errors.ts';

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4Error(text: string): string | undefined {
  const match = IPV4_RE.exec(text);
  if (match === null) return 'unable to parse IP';
  for (const octet of match.slice(1)) {
    if (octet.length > 1 && octet.startsWith('0')) return 'IPv4 field has octet with leading zero';
    if (Number(octet) > 255) return 'IPv4 field has value >255';
  }
  return undefined;
}

function ipv6Error(text: string): string | undefined {
  if (text.includes('%')) return 'IPv6 zones cannot be present in a prefix';
  let body = text;
  const lastColon = body.lastIndexOf(':');
  const tail = body.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (ipv4Error(tail) !== undefined) return 'unable to parse IP';
    body = `${body.slice(0, lastColon + 1)}0:0`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return 'unable to parse IP';
  const parts = halves.map((half) => (half === '' ? [] : half.split(':')));
  const count = parts.reduce((sum, list) => sum + list.length, 0);
  if (halves.length === 1 ? count !== 8 : count >= 8) return 'unable to parse IP';
  for (const list of parts) {
    for (const group of list) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return 'unable to parse IP';
    }
  }
  return undefined;
}

/** Error text of Go's netip.ParsePrefix, or undefined when `cidr` is a valid prefix. */
export function cidrError(cidr: string): string | undefined {
  const fail = (detail: string) => `netip.ParsePrefix(${quoted(cidr)}): ${detail}`;
  const slash = cidr.lastIndexOf('/');
  if (slash < 0) return fail("no '/'");
  const address = cidr.slice(0, slash);
  const bits = cidr.slice(slash + 1);
  const isV6 = address.includes(':');
  const addressProblem = isV6 ? ipv6Error(address) : ipv4Error(address);
  if (addressProblem !== undefined) {
    return fail(
      addressProblem.startsWith('IPv6 zones')
        ? addressProblem
        : `ParseAddr(${quoted(address)}): ${addressProblem}`,
    );
  }
  if (!/^\d+$/.test(bits) || (bits.length > 1 && bits.startsWith('0'))) {
    return fail(`bad bits after slash: ${JSON.stringify(bits)}`);
  }
  if (Number(bits) > (isV6 ? 128 : 32)) return fail('prefix length out of range');
  return undefined;
}
