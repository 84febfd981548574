// Go's strconv.ParseBool, which upstream uses for every boolean setting, annotation, label and env value. One
// module of its own: the agent's settings and the plugin's decision both read Go booleans, and the plugin's early
// decision must not load the redirect-parameter code a pass-through ADD never needs.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** true / false, or undefined when Go would return an error. */
export function parseGoBool(raw: string): boolean | undefined {
  if (TRUE.has(raw)) return true;
  if (FALSE.has(raw)) return false;
  return undefined;
}
