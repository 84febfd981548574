// The plugin's pod GET over node:https (the transport when the plugin code runs under Node: tests, tools).
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { KubeError, errorMessage } from '../errors.ts';
import type { HttpsPodSourceOptions, KubeconfigCredentials } from './pod-source.ts';
import { ApiReader, TLS_ERROR, isRetryableStatus, statusMessage } from './pod-source.ts';
import { retryAfterMs } from './retry-after.ts';

export class HttpsPodSource extends ApiReader {
  readonly #agent: Agent;

  constructor(credentials: KubeconfigCredentials, options: HttpsPodSourceOptions) {
    super(credentials, options);
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      ...(credentials.caPem === undefined ? {} : { ca: credentials.caPem }),
      rejectUnauthorized: !credentials.insecureSkipTlsVerify,
    });
  }

  protected override get(what: string, apiPath: string, signal?: AbortSignal): Promise<unknown> {
    const url = this.urlOf(apiPath);
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (error: KubeError | undefined, value?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error === undefined) resolve(value);
        else reject(error);
      };
      const req = request(
        url,
        {
          method: 'GET',
          agent: this.#agent,
          headers: {
            Accept: 'application/json',
            Authorization: `Bearer ${this.credentials.token}`,
            'User-Agent': this.options.userAgent,
          },
          ...(signal === undefined ? {} : { signal }),
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error) =>
            finish(new KubeError(`${what}: ${errorMessage(error)}`, { retryable: true, cause: error })),
          );
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const body = Buffer.concat(chunks).toString('utf8');
            if (status !== 200) {
              finish(
                new KubeError(statusMessage(status, body, what), {
                  status,
                  retryable: isRetryableStatus(status),
                  retryAfterMs: retryAfterMs(status, res.headers['retry-after']),
                }),
              );
              return;
            }
            try {
              finish(undefined, JSON.parse(body));
            } catch (error) {
              finish(
                new KubeError(`${what}: response is not JSON`, { status, retryable: true, cause: error }),
              );
            }
          });
        },
      );
      const timer = setTimeout(() => {
        finish(
          new KubeError(`${what}: no answer within ${this.options.requestTimeoutMs} ms`, {
            retryable: true,
          }),
        );
        req.destroy();
      }, this.options.requestTimeoutMs);
      req.on('error', (error: NodeJS.ErrnoException) => {
        const tls = typeof error.code === 'string' && TLS_ERROR.test(error.code);
        const detail =
          error.name === 'AbortError' ? 'no answer before the lookup deadline' : errorMessage(error);
        finish(
          new KubeError(`${what}: ${detail}`, {
            // A certificate the CA does not verify needs an operator (or a rewritten kubeconfig): not retryable.
            retryable: !tls,
            cause: error,
          }),
        );
      });
      req.end();
    });
  }

  override close(): void {
    this.#agent.destroy();
  }
}
