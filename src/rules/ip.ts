// Pure IP address / prefix parsing (Go netip semantics where it matters: no leading zeros in IPv4 octets, no
// zones in prefixes). src/rules must not import node:net (lint), and the plugin path needs only this much.

export type ParsedAddress = { readonly family: 'v4' | 'v6'; readonly bytes: readonly number[] };
export type ParsedPrefix = ParsedAddress & { readonly bits: number };

export function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes.push(value);
  }
  return bytes;
}

export function parseIpv6(text: string): number[] | undefined {
  if (text.includes('%')) return undefined;
  let words: number[];
  let head = text;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.slice(lastColon + 1).includes('.')) {
    const tail = parseIpv4(text.slice(lastColon + 1));
    if (tail === undefined) return undefined;
    const [a = 0, b = 0, c = 0, d = 0] = tail;
    head = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const doubleColon = head.split('::');
  if (doubleColon.length > 2) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const groups = part.split(':');
    const out: number[] = [];
    for (const group of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
      out.push(parseInt(group, 16));
    }
    return out;
  };
  const left = parseGroups(doubleColon[0] ?? '');
  if (left === undefined) return undefined;
  if (doubleColon.length === 2) {
    const right = parseGroups(doubleColon[1] ?? '');
    if (right === undefined || left.length + right.length > 7) return undefined;
    words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    if (left.length !== 8) return undefined;
    words = left;
  }
  const bytes = words.flatMap((word) => [word >> 8, word & 0xff]);
  return bytes;
}

export function parseAddress(text: string): ParsedAddress | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 'v4', bytes: v4 };
  const v6 = parseIpv6(text);
  if (v6 !== undefined) return { family: 'v6', bytes: v6 };
  return undefined;
}

/** `addr/bits` (bits required, as Go's netip.ParsePrefix). */
export function parsePrefix(text: string): ParsedPrefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = parseAddress(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (address === undefined || !/^(0|[1-9]\d{0,2})$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > (address.family === 'v4' ? 32 : 128)) return undefined;
  return { ...address, bits };
}

/** An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it maps, as Go's netip classifiers see it
 * (`IsLoopback`, `IsLinkLocalUnicast`, … unmap first); any other address as it is. */
function unmapped(address: ParsedAddress): ParsedAddress {
  const b = address.bytes;
  if (address.family === 'v6' && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return { family: 'v4', bytes: b.slice(12) };
  }
  return address;
}

export function isLoopback(address: ParsedAddress): boolean {
  const { family, bytes } = unmapped(address);
  if (family === 'v4') return bytes[0] === 127;
  return bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1;
}

/** Link-local unicast (169.254/16, fe80::/10) or link-local multicast (224.0.0/24, ff02::/16). */
export function isLinkLocal(address: ParsedAddress): boolean {
  const { family, bytes } = unmapped(address);
  const [b0 = 0, b1 = 0, b2 = 0] = bytes;
  if (family === 'v4') return (b0 === 169 && b1 === 254) || (b0 === 224 && b1 === 0 && b2 === 0);
  return (b0 === 0xfe && (b1 & 0xc0) === 0x80) || (b0 === 0xff && (b1 & 0x0f) === 0x02);
}

/** Go netip's text form: IPv4 dotted, IPv6 per RFC 5952 (lowercase, longest zero run as `::`). */
export function formatAddress(address: ParsedAddress): string {
  const b = address.bytes;
  if (address.family === 'v4') return b.join('.');
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${b.slice(12).join('.')}`;
  }
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`;
}

export function formatPrefix(prefix: ParsedPrefix): string {
  return `${formatAddress(prefix)}/${prefix.bits}`;
}
