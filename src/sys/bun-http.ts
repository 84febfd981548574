// One HTTP/1.1 request over Bun's native sockets (TCP, TLS or a unix socket), for the bun-compiled plugin: the pod
// GET to the API server and the log POST to the agent. Why not fetch: see src/sys/http1.ts. TLS verification is the
// socket layer's (chain against the given CA only, and the certificate's names against `serverName`); a failed
// verification ends the request here unless the kubeconfig says insecure-skip-tls-verify.
import type { Http1Request, Http1Response } from './http1.ts';
import { decodeHttp1Response, encodeHttp1Request } from './http1.ts';

/** The part of Bun's socket API used here (no bun type package in this project). */
interface BunSocket {
  /** Bytes taken (the rest is not queued: write it on `drain`); negative when the socket is closed. */
  write(data: Uint8Array): number;
  end(): void;
  /** Closes at once, without waiting for the peer. */
  terminate(): void;
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
    drain(socket: BunSocket): void;
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

/** One request; resolves with the answer. */
export function bunHttpRequest(options: BunHttpOptions): Promise<Http1Response> {
  return exchange(options, true) as Promise<Http1Response>;
}

/**
 * One request whose answer nobody needs: resolves (undefined) once the whole request is in the peer's socket, or
 * with the answer if the peer answered before that. Closes at once,
 * over a unix socket the bytes stay readable for the peer after the close; the sender does not wait
 * for the peer's event loop to answer (≈ 1 ms of every pod start for the plugin's log POST).
 */
export function bunHttpSend(options: BunHttpOptions): Promise<Http1Response | undefined> {
  return exchange(options, false);
}

function exchange(options: BunHttpOptions, awaitAnswer: boolean): Promise<Http1Response | undefined> {
  const sockets = (globalThis as { Bun?: BunSockets }).Bun;
  if (sockets === undefined) return Promise.reject(new Error('bun-http needs the bun runtime'));
  const { tls, signal } = options;
  return new Promise((resolve, reject) => {
    let socket: BunSocket | undefined;
    let settled = false;
    let received = Buffer.alloc(0);
    let unsent: Uint8Array | undefined;
    const finish = (error: Error | undefined, response?: Http1Response, sent = false): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (sent) socket?.terminate();
      else socket?.end();
      if (error !== undefined) reject(error);
      else if (response !== undefined || sent) resolve(response);
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
    const writeUnsent = (target: BunSocket): void => {
      if (unsent === undefined) return;
      try {
        const written = target.write(unsent);
        if (written < 0) throw new BunHttpError('socket closed while sending the request', 'ECONNRESET');
        unsent = written >= unsent.byteLength ? undefined : unsent.subarray(written);
      } catch (error) {
        finish(error as Error);
        return;
      }
      if (unsent === undefined && !awaitAnswer) finish(undefined, undefined, true);
    };
    const send = (target: BunSocket): void => {
      try {
        unsent = encodeHttp1Request(options.request);
      } catch (error) {
        finish(error as Error);
        return;
      }
      writeUnsent(target);
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
          drain: writeUnsent,
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
