// The plugin's pod lookup (behaviour §2.6.1): one HTTPS GET /api/v1/namespaces/{ns}/pods/{name}, with the server,
// CA and token from the kubeconfig the agent writes (§1.6); the transport (pod-source-bun.ts in the compiled plugin,
// pod-source-node.ts under Node) is loaded only when a pod is looked up. No @kubernetes/client-node
// (≈ +10 ms start-up in the compiled plugin, runtime-measurements.md) and no YAML library: the agent writes one
// fixed shape, which a small line parser reads.
import { AppError, errorMessage } from '../errors.ts';

/** Error codes of certificate/TLS failures: an operator must act, retrying will not help. */
export const TLS_ERROR = /CERT|SELF_SIGNED|TLS|SSL|VERIFY|SIGNATURE|ISSUER/;

export interface KubeconfigCredentials {
  /** e.g. https://10.96.0.1:443 */
  readonly server: string;
  /** PEM bytes of certificate-authority-data; undefined with insecure-skip-tls-verify. */
  readonly caPem: string | undefined;
  readonly insecureSkipTlsVerify: boolean;
  readonly token: string;
}

/** Reads a YAML scalar as the agent's YAML writer may emit it: plain, 'single' or "double" quoted. */
function scalar(raw: string): string {
  const text = raw.trim();
  if (text.startsWith('"') && text.endsWith('"') && text.length >= 2) {
    return JSON.parse(text.replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1')) as string;
  }
  if (text.startsWith("'") && text.endsWith("'") && text.length >= 2) {
    return text.slice(1, -1).replaceAll("''", "'");
  }
  return text;
}

/** Characters an HTTP header value cannot carry: the token goes into `Authorization`. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
const NOT_IN_HEADER = /[\u0000-\u001f\u007f]|[^\u0000-\u00ff]/;

/** Parses the plugin kubeconfig (clusters[0].cluster, users[0].user). Throws AppError 'KUBECONFIG_INVALID', naming
 * `file` when given. Everything a request is built from is checked here, so that a bad kubeconfig fails the ADD at
 * once (code 999) instead of as a retried request error. */
export function parsePluginKubeconfig(text: string, file?: string): KubeconfigCredentials {
  const fail = (what: string) =>
    new AppError('KUBECONFIG_INVALID', `invalid kubeconfig${file === undefined ? '' : ` ${file}`}: ${what}`);
  const values = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index] ?? '';
    const match =
      /^\s*(?:-\s+)?(server|certificate-authority-data|insecure-skip-tls-verify|token):(.*)$/.exec(line);
    if (match === null) continue;
    const key = match[1] ?? '';
    if (values.has(key)) continue; // the first cluster / user wins
    let value = match[2] ?? '';
    const block = /^\s*([|>])([-+]?)\s*$/.exec(value);
    if (block !== null) {
      // Block scalar: the following more-indented lines.
      const indent = /^\s*/.exec(line)?.[0].length ?? 0;
      const body: string[] = [];
      while (index + 1 < lines.length) {
        const next = lines[index + 1] ?? '';
        const nextIndent = /^\s*/.exec(next)?.[0].length ?? 0;
        if (next.trim() !== '' && nextIndent <= indent) break;
        body.push(next.trim());
        index += 1;
      }
      while (body.length > 0 && body.at(-1) === '') body.pop();
      const joined = block[1] === '|' ? body.join('\n') : body.join(' ');
      value = block[2] === '-' ? joined : `${joined}\n`;
      values.set(key, value);
      continue;
    }
    try {
      values.set(key, scalar(value));
    } catch {
      throw fail(`${key} is not a valid double-quoted YAML string`);
    }
  }
  const server = values.get('server');
  if (server === undefined || server === '') throw fail('clusters[0].cluster.server is missing');
  if (!/^https?:\/\//i.test(server)) throw fail(`server ${JSON.stringify(server)} is not an http(s) URL`);
  if (!URL.canParse(server) || new URL(server).hostname === '')
    throw fail(`server ${JSON.stringify(server)} is not a valid URL`);
  // Surrounding whitespace (a token file's final newline, a `|` block scalar) is not part of a token, as in
  // client-go's token file source.
  const token = values.get('token')?.trim();
  if (token === undefined || token === '') throw fail('users[0].user.token is missing');
  if (NOT_IN_HEADER.test(token))
    throw fail(
      'users[0].user.token holds a control or non-Latin-1 character, which no HTTP header can carry',
    );
  const insecure = values.get('insecure-skip-tls-verify') === 'true';
  const caData = values.get('certificate-authority-data');
  let caPem: string | undefined;
  // As client-go refuses it ("specifying a root certificates file with the insecure flag is not allowed"): which of
  // the two was meant is not ours to guess.
  if (insecure && caData !== undefined && caData !== '')
    throw fail('clusters[0].cluster has both certificate-authority-data and insecure-skip-tls-verify: true');
  if (caData !== undefined && caData !== '') {
    if (!/^[A-Za-z0-9+/=\s]+$/.test(caData)) throw fail('certificate-authority-data is not base64');
    caPem = Buffer.from(caData, 'base64').toString('utf8');
    if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
      throw fail('certificate-authority-data does not hold a PEM certificate');
    }
  } else if (!insecure) {
    throw fail(
      'clusters[0].cluster has neither certificate-authority-data nor insecure-skip-tls-verify: true',
    );
  }
  return Object.freeze({ server, caPem, insecureSkipTlsVerify: insecure, token });
}

export interface PodSource {
  /** GETs one pod; resolves with the parsed JSON object. Rejects with KubeError (retryable set per cause). */
  getPod(namespace: string, name: string, signal?: AbortSignal): Promise<unknown>;
  /** GETs one namespace (ambient detection needs its labels). */
  getNamespace(name: string): Promise<unknown>;
  /** Releases the keep-alive connection so the process can exit at once. */
  close(): void;
}

export interface HttpsPodSourceOptions {
  readonly userAgent: string;
  /** Per-request timeout (connect + response), ms. */
  readonly requestTimeoutMs: number;
}

/** What an operator does about the two answers retrying cannot fix, for a read of `resource` (`pods`, `namespaces`). */
function authHint(status: number, resource: string): string | undefined {
  if (status === 401) {
    return 'the API server rejected the token in the plugin kubeconfig; the istio-cni agent rewrites it from its service account token';
  }
  if (status === 403) {
    return `the istio-cni service account may not read ${resource}; check the istio-cni ClusterRole's ${resource} get permission`;
  }
  return undefined;
}

/** The API's own message (as upstream reports it), then a hint for 401/403. `what` is the read (`get pod ns/name`,
 * `get namespace name`): its resource is the one the hint names. */
export function statusMessage(status: number, body: string, what: string): string {
  let message: string | undefined;
  try {
    const parsed = JSON.parse(body) as { kind?: unknown; message?: unknown };
    if (parsed.kind === 'Status' && typeof parsed.message === 'string' && parsed.message !== '') {
      message = parsed.message;
    }
  } catch {
    // not a Status object: fall through
  }
  if (message === undefined) {
    const snippet = body.trim().slice(0, 200);
    message = `${what}: the server answered ${status}${snippet === '' ? '' : `: ${snippet}`}`;
  }
  const hint = authHint(status, what.startsWith('get namespace') ? 'namespaces' : 'pods');
  return hint === undefined ? message : `${message} (${status}: ${hint})`;
}

/** Whether trying again later may help (CNI code 11): the pod may not be in the API yet (404), the server is
 * overloaded (429) or failing (5xx). Auth (401/403) and other client errors need an operator. */
export function isRetryableStatus(status: number): boolean {
  return status === 404 || status === 408 || status === 429 || status >= 500;
}

/** The two reads the plugin makes, over whichever transport a subclass implements in `get`. */
export abstract class ApiReader implements PodSource {
  protected readonly credentials: KubeconfigCredentials;
  protected readonly options: HttpsPodSourceOptions;

  constructor(credentials: KubeconfigCredentials, options: HttpsPodSourceOptions) {
    this.credentials = credentials;
    this.options = options;
  }

  /** The request URL of an API path, against the kubeconfig's server (which may end in a slash). */
  protected urlOf(apiPath: string): URL {
    return new URL(`${this.credentials.server.replace(/\/+$/, '')}${apiPath}`);
  }

  getPod(namespace: string, name: string, signal?: AbortSignal): Promise<unknown> {
    return this.get(
      `get pod ${namespace}/${name}`,
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
      signal,
    );
  }

  getNamespace(name: string): Promise<unknown> {
    return this.get(`get namespace ${name}`, `/api/v1/namespaces/${encodeURIComponent(name)}`);
  }

  abstract close(): void;

  protected abstract get(what: string, apiPath: string, signal?: AbortSignal): Promise<unknown>;
}

/** Bun's file API in the compiled plugin (node:fs would cost it ≈ 2 ms to load, src/sys/process-io.ts). */
async function readTextFile(file: string): Promise<string> {
  const bun = (globalThis as { Bun?: { file(path: string): { text(): Promise<string> } } }).Bun;
  if (bun !== undefined) return bun.file(file).text();
  return (await import('node:fs/promises')).readFile(file, 'utf8');
}

/** Reads `<run dir>/istio-cni-kubeconfig` and builds the source. Throws AppError 'KUBECONFIG_INVALID'. */
export async function createHttpsPodSource(
  kubeconfigPath: string,
  options: HttpsPodSourceOptions,
): Promise<PodSource> {
  let text: string;
  try {
    text = await readTextFile(kubeconfigPath);
  } catch (error) {
    throw new AppError(
      'KUBECONFIG_INVALID',
      `cannot read kubeconfig ${kubeconfigPath}: ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  const credentials = parsePluginKubeconfig(text, kubeconfigPath);
  // Each transport is its own module, loaded on use: node:https alone costs the compiled plugin ≈ 4 ms.
  return 'Bun' in globalThis
    ? new (await import('./pod-source-bun.ts')).BunPodSource(credentials, options)
    : new (await import('./pod-source-node.ts')).HttpsPodSource(credentials, options);
}
