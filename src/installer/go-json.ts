// Pure: JSON the way Go's encoding/json writes it (behaviour §1.5.3): sorted keys for generic maps, 2-space
// indent, trailing newline, `<`, `>`, `&`, U+2028 and U+2029 escaped as \u00XX / \u20XX.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** JSON.parse as Go's encoding/json decodes: a number past float64 (1e400) is an unmarshal error there, so libcni and
 * upstream refuse the file; JSON.parse would give Infinity (which we would write back as null). Throws. */
export function parseGoJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('a number is out of range');
    return value;
  });
}

/** Go sorts map keys by their UTF-8 bytes (JavaScript's sort compares UTF-16 units: an astral character would sort
 * before U+E000–U+FFFF). */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** JSON.stringify's layout with every object's keys sorted, written key by key: a JavaScript object lists
 * integer-like keys ("9", "10") first in numeric order whatever order they were set in, so a sorted copy cannot
 * carry Go's order ("10" before "9"). */
function sortedIndented(value: Json, depth: number): string {
  const pad = '  '.repeat(depth + 1);
  const close = '  '.repeat(depth);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((item) => pad + sortedIndented(item, depth + 1)).join(',\n')}\n${close}]`;
  }
  if (value !== null && typeof value === 'object') {
    // JSON.stringify leaves out undefined members; so does this.
    const keys = Object.keys(value)
      .filter((key) => value[key] !== undefined)
      .sort(byUtf8);
    if (keys.length === 0) return '{}';
    const members = keys.map(
      (key) => `${pad}${JSON.stringify(key)}: ${sortedIndented(value[key] as Json, depth + 1)}`,
    );
    return `{\n${members.join(',\n')}\n${close}}`;
  }
  return JSON.stringify(value);
}

function goEscape(text: string): string {
  return text.replace(
    /[<>&\u2028\u2029]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Go `json.MarshalIndent(map, "", "  ")` + "\n": every object's keys sorted. */
export function marshalSorted(value: Json): string {
  return `${goEscape(sortedIndented(value, 0))}\n`;
}

/** Go `json.MarshalIndent(struct, "", "  ")` + "\n": keys in insertion order. */
export function marshalOrdered(value: Json): string {
  return `${goEscape(JSON.stringify(value, null, 2))}\n`;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
