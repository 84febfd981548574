// Pure: JSON the way Go's encoding/json writes it (behaviour §1.5.3): sorted keys for generic maps, 2-space
// indent, trailing newline, `<`, `>`, `&`, U+2028 and U+2029 escaped as \u00XX / \u20XX.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const sorted: JsonObject = {};
    for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key] as Json);
    return sorted;
  }
  return value;
}

function goEscape(text: string): string {
  return text.replace(
    /[<>&\u2028\u2029]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Go `json.MarshalIndent(map, "", "  ")` + "\n": every object's keys sorted. */
export function marshalSorted(value: Json): string {
  return `${goEscape(JSON.stringify(sortKeys(value), null, 2))}\n`;
}

/** Go `json.MarshalIndent(struct, "", "  ")` + "\n": keys in insertion order. */
export function marshalOrdered(value: Json): string {
  return `${goEscape(JSON.stringify(value, null, 2))}\n`;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
