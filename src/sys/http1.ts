// HTTP/1.1 for one request per connection, as pure functions: the request bytes, and the response decoded from the
// bytes received so far. The bun-compiled plugin talks to the API server and the agent through these over a raw
// socket (src/sys/bun-http.ts): Bun's fetch starts an HTTP client thread on first use and, worse, loads the
// caller's NODE_EXTRA_CA_CERTS bundle into every TLS context it makes (containerd hands its own environment to
// plugins; measured +7 ms per pod lookup with the Debian CA bundle there). Only what those two peers send is
// needed: Content-Length, chunked, or a body that ends with the connection; no compression, no upgrades.

export interface Http1Request {
  readonly method: 'GET' | 'POST';
  /** Path and query, e.g. /api/v1/namespaces/default/pods/web-0 */
  readonly path: string;
  /** The Host header: host[:port]. */
  readonly host: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface Http1Response {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

export class Http1Error extends Error {
  override readonly name = 'Http1Error';
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

function assertHeaderSafe(name: string, value: string): void {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n]/.test(value)) {
    throw new Http1Error(`invalid header ${JSON.stringify(name)}`);
  }
}

/** The request bytes, `Connection: close` (one request per connection: the plugin makes one or two). */
export function encodeHttp1Request(request: Http1Request): Buffer {
  if (!request.path.startsWith('/') || /[\s]/.test(request.path)) {
    throw new Http1Error(`invalid request path ${JSON.stringify(request.path)}`);
  }
  const body = request.body === undefined ? undefined : Buffer.from(request.body, 'utf8');
  const headers: Array<[string, string]> = [
    ['Host', request.host],
    ...Object.entries(request.headers),
    ['Connection', 'close'],
  ];
  if (body !== undefined) headers.push(['Content-Length', String(body.length)]);
  const lines = [`${request.method} ${request.path} HTTP/1.1`];
  for (const [name, value] of headers) {
    assertHeaderSafe(name, value);
    lines.push(`${name}: ${value}`);
  }
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return body === undefined ? head : Buffer.concat([head, body]);
}

/** Decodes a chunked body; undefined while incomplete. Trailers are read and dropped. */
function decodeChunked(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = data.indexOf(CRLF, offset);
    if (lineEnd === -1) return undefined;
    const sizeText = data.subarray(offset, lineEnd).toString('latin1').split(';')[0]?.trim() ?? '';
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText))
      throw new Http1Error(`invalid chunk size ${JSON.stringify(sizeText)}`);
    const size = Number.parseInt(sizeText, 16);
    offset = lineEnd + 2;
    if (size === 0) {
      // Trailer section: header lines until an empty line.
      for (;;) {
        const trailerEnd = data.indexOf(CRLF, offset);
        if (trailerEnd === -1) return undefined;
        if (trailerEnd === offset) return Buffer.concat(parts);
        offset = trailerEnd + 2;
      }
    }
    if (data.length < offset + size + 2) return undefined;
    parts.push(data.subarray(offset, offset + size));
    if (!data.subarray(offset + size, offset + size + 2).equals(CRLF))
      throw new Http1Error('chunk without CRLF');
    offset += size + 2;
  }
}

/**
 * The response in `received`, or undefined while more bytes are needed. `ended`: the peer closed the connection
 * (a response without Content-Length or chunking ends there; anything else incomplete is an error then).
 */
export function decodeHttp1Response(received: Buffer, ended: boolean): Http1Response | undefined {
  const headEnd = received.indexOf(HEADER_END);
  if (headEnd === -1) {
    if (ended) throw new Http1Error('the connection closed before a complete response header');
    return undefined;
  }
  const [statusLine = '', ...headerLines] = received.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (status === null)
    throw new Http1Error(`not an HTTP/1.x response: ${JSON.stringify(statusLine.slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Http1Error(`invalid header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  const data = received.subarray(headEnd + HEADER_END.length);
  const code = Number(status[1]);
  // An interim answer (103 Early Hints…): the final one follows on the same connection.
  if (code >= 100 && code < 200) return decodeHttp1Response(data, ended);
  const respond = (body: Buffer): Http1Response => ({ status: code, headers, body });
  // No body by definition (RFC 9112 §6.3).
  if (code === 204 || code === 304) return respond(Buffer.alloc(0));
  const encoding = headers.get('transfer-encoding');
  if (encoding !== undefined) {
    if (encoding.toLowerCase() !== 'chunked')
      throw new Http1Error(`unsupported transfer-encoding ${encoding}`);
    const body = decodeChunked(data);
    if (body === undefined && ended) throw new Http1Error('the connection closed inside a chunked body');
    return body === undefined ? undefined : respond(body);
  }
  const lengthText = headers.get('content-length');
  if (lengthText !== undefined) {
    if (!/^\d+$/.test(lengthText))
      throw new Http1Error(`invalid content-length ${JSON.stringify(lengthText)}`);
    const length = Number(lengthText);
    if (data.length >= length) return respond(data.subarray(0, length));
    if (ended) throw new Http1Error(`the connection closed after ${data.length} of ${length} body bytes`);
    return undefined;
  }
  return ended ? respond(data) : undefined;
}
