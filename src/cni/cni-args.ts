// CNI_ARGS (`K=V;K=V`) as containernetworking/cni `types.LoadArgs` parses it into Istio's K8sArgs.

export interface K8sArgs {
  readonly K8S_POD_NAME: string;
  readonly K8S_POD_NAMESPACE: string;
  readonly K8S_POD_INFRA_CONTAINER_ID: string;
  readonly K8S_POD_UID: string;
}

const KNOWN = new Set([
  'IgnoreUnknown',
  'K8S_POD_NAME',
  'K8S_POD_NAMESPACE',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
]);

function parseIgnoreUnknown(value: string): boolean {
  const lower = value.toLowerCase();
  if (lower === '1' || lower === 'true') return true;
  if (lower === '0' || lower === 'false') return false;
  throw new Error(
    // UnmarshallableBool quotes its input lowercased.
    `ARGS: error parsing value of pair "IgnoreUnknown=${value}": boolean unmarshal error: invalid input ${lower}`,
  );
}

/** Throws Error with upstream's "ARGS: …" text; the caller prefixes "failed to load args: ". */
export function parseCniArgs(text: string): K8sArgs {
  const values: Record<string, string> = {
    K8S_POD_NAME: '',
    K8S_POD_NAMESPACE: '',
    K8S_POD_INFRA_CONTAINER_ID: '',
    K8S_POD_UID: '',
  };
  if (text === '') return values as unknown as K8sArgs;
  const unknown: string[] = [];
  let ignoreUnknown = false;
  for (const pair of text.split(';')) {
    const parts = pair.split('=');
    if (parts.length !== 2) throw new Error(`ARGS: invalid pair ${JSON.stringify(pair)}`);
    const [key = '', value = ''] = parts;
    if (!KNOWN.has(key)) {
      unknown.push(pair);
      continue;
    }
    if (key === 'IgnoreUnknown') ignoreUnknown = parseIgnoreUnknown(value);
    else values[key] = value;
  }
  if (unknown.length > 0 && !ignoreUnknown) {
    throw new Error(`ARGS: unknown args [${unknown.map((pair) => JSON.stringify(pair)).join(' ')}]`);
  }
  return Object.freeze(values) as unknown as K8sArgs;
}
