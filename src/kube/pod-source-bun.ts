// The plugin's pod GET through Bun's native fetch (the transport of the bun-compiled plugin).
import { KubeError, errorMessage } from '../errors.ts';
import type { HttpsPodSourceOptions, KubeconfigCredentials } from './pod-source.ts';
import { ApiReader, TLS_ERROR, isRetryableStatus, statusMessage } from './pod-source.ts';

interface BunFetchInit extends RequestInit {
  /** Bun's per-request TLS options (not in the standard RequestInit). */
  readonly tls?: { readonly ca?: string; readonly rejectUnauthorized?: boolean };
}

/** The same GET through Bun's native fetch, used when the plugin runs as the bun-compiled executable: node:https
 * costs ≈7 ms more per process there (runtime-measurements.md), and Bun's fetch takes a per-request CA. */
export class BunFetchPodSource extends ApiReader {
  readonly #credentials: KubeconfigCredentials;
  readonly #options: HttpsPodSourceOptions;

  constructor(credentials: KubeconfigCredentials, options: HttpsPodSourceOptions) {
    super();
    this.#credentials = credentials;
    this.#options = options;
  }

  protected override async get(what: string, apiPath: string, signal?: AbortSignal): Promise<unknown> {
    const base = this.#credentials.server.replace(/\/+$/, '');
    const timeout = AbortSignal.timeout(this.#options.requestTimeoutMs);
    const init: BunFetchInit = {
      method: 'GET',
      headers: {
        Accept: 'application/json',
        Authorization: `Bearer ${this.#credentials.token}`,
        'User-Agent': this.#options.userAgent,
      },
      signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      tls: {
        ...(this.#credentials.caPem === undefined ? {} : { ca: this.#credentials.caPem }),
        rejectUnauthorized: !this.#credentials.insecureSkipTlsVerify,
      },
    };
    let response: Response;
    let body: string;
    try {
      response = await fetch(`${base}${apiPath}`, init);
      body = await response.text();
    } catch (error) {
      const rawCode = (error as { code?: unknown }).code;
      const code = typeof rawCode === 'string' ? rawCode : '';
      const name = (error as { name?: unknown }).name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        const detail = timeout.aborted
          ? `no answer within ${this.#options.requestTimeoutMs} ms`
          : 'no answer before the lookup deadline';
        throw new KubeError(`${what}: ${detail}`, { retryable: true, cause: error });
      }
      throw new KubeError(`${what}: ${errorMessage(error)}`, {
        retryable: !TLS_ERROR.test(code),
        cause: error,
      });
    }
    if (response.status !== 200) {
      throw new KubeError(statusMessage(response.status, body, what), {
        status: response.status,
        retryable: isRetryableStatus(response.status),
      });
    }
    try {
      return JSON.parse(body);
    } catch (error) {
      throw new KubeError(`${what}: response is not JSON`, { status: 200, retryable: true, cause: error });
    }
  }

  override close(): void {
    // Bun pools fetch connections itself; nothing keeps the process alive.
  }
}
