// One HTTP/1.1 request over Bun's native sockets (TCP, TLS or a unix socket), for the bun-compiled plugin: the pod
// GET to the API server and the log POST to the agent. Why not fetch: see src/sys/http1.ts. TLS verification is the
// socket layer's (chain against the given CA only, and the certificate's names against `serverName`); a failed
// verification ends the request here unless the kubeconfig says insecure-skip-tls-verify.
import type { Http1Request, Http1Response } from './http1.ts';
import { decodeHttp1Response, encodeHttp1Request } from './http1.ts';

/** The part of Bun's socket API used here (no bun type package in this project). */
interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
}
interface BunSocketError {
  readonly code?: unknown;
  readonly message?: unknown;
}
interface BunConnectOptions {
  readonly hostname?: string;
  readonly port?: number;
  readonly unix?: string;
  readonly tls?: { readonly ca?: string; readonly serverName: string; readonly rejectUnauthorized: boolean };
  readonly socket: {
    open(socket: BunSocket): void;
    handshake(socket: BunSocket, success: boolean, error: BunSocketError | null): void;
    data(socket: BunSocket, data: Uint8Array): void;
    end(socket: BunSocket): void;
    close(socket: BunSocket): void;
    error(socket: BunSocket, error: BunSocketError): void;
    connectError(socket: BunSocket, error: BunSocketError): void;
  };
}
interface BunSockets {
  connect(options: BunConnectOptions): Promise<BunSocket>;
}

export type BunHttpTarget = { readonly hostname: string; readonly port: number } | { readonly unix: string };

export interface BunHttpOptions {
  readonly target: BunHttpTarget;
  /** TLS to the target; `serverName` is checked against the certificate (IP or DNS name). */
  readonly tls?: { readonly ca?: string; readonly serverName: string; readonly rejectUnauthorized: boolean };
  readonly request: Http1Request;
  readonly signal: AbortSignal;
  readonly maxResponseBytes: number;
}

/** A transport failure. `code`: the system error (ECONNREFUSED…), the TLS verification failure
 * (UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_TLS_CERT_ALTNAME_INVALID…), ABORT_ERR, or BAD_RESPONSE. */
export class BunHttpError extends Error {
  override readonly name = 'BunHttpError';
  readonly code: string;

  constructor(message: string, code: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

function socketError(error: BunSocketError | null, fallbackCode: string): BunHttpError {
  const code = typeof error?.code === 'string' && error.code !== '' ? error.code : fallbackCode;
  const message = typeof error?.message === 'string' && error.message !== '' ? error.message : code;
  return new BunHttpError(message, code, { cause: error });
}

export function bunHttpRequest(options: BunHttpOptions): Promise<Http1Response> {
  const sockets = (globalThis as { Bun?: BunSockets }).Bun;
  if (sockets === undefined) return Promise.reject(new Error('bun-http needs the bun runtime'));
  const { tls, signal } = options;
  return new Promise((resolve, reject) => {
    let socket: BunSocket | undefined;
    let settled = false;
    let received = Buffer.alloc(0);
    const finish = (error: Error | undefined, response?: Http1Response): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket?.end();
      if (error !== undefined) reject(error);
      else if (response !== undefined) resolve(response);
    };
    const onAbort = (): void => finish(new BunHttpError('aborted', 'ABORT_ERR', { cause: signal.reason }));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    const decode = (ended: boolean): void => {
      try {
        const response = decodeHttp1Response(received, ended);
        if (response !== undefined) finish(undefined, response);
      } catch (error) {
        finish(new BunHttpError((error as Error).message, 'BAD_RESPONSE', { cause: error }));
      }
    };
    const send = (target: BunSocket): void => {
      try {
        target.write(encodeHttp1Request(options.request));
      } catch (error) {
        finish(error as Error);
      }
    };
    sockets
      .connect({
        ...('unix' in options.target
          ? { unix: options.target.unix }
          : { hostname: options.target.hostname, port: options.target.port }),
        ...(tls === undefined ? {} : { tls }),
        socket: {
          open(opened) {
            socket = opened;
            if (settled) opened.end();
            else if (tls === undefined) send(opened);
          },
          handshake(shaken, success, error) {
            if (!success && tls?.rejectUnauthorized !== false) {
              const failure = socketError(error, 'TLS_HANDSHAKE_FAILED');
              finish(new BunHttpError(`TLS: ${failure.message}`, failure.code, { cause: error }));
              return;
            }
            send(shaken);
          },
          data(_socket, data) {
            if (received.length + data.byteLength > options.maxResponseBytes) {
              finish(
                new BunHttpError(`response larger than ${options.maxResponseBytes} bytes`, 'BAD_RESPONSE'),
              );
              return;
            }
            received = Buffer.concat([received, data]);
            decode(false);
          },
          end: () => decode(true),
          close: () => decode(true),
          error: (_socket, error) => finish(socketError(error, 'ECONNRESET')),
          connectError: (_socket, error) => finish(socketError(error, 'ECONNREFUSED')),
        },
      })
      .then(
        (connected) => {
          socket = connected;
          if (settled) connected.end();
        },
        (error: unknown) => finish(socketError(error as BunSocketError, 'ECONNREFUSED')),
      );
  });
}
