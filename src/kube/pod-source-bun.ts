// The plugin's pod GET in the bun-compiled plugin: one HTTP/1.1 request per attempt over Bun's native TLS socket
// (src/sys/bun-http.ts). node:https costs ≈7 ms more per process there (runtime-measurements.md); Bun's fetch
// loads the caller's NODE_EXTRA_CA_CERTS bundle into every TLS context (+7 ms per lookup when containerd's
// environment has one) and would also let that bundle widen the trust the kubeconfig's CA defines.
import { KubeError } from '../errors.ts';
import { BunHttpError, bunHttpRequest } from '../sys/bun-http.ts';
import type { Http1Response } from '../sys/http1.ts';
import { ApiReader, TLS_ERROR, isRetryableStatus, statusMessage } from './pod-source.ts';
import { retryAfterMs } from './retry-after.ts';

/** A pod is at most etcd's 1.5 MiB object limit; anything much larger is not an API server answering. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export class BunPodSource extends ApiReader {
  protected override async get(what: string, apiPath: string, signal?: AbortSignal): Promise<unknown> {
    const url = this.urlOf(apiPath);
    const https = url.protocol === 'https:';
    const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1'); // IPv6 literals come bracketed
    const timeout = AbortSignal.timeout(this.options.requestTimeoutMs);
    let response: Http1Response;
    try {
      response = await bunHttpRequest({
        target: { hostname, port: url.port === '' ? (https ? 443 : 80) : Number(url.port) },
        ...(https
          ? {
              tls: {
                ...(this.credentials.caPem === undefined ? {} : { ca: this.credentials.caPem }),
                serverName: hostname,
                rejectUnauthorized: !this.credentials.insecureSkipTlsVerify,
              },
            }
          : {}),
        request: {
          method: 'GET',
          path: `${url.pathname}${url.search}`,
          host: url.host,
          headers: {
            Accept: 'application/json',
            Authorization: `Bearer ${this.credentials.token}`,
            'User-Agent': this.options.userAgent,
          },
        },
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
        maxResponseBytes: MAX_RESPONSE_BYTES,
      });
    } catch (error) {
      const code = error instanceof BunHttpError ? error.code : '';
      if (code === 'ABORT_ERR') {
        const detail = timeout.aborted
          ? `no answer within ${this.options.requestTimeoutMs} ms`
          : 'no answer before the lookup deadline';
        throw new KubeError(`${what}: ${detail}`, { retryable: true, cause: error });
      }
      const message = error instanceof Error ? error.message : String(error);
      throw new KubeError(
        `${what}: ${message}${code !== '' && !message.includes(code) ? ` (${code})` : ''}`,
        {
          // A certificate the CA does not verify needs an operator (or a rewritten kubeconfig): not retryable.
          retryable: !TLS_ERROR.test(code),
          cause: error,
        },
      );
    }
    const body = response.body.toString('utf8');
    if (response.status !== 200) {
      throw new KubeError(statusMessage(response.status, body, what), {
        status: response.status,
        retryable: isRetryableStatus(response.status),
        retryAfterMs: retryAfterMs(response.status, response.headers.get('retry-after')),
      });
    }
    try {
      return JSON.parse(body);
    } catch (error) {
      throw new KubeError(`${what}: response is not JSON`, { status: 200, retryable: true, cause: error });
    }
  }

  override close(): void {
    // One connection per request, closed with its response: nothing keeps the process alive.
  }
}
