// Field lookup as Go's encoding/json decodes into a struct: a key names a field when it equals the field's JSON name
// ignoring case ("cniversion" fills `cniVersion`, as upstream's own plugin test fixtures spell it), and when several
// keys do, the last one in the document wins. Every struct the netconf and prevResult are decoded into upstream is
// read through this, so the plugin accepts what libcni and the Go plugin accept.

/** The value Go would decode into the field named `field` (undefined when no key names it). */
export function goField(source: Readonly<Record<string, unknown>>, field: string): unknown {
  const folded = field.toLowerCase();
  let value: unknown;
  for (const key of Object.keys(source)) {
    if (key.length === field.length && key.toLowerCase() === folded) value = source[key];
  }
  return value;
}

/** `source` reduced to `fields`, each under its canonical name, as goField reads it (absent fields left out). */
export function goFields(
  source: Readonly<Record<string, unknown>>,
  fields: readonly string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const value = goField(source, field);
    if (value !== undefined) out[field] = value;
  }
  return out;
}
