// Field lookup as Go's encoding/json decodes into a struct: a key names a field when it equals the field's JSON name
// under Go's case folding ("cniversion" fills `cniVersion`, as upstream's own plugin test fixtures spell it); when
// several keys do, the last one wins, and a `null` leaves the field as an earlier key set it (Go ignores null for
// strings, numbers, bools and structs). Every struct the netconf and prevResult are decoded into upstream is read
// through this, so the plugin accepts what libcni and the Go plugin accept.

/** The four non-ASCII letters Go's fold (toUpper(toLower(r))) maps onto ASCII ones. */
const GO_FOLDS_TO_ASCII: Readonly<Record<string, string>> = {
  '\u212a': 'k', // KELVIN SIGN
  '\u017f': 's', // LATIN SMALL LETTER LONG S
  '\u0130': 'i', // LATIN CAPITAL LETTER I WITH DOT ABOVE
  '\u0131': 'i', // LATIN SMALL LETTER DOTLESS I
};

function folded(key: string): string {
  return key.replace(/[\u212a\u017f\u0130\u0131]/g, (char) => GO_FOLDS_TO_ASCII[char] ?? char).toLowerCase();
}

/** Which of several matching keys Go ends up with: the last in the document (a struct decoded from the input), or
 * the last in byte order (a struct decoded from a Go map re-marshalled with sorted keys, as upstream does with the
 * prevResult). */
export type KeyOrder = 'document' | 'sorted';

/** The value the keys (all naming one field, in the order Go meets them) leave in it: the last, but a `null` does
 * not undo an earlier value. */
function decoded(source: Readonly<Record<string, unknown>>, keys: readonly string[]): unknown {
  let value: unknown;
  for (const key of keys) {
    if (source[key] !== null || value === undefined) value = source[key];
  }
  return value;
}

/** The value Go would decode into the ASCII field named `field` (undefined when no key names it). */
export function goField(
  source: Readonly<Record<string, unknown>>,
  field: string,
  order: KeyOrder = 'document',
): unknown {
  const target = field.toLowerCase();
  const keys = Object.keys(source).filter((key) => key.length === field.length && folded(key) === target);
  if (order === 'sorted' && keys.length > 1)
    keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return decoded(source, keys);
}

/** `source` reduced to `fields`, each under its canonical name, as goField reads it in document order (absent
 * fields left out). Each key is folded once, not once per field: this runs on every ADD. */
export function goFields(
  source: Readonly<Record<string, unknown>>,
  fields: readonly string[],
): Record<string, unknown> {
  const keysByFold = new Map<string, string[]>();
  for (const key of Object.keys(source)) {
    const fold = folded(key);
    if (fold.length !== key.length) continue;
    const keys = keysByFold.get(fold);
    if (keys === undefined) keysByFold.set(fold, [key]);
    else keys.push(key);
  }
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const value = decoded(source, keysByFold.get(field.toLowerCase()) ?? []);
    if (value !== undefined) out[field] = value;
  }
  return out;
}
