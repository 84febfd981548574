// IP prefix validation with the error text of Go's netip.ParsePrefix (used for annotation and prevResult checks):
// a port of its parser's decisions and messages, so that a pod's event names the same fault upstream's would.
import { quoted } from '../errors.ts';

/** Go's parseAddrError text; `at`: the unparsed rest where the parse stopped. */
function addrError(input: string, message: string, at = ''): string {
  return `ParseAddr(${quoted(input)}): ${message}${at === '' ? '' : ` (at ${quoted(at)})`}`;
}

const isDigit = (c: string): boolean => c >= '0' && c <= '9';

/** parseIPv4Fields: the error text for the dotted quad `s`, part of the address `input` (all of it, or an IPv6
 * address's embedded IPv4 tail), or undefined when it is valid. */
function ipv4Error(input: string, s = input): string | undefined {
  let value = 0;
  let position = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (isDigit(c)) {
      if (digits === 1 && value === 0) return addrError(input, 'IPv4 field has octet with leading zero');
      value = value * 10 + Number(c);
      digits++;
      if (value > 255) return addrError(input, 'IPv4 field has value >255');
    } else if (c === '.') {
      if (i === 0 || i === s.length - 1 || s[i - 1] === '.') {
        return addrError(input, 'IPv4 field must have at least one digit', s.slice(i));
      }
      if (position === 3) return addrError(input, 'IPv4 address too long');
      position++;
      value = 0;
      digits = 0;
    } else {
      return addrError(input, 'unexpected character', s.slice(i));
    }
  }
  if (position < 3) return addrError(input, 'IPv4 address too short');
  return undefined;
}

const isHexDigit = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);

/** parseIPv6: the error text, or undefined (with whether it had a zone) for a valid address. */
function ipv6Error(input: string): { error?: string | undefined; zoned: boolean } {
  let s = input;
  const percent = s.indexOf('%');
  if (percent !== -1) {
    if (percent === s.length - 1)
      return { error: addrError(input, 'zone must be a non-empty string'), zoned: true };
    s = s.slice(0, percent);
  }
  const zoned = percent !== -1;
  const fail = (message: string, at = '') => ({ error: addrError(input, message, at), zoned });
  let ellipsis = -1;
  if (s.startsWith('::')) {
    ellipsis = 0;
    s = s.slice(2);
    if (s.length === 0) return { zoned };
  }
  let filled = 0;
  while (filled < 16) {
    let offset = 0;
    // Four hex digits at most (so Go's ">=2^16" overflow check after this one can never fire).
    for (; offset < s.length; offset++) {
      if (!isHexDigit(s[offset] as string)) break;
      if (offset > 3) return fail('each group must have 4 or less digits', s);
    }
    if (offset === 0) return fail('each colon-separated field must have at least one digit', s);
    if (offset < s.length && s[offset] === '.') {
      if (ellipsis < 0 && filled !== 12) {
        return fail('embedded IPv4 address must replace the final 2 fields of the address', s);
      }
      if (filled + 4 > 16)
        return fail('too many hex fields to fit an embedded IPv4 at the end of the address', s);
      const embedded = ipv4Error(input, s);
      if (embedded !== undefined) return { error: embedded, zoned };
      s = '';
      filled += 4;
      break;
    }
    filled += 2;
    s = s.slice(offset);
    if (s.length === 0) break;
    if (s[0] !== ':') return fail('unexpected character, want colon', s);
    if (s.length === 1) return fail('colon must be followed by more characters', s);
    s = s.slice(1);
    if (s[0] === ':') {
      if (ellipsis >= 0) return fail('multiple :: in address', s);
      ellipsis = filled;
      s = s.slice(1);
      if (s.length === 0) break;
    }
  }
  if (s.length !== 0) return fail('trailing garbage after address', s);
  if (filled < 16 && ellipsis < 0) return fail('address string too short');
  if (filled === 16 && ellipsis >= 0) return fail('the :: must expand to at least one field of zeros');
  return { zoned };
}

/** ParseAddr: the first '.', ':' or '%' decides the family. */
function addrProblem(s: string): { error?: string | undefined; v6: boolean; zoned: boolean } {
  for (const c of s) {
    if (c === '.') return { error: ipv4Error(s), v6: false, zoned: false };
    if (c === ':') return { ...ipv6Error(s), v6: true };
    if (c === '%') return { error: addrError(s, 'missing IPv6 address'), v6: false, zoned: false };
  }
  return { error: addrError(s, 'unable to parse IP'), v6: false, zoned: false };
}

/** Largest value Go's strconv.Atoi takes (int64). */
const ATOI_MAX = 9223372036854775807n;

/** Error text of Go's netip.ParsePrefix, or undefined when `cidr` is a valid prefix. */
export function cidrError(cidr: string): string | undefined {
  const fail = (detail: string) => `netip.ParsePrefix(${quoted(cidr)}): ${detail}`;
  const slash = cidr.lastIndexOf('/');
  if (slash < 0) return fail("no '/'");
  const address = addrProblem(cidr.slice(0, slash));
  if (address.error !== undefined) return fail(address.error);
  if (address.v6 && address.zoned) return fail('IPv6 zones cannot be present in a prefix');
  const bits = cidr.slice(slash + 1);
  // Go refuses a sign and leading zeros before strconv.Atoi, which refuses anything else but digits and overflow.
  const badBits = fail(`bad bits after slash: ${JSON.stringify(bits)}`);
  if (bits.length > 1 && !(bits[0]! >= '1' && bits[0]! <= '9')) return badBits;
  if (!/^[0-9]+$/.test(bits) || BigInt(bits) > ATOI_MAX) return badBits;
  if (BigInt(bits) > (address.v6 ? 128n : 32n)) return fail('prefix length out of range');
  return undefined;
}
