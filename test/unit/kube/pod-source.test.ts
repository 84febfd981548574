import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ApiReader,
  TLS_ERROR,
  isRetryableStatus,
  parsePluginKubeconfig,
  statusMessage,
} from '../../../src/kube/pod-source.ts';
import { retryAfterMs } from '../../../src/kube/retry-after.ts';
import { KubeError } from '../../../src/errors.ts';
import { BunPodSource } from '../../../src/kube/pod-source-bun.ts';
import { toCniError } from '../../../src/cni/dispatch.ts';

const TESTDATA = path.resolve(import.meta.dirname, '../../../../shared/conformance/istio-install-testdata');

test('reads the agent-written kubeconfig goldens (TLS and skip-TLS)', () => {
  const tls = parsePluginKubeconfig(readFileSync(path.join(TESTDATA, 'kubeconfig-tls'), 'utf8'));
  assert.equal(tls.server, 'https://10.96.0.1:443');
  assert.equal(tls.token, 'service_account_token_string');
  assert.equal(tls.insecureSkipTlsVerify, false);
  assert.match(tls.caPem ?? '', /^-----BEGIN CERTIFICATE-----/);
  const skip = parsePluginKubeconfig(readFileSync(path.join(TESTDATA, 'kubeconfig-skip-tls'), 'utf8'));
  assert.equal(skip.insecureSkipTlsVerify, true);
  assert.equal(skip.caPem, undefined);
});

test('quoted and block-scalar tokens', () => {
  const base =
    'clusters:\n- cluster:\n    insecure-skip-tls-verify: true\n    server: https://[fd00::1]:6443\nusers:\n- name: istio-cni\n  user:\n';
  assert.equal(parsePluginKubeconfig(`${base}    token: "a\\x41b"\n`).token, 'aAb');
  assert.equal(parsePluginKubeconfig(`${base}    token: 'it''s'\n`).token, "it's");
  assert.equal(parsePluginKubeconfig(`${base}    token: |\n      abc\n`).token, 'abc');
  assert.equal(parsePluginKubeconfig(`${base}    token: "abc\\n"\n`).token, 'abc');
  assert.equal(parsePluginKubeconfig(`${base}    token: |-\n      abc\n`).token, 'abc');
  assert.equal(parsePluginKubeconfig(`${base}    token: x\n`).server, 'https://[fd00::1]:6443');
  // KUBERNETES_SERVICE_PROTOCOL=HTTPS is written as given, as upstream writes it; a scheme is case-insensitive.
  const upper = base.replace('https://', 'HTTPS://');
  assert.equal(parsePluginKubeconfig(`${upper}    token: x\n`).server, 'HTTPS://[fd00::1]:6443');
});

test('corrupt kubeconfigs fail with a message that says what is missing', () => {
  const cases: [string, RegExp][] = [
    ['', /server is missing/],
    ['garbage: [', /server is missing/],
    ['server: https://h\n', /token is missing/],
    ['server: ftp://h\ntoken: t\n', /not an http\(s\) URL/],
    ['server: "https://10.96.0.1:abc"\ninsecure-skip-tls-verify: true\ntoken: t\n', /is not a valid URL/],
    ['server: "https://h st"\ninsecure-skip-tls-verify: true\ntoken: t\n', /is not a valid URL/],
    ['server: https://h\ninsecure-skip-tls-verify: true\ntoken: "a\\nb"\n', /token holds a control/],
    ['server: https://h\ninsecure-skip-tls-verify: true\ntoken: "\\u2603"\n', /non-Latin-1/],
    ['server: https://h\ninsecure-skip-tls-verify: true\ntoken: "  "\n', /token is missing/],
    ['server: https://h\ntoken: t\n', /neither certificate-authority-data nor insecure-skip-tls-verify/],
    ['server: https://h\ntoken: t\ncertificate-authority-data: !!!\n', /not base64/],
    [
      'server: https://h\ntoken: t\ncertificate-authority-data: aGVsbG8=\n',
      /does not hold a PEM certificate/,
    ],
    // A broken double-quoted scalar is a kubeconfig error (code KUBECONFIG_INVALID), not a bare SyntaxError.
    [
      'server: https://h\ninsecure-skip-tls-verify: true\ntoken: "a\\qb"\n',
      /token is not a valid double-quoted/,
    ],
    // client-go refuses the pair: which one was meant is not ours to guess.
    [
      `server: https://h\ntoken: t\ninsecure-skip-tls-verify: true\ncertificate-authority-data: ${Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64')}\n`,
      /both certificate-authority-data and insecure-skip-tls-verify: true/,
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parsePluginKubeconfig(text),
      (error: unknown) => {
        return (
          error instanceof Error &&
          'code' in error &&
          error.code === 'KUBECONFIG_INVALID' &&
          message.test(error.message)
        );
      },
      text,
    );
  }
});

test('retryable statuses', () => {
  for (const status of [404, 408, 429, 500, 502, 503])
    assert.equal(isRetryableStatus(status), true, String(status));
  for (const status of [400, 401, 403, 422]) assert.equal(isRetryableStatus(status), false, String(status));
});

test('the message names the kubeconfig file when the caller gives it', () => {
  assert.throws(
    () => parsePluginKubeconfig('server: https://h\n', '/var/run/istio-cni/istio-cni-kubeconfig'),
    /^AppError: invalid kubeconfig \/var\/run\/istio-cni\/istio-cni-kubeconfig: users\[0\]\.user\.token is missing$/,
  );
});

test("Retry-After as client-go's checkWait reads it: whole seconds, on 429 and 5xx only", () => {
  assert.equal(retryAfterMs(429, '1'), 1000);
  assert.equal(retryAfterMs(503, ' 30 '), 30_000);
  assert.equal(retryAfterMs(429, undefined), undefined);
  assert.equal(retryAfterMs(429, 'Wed, 21 Oct 2026 07:28:00 GMT'), undefined);
  assert.equal(retryAfterMs(429, '-1'), undefined);
  assert.equal(retryAfterMs(404, '5'), undefined);
  assert.equal(retryAfterMs(499, '5'), undefined);
  for (const status of [500, 502, 504, 599]) assert.equal(retryAfterMs(status, '2'), 2000, String(status));
  // Whole seconds only, and not absurdly many (a value no server means is not waited for).
  assert.equal(retryAfterMs(429, '1.5'), undefined);
  assert.equal(retryAfterMs(429, '5s'), undefined);
  assert.equal(retryAfterMs(429, '999999'), 999_999_000);
  assert.equal(retryAfterMs(429, '1000000'), undefined);
});

const TOKEN_HINT =
  '401: the API server rejected the token in the plugin kubeconfig; the istio-cni agent rewrites it from its service account token';
const RBAC_HINT =
  "403: the istio-cni service account may not read pods; check the istio-cni ClusterRole's pods get permission";

/** A Kubernetes Status body, as the API server answers a failed request. */
function status(code: number, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code });
}

test('401 and 403 messages: the API message, then what the operator checks', () => {
  assert.equal(
    statusMessage(401, status(401, 'Unauthorized'), 'get pod ns/p'),
    `Unauthorized (${TOKEN_HINT})`,
  );
  assert.equal(
    statusMessage(403, status(403, 'pods "p" is forbidden'), 'get pod ns/p'),
    `pods "p" is forbidden (${RBAC_HINT})`,
  );
  // No Status object (a proxy's page, an empty body): the answer itself, still with the hint.
  assert.equal(
    statusMessage(403, '<html>Forbidden</html>\n', 'get pod ns/p'),
    `get pod ns/p: the server answered 403: <html>Forbidden</html> (${RBAC_HINT})`,
  );
  assert.equal(
    statusMessage(401, '', 'get pod ns/p'),
    `get pod ns/p: the server answered 401 (${TOKEN_HINT})`,
  );
  // Ambient detection reads the namespace: a refusal there names that permission, not the pods one.
  assert.equal(
    statusMessage(403, status(403, 'namespaces "ns" is forbidden'), 'get namespace ns'),
    `namespaces "ns" is forbidden (403: the istio-cni service account may not read namespaces; check the istio-cni ClusterRole's namespaces get permission)`,
  );
});

test('other statuses carry no operator hint', () => {
  for (const code of [400, 404, 409, 422, 429, 500, 503]) {
    assert.equal(
      statusMessage(code, status(code, 'the API says'), 'get pod ns/p'),
      'the API says',
      String(code),
    );
    assert.equal(
      statusMessage(code, '', 'get pod ns/p'),
      `get pod ns/p: the server answered ${code}`,
      String(code),
    );
  }
});

test('401 and 403 reach the runtime as code 999 (an operator must act) with the hinted message', () => {
  for (const code of [401, 403]) {
    const message = statusMessage(code, status(code, 'denied'), 'get pod ns/p');
    const cni = toCniError(
      new KubeError(message, { status: code, retryable: isRetryableStatus(code) }),
      'ADD',
    );
    assert.equal(cni.code, 999, String(code));
    assert.equal(cni.message, `denied (${code === 401 ? TOKEN_HINT : RBAC_HINT})`);
    assert.equal(cni.details, 'KUBE_API');
  }
});

const SKIP_TLS = 'server: https://h\ninsecure-skip-tls-verify: true\n';
const CA_DATA = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString(
  'base64',
);

test('insecure-skip-tls-verify is on only when it says true: false keeps the CA and verification', () => {
  const verified = parsePluginKubeconfig(
    `server: https://h\ninsecure-skip-tls-verify: false\ncertificate-authority-data: ${CA_DATA}\ntoken: t\n`,
  );
  assert.equal(verified.insecureSkipTlsVerify, false);
  assert.match(verified.caPem ?? '', /^-----BEGIN CERTIFICATE-----/);
  assert.throws(
    () => parsePluginKubeconfig('server: https://h\ninsecure-skip-tls-verify: false\ntoken: t\n'),
    /neither certificate-authority-data nor insecure-skip-tls-verify/,
  );
});

test('a token with NUL, another C0 control or DEL is refused; a CA that is not a certificate is refused', () => {
  for (const escape of ['\\x00', '\\x1f', '\\x7f']) {
    assert.throws(
      () => parsePluginKubeconfig(`${SKIP_TLS}token: "a${escape}b"\n`),
      /token holds a control/,
      escape,
    );
  }
  const key = Buffer.from('-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n').toString('base64');
  assert.throws(
    () => parsePluginKubeconfig(`server: https://h\ntoken: t\ncertificate-authority-data: ${key}\n`),
    /does not hold a PEM certificate/,
  );
});

test('TLS verification failures need an operator (not retried); transport failures are retried', () => {
  // Node/OpenSSL and Bun/BoringSSL codes for a certificate the kubeconfig CA does not accept.
  for (const code of [
    'CERT_HAS_EXPIRED',
    'CERT_NOT_YET_VALID',
    'DEPTH_ZERO_SELF_SIGNED_CERT',
    'SELF_SIGNED_CERT_IN_CHAIN',
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    'SUBJECT_ISSUER_MISMATCH',
    'ERR_TLS_CERT_ALTNAME_INVALID',
    'ERR_SSL_WRONG_VERSION_NUMBER',
  ]) {
    assert.equal(TLS_ERROR.test(code), true, code);
  }
  for (const code of [
    'ECONNRESET',
    'ECONNREFUSED',
    'ECONNABORTED',
    'ETIMEDOUT',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'EPIPE',
    'EAI_AGAIN',
    'ABORT_ERR',
    'BAD_RESPONSE',
  ]) {
    assert.equal(TLS_ERROR.test(code), false, code);
  }
});

test('conflicts and a gone resource are not retried either', () => {
  for (const status of [409, 410]) assert.equal(isRetryableStatus(status), false, String(status));
});

test('a message is taken from a Status object only when it has one; a long answer is cut at 200 characters', () => {
  assert.equal(
    statusMessage(500, JSON.stringify({ message: 'not a Status' }), 'get pod ns/p'),
    'get pod ns/p: the server answered 500: {"message":"not a Status"}',
  );
  assert.equal(
    statusMessage(500, JSON.stringify({ kind: 'Status', message: '' }), 'get pod ns/p'),
    'get pod ns/p: the server answered 500: {"kind":"Status","message":""}',
  );
  assert.equal(
    statusMessage(502, `  ${'x'.repeat(300)}`, 'get pod ns/p'),
    `get pod ns/p: the server answered 502: ${'x'.repeat(200)}`,
  );
});

/** The two reads as the transports receive them. */
class RecordingReader extends ApiReader {
  readonly reads: { what: string; url: string }[] = [];
  protected override get(what: string, apiPath: string): Promise<unknown> {
    this.reads.push({ what, url: this.urlOf(apiPath).href });
    return Promise.resolve({});
  }
  override close(): void {}
}

test("the reads' URLs and names: the server's own path kept, its trailing slashes dropped, names encoded", async () => {
  const options = { userAgent: 'istio-cni/test', requestTimeoutMs: 1000 };
  const reader = new RecordingReader(
    parsePluginKubeconfig(
      `server: https://10.96.0.1:443/prefix//\ninsecure-skip-tls-verify: true\ntoken: t\n`,
    ),
    options,
  );
  await reader.getPod('default', 'web-0');
  await reader.getPod('ns', 'a/b?c');
  await reader.getNamespace('default');
  assert.deepEqual(reader.reads, [
    { what: 'get pod default/web-0', url: 'https://10.96.0.1/prefix/api/v1/namespaces/default/pods/web-0' },
    { what: 'get pod ns/a/b?c', url: 'https://10.96.0.1/prefix/api/v1/namespaces/ns/pods/a%2Fb%3Fc' },
    { what: 'get namespace default', url: 'https://10.96.0.1/prefix/api/v1/namespaces/default' },
  ]);
});

/** What the fake API server does on one connection of the compiled plugin's transport (Bun's socket API). */
interface FakePeer {
  readonly connectError?: { code: string; message: string };
  /** A TLS verification failure reported by the handshake. */
  readonly tlsError?: { code: string; message: string };
  /** The bytes answered once the request is in, then the connection ends; none: the peer never answers. */
  readonly answer?: string | Buffer;
  /** Deliver the answer in reads of this many bytes (default: one read). */
  readonly readSize?: number;
  /** The peer's close arrives without an end (a reset connection). */
  readonly closeWithoutEnd?: boolean;
}

interface FakeBunRun {
  readonly connects: Record<string, unknown>[];
  readonly requests: string[];
  closed: number;
}

type Handlers = Record<string, (...args: unknown[]) => void>;

/** Runs `body` with a fake `globalThis.Bun` whose sockets play `peer`. */
async function withFakeBun(peer: FakePeer, body: (run: FakeBunRun) => Promise<void>): Promise<void> {
  const run: FakeBunRun = { connects: [], requests: [], closed: 0 };
  const fake = {
    connect(options: Record<string, unknown>) {
      const handlers = options['socket'] as Handlers;
      run.connects.push(Object.fromEntries(Object.entries(options).filter(([key]) => key !== 'socket')));
      const socket = {
        write(data: Uint8Array) {
          run.requests.push(Buffer.from(data).toString('latin1'));
          const answer = peer.answer;
          if (answer !== undefined) {
            queueMicrotask(() => {
              const bytes = typeof answer === 'string' ? Buffer.from(answer, 'latin1') : answer;
              const size = peer.readSize ?? bytes.length;
              for (let offset = 0; offset < bytes.length; offset += size) {
                handlers['data']?.(socket, bytes.subarray(offset, offset + size));
              }
              handlers[peer.closeWithoutEnd === true ? 'close' : 'end']?.(socket);
            });
          }
          return data.byteLength;
        },
        end() {
          run.closed += 1;
        },
        terminate() {
          run.closed += 1;
        },
      };
      queueMicrotask(() => {
        if (peer.connectError !== undefined) {
          handlers['connectError']?.(socket, peer.connectError);
          return;
        }
        handlers['open']?.(socket);
        if (options['tls'] !== undefined) {
          handlers['handshake']?.(socket, peer.tlsError === undefined, peer.tlsError ?? null);
        }
      });
      return Promise.resolve(socket);
    },
  };
  const global = globalThis as { Bun?: unknown };
  global.Bun = fake;
  try {
    await body(run);
  } finally {
    delete global.Bun;
  }
}

const TLS_KUBECONFIG = `server: https://10.96.0.1:443\ncertificate-authority-data: ${CA_DATA}\ntoken: tok\n`;
const OPTIONS = { userAgent: 'istio-cni/1.2.3', requestTimeoutMs: 5000 };
const bunSource = (kubeconfig = TLS_KUBECONFIG, options = OPTIONS) =>
  new BunPodSource(parsePluginKubeconfig(kubeconfig), options);
const httpAnswer = (status: string, body: string, headers = '') =>
  `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** The KubeError a GET rejects with. */
async function kubeErrorOf(promise: Promise<unknown>): Promise<KubeError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof KubeError, String(error));
    return error;
  }
  assert.fail('the GET resolved');
}

test('compiled plugin transport: TLS against the kubeconfig CA and host, token and user agent sent, the pod parsed', async () => {
  const pod = { kind: 'Pod', metadata: { name: 'app-1' } };
  const chunked = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"kin\r\n${(JSON.stringify(pod).length - 5).toString(16)}\r\n${JSON.stringify(pod).slice(5)}\r\n0\r\n\r\n`;
  await withFakeBun({ answer: chunked }, async (run) => {
    assert.deepEqual(await bunSource().getPod('default', 'app-1'), pod);
    assert.deepEqual(run.connects, [
      {
        hostname: '10.96.0.1',
        port: 443,
        tls: {
          ca: Buffer.from(CA_DATA, 'base64').toString('utf8'),
          serverName: '10.96.0.1',
          rejectUnauthorized: true,
        },
      },
    ]);
    assert.deepEqual(run.requests, [
      'GET /api/v1/namespaces/default/pods/app-1 HTTP/1.1\r\nHost: 10.96.0.1\r\nAccept: application/json\r\n' +
        'Authorization: Bearer tok\r\nUser-Agent: istio-cni/1.2.3\r\nConnection: close\r\n\r\n',
    ]);
    assert.equal(run.closed, 1);
  });
});

test('compiled plugin transport: an IPv6 server without a port, plain http, and skip-TLS', async () => {
  await withFakeBun({ answer: httpAnswer('200 OK', '{}') }, async (run) => {
    await bunSource('server: https://[fd00::1]\ninsecure-skip-tls-verify: true\ntoken: t\n').getNamespace(
      'ns',
    );
    await bunSource('server: http://api.local\ninsecure-skip-tls-verify: true\ntoken: t\n').getPod('ns', 'p');
    await bunSource('server: https://[fd00::1]:6443\ninsecure-skip-tls-verify: true\ntoken: t\n').getPod(
      'ns',
      'p',
    );
    assert.deepEqual(run.connects, [
      { hostname: 'fd00::1', port: 443, tls: { serverName: 'fd00::1', rejectUnauthorized: false } },
      { hostname: 'api.local', port: 80 },
      { hostname: 'fd00::1', port: 6443, tls: { serverName: 'fd00::1', rejectUnauthorized: false } },
    ]);
    assert.match(run.requests[0] ?? '', /^GET \/api\/v1\/namespaces\/ns HTTP\/1\.1\r\nHost: \[fd00::1\]\r\n/);
    // The Host header keeps a port that is not the scheme's default (RFC 9112 §3.2).
    assert.match(run.requests[2] ?? '', /\r\nHost: \[fd00::1\]:6443\r\n/);
  });
  // insecure-skip-tls-verify: a certificate the handshake does not verify is used anyway.
  const selfSigned = { code: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed certificate' };
  await withFakeBun({ tlsError: selfSigned, answer: httpAnswer('200 OK', '{"a":1}') }, async () => {
    const insecure = bunSource('server: https://h\ninsecure-skip-tls-verify: true\ntoken: t\n');
    assert.deepEqual(await insecure.getPod('ns', 'p'), { a: 1 });
  });
});

test('compiled plugin transport: answers map to retryable or not, with the API message and Retry-After', async () => {
  const cases: [string, string, boolean, number | undefined, string][] = [
    ['404 Not Found', status(404, 'pods "p" not found'), true, undefined, 'pods "p" not found'],
    ['401 Unauthorized', status(401, 'Unauthorized'), false, undefined, `Unauthorized (${TOKEN_HINT})`],
    ['429 Too Many Requests', status(429, 'slow down'), true, 3000, 'slow down'],
    [
      '503 Service Unavailable',
      'upstream connect error',
      true,
      3000,
      'get pod ns/p: the server answered 503: upstream connect error',
    ],
    ['200 OK', '<html>', true, undefined, 'get pod ns/p: response is not JSON'],
  ];
  for (const [line, body, retryable, retryAfterMs, message] of cases) {
    await withFakeBun({ answer: httpAnswer(line, body, 'Retry-After: 3\r\n') }, async () => {
      const error = await kubeErrorOf(bunSource().getPod('ns', 'p'));
      assert.equal(error.retryable, retryable, line);
      assert.equal(error.status, Number(line.slice(0, 3)), line);
      assert.equal(error.retryAfterMs, retryAfterMs, line);
      assert.equal(error.message, message, line);
    });
  }
});

test('compiled plugin transport: a certificate the CA does not verify is not retried; network failures are', async () => {
  const expired = { code: 'CERT_HAS_EXPIRED', message: 'certificate has expired' };
  await withFakeBun({ tlsError: expired, answer: httpAnswer('200 OK', '{}') }, async (run) => {
    const error = await kubeErrorOf(bunSource().getPod('ns', 'p'));
    assert.equal(error.retryable, false);
    assert.equal(error.message, 'get pod ns/p: TLS: certificate has expired (CERT_HAS_EXPIRED)');
    assert.deepEqual(run.requests, [], 'nothing is sent over an unverified connection');
  });
  const refused = { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 10.96.0.1:443' };
  await withFakeBun({ connectError: refused }, async () => {
    const error = await kubeErrorOf(bunSource().getPod('ns', 'p'));
    assert.equal(error.retryable, true);
    assert.equal(error.message, 'get pod ns/p: connect ECONNREFUSED 10.96.0.1:443');
  });
  // A body cut short by the peer, and an answer past the 4 MiB limit: bad responses, tried again.
  await withFakeBun({ answer: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"a"' }, async () => {
    const error = await kubeErrorOf(bunSource().getPod('ns', 'p'));
    assert.equal(error.retryable, true);
    assert.equal(
      error.message,
      'get pod ns/p: the connection closed after 4 of 10 body bytes (BAD_RESPONSE)',
    );
  });
  const huge = Buffer.concat([
    Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n\r\n'),
    Buffer.alloc(4 * 1024 * 1024),
  ]);
  await withFakeBun({ answer: huge }, async () => {
    const error = await kubeErrorOf(bunSource().getPod('ns', 'p'));
    assert.equal(error.retryable, true);
    assert.equal(error.message, 'get pod ns/p: response larger than 4194304 bytes (BAD_RESPONSE)');
  });
});

test('compiled plugin transport: no answer ends at the request timeout or at the lookup deadline, retryable', async () => {
  await withFakeBun({}, async (run) => {
    const error = await kubeErrorOf(
      bunSource(TLS_KUBECONFIG, { ...OPTIONS, requestTimeoutMs: 20 }).getPod('ns', 'p'),
    );
    assert.equal(error.retryable, true);
    assert.equal(error.message, 'get pod ns/p: no answer within 20 ms');
    assert.equal(run.closed, 1);
  });
  await withFakeBun({}, async () => {
    const deadline = new AbortController();
    const pending = bunSource().getPod('ns', 'p', deadline.signal);
    deadline.abort();
    const error = await kubeErrorOf(pending);
    assert.equal(error.retryable, true);
    assert.equal(error.message, 'get pod ns/p: no answer before the lookup deadline');
  });
});

test('compiled plugin transport: an answer split across reads is put together; a close without an end ends it', async () => {
  const pod = JSON.stringify({ kind: 'Pod', metadata: { name: 'p', labels: { a: 'b' } } });
  const chunked = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${pod.length.toString(16)}\r\n${pod}\r\n0\r\n\r\n`;
  for (const readSize of [1, 7, 64]) {
    await withFakeBun({ answer: chunked, readSize }, async () => {
      assert.deepEqual(await bunSource().getPod('ns', 'p'), JSON.parse(pod), String(readSize));
    });
  }
  await withFakeBun({ answer: 'HTTP/1.1 200 OK\r\n\r\n{"a":1}', closeWithoutEnd: true }, async () => {
    assert.deepEqual(await bunSource().getPod('ns', 'p'), { a: 1 });
  });
  await withFakeBun(
    { answer: 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}', closeWithoutEnd: true },
    async () => {
      const error = await kubeErrorOf(bunSource().getPod('ns', 'p'));
      assert.equal(error.retryable, true);
      assert.match(error.message, /closed after 2 of 9 body bytes/);
    },
  );
});

test('compiled plugin transport: a connect failure without a code is retried; a passed deadline connects nowhere', async () => {
  await withFakeBun({ connectError: { code: '', message: '' } }, async () => {
    const error = await kubeErrorOf(bunSource().getPod('ns', 'p'));
    assert.equal(error.retryable, true);
    assert.equal(error.message, 'get pod ns/p: ECONNREFUSED');
  });
  await withFakeBun({ answer: httpAnswer('200 OK', '{}') }, async (run) => {
    const error = await kubeErrorOf(bunSource().getPod('ns', 'p', AbortSignal.abort()));
    assert.equal(error.retryable, true);
    assert.equal(error.message, 'get pod ns/p: no answer before the lookup deadline');
    assert.deepEqual(run.connects, []);
  });
});
