// HttpsPodSource against the local HTTPS API server: TLS verification with the kubeconfig CA, bearer token, user
// agent, and how each failure maps to KubeError.retryable (→ CNI code 11 vs 999); that no request outlives its
// timeout or the caller's deadline, nor a connection close(); and what the operator reads for 401 and 403.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { HttpsPodSource } from '../../src/kube/pod-source-node.ts';
import type { KubeconfigCredentials } from '../../src/kube/pod-source.ts';
import { KubeError } from '../../src/errors.ts';
import { encodeCniError } from '../../src/cni/spec.ts';
import { toCniError } from '../../src/cni/dispatch.ts';
import { lookupPod } from '../../src/plugin/pod-lookup.ts';
import type { LookupPolicy } from '../../src/plugin/pod-lookup.ts';
import { systemClock } from '../../src/sys/process-io.ts';
import { startKubeApiServer } from '../support/kube-api-server.ts';
import { within } from '../support/within.ts';
import type { KubeApiServer } from '../support/kube-api-server.ts';

let api: KubeApiServer;

before(async () => {
  api = await startKubeApiServer();
  api.upsertPod({ metadata: { name: 'p', namespace: 'ns' }, spec: { containers: [{ name: 'c' }] } });
});
after(async () => {
  await api?.close();
});

function source(overrides: Partial<KubeconfigCredentials> = {}, requestTimeoutMs = 2000): HttpsPodSource {
  return new HttpsPodSource(
    { server: api.url, caPem: api.caPem, insecureSkipTlsVerify: false, token: api.token, ...overrides },
    { userAgent: 'istio-cni/test', requestTimeoutMs },
  );
}

async function failure(promise: Promise<unknown>): Promise<KubeError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof KubeError, String(error));
    return error;
  }
  assert.fail('expected a failure');
}

test('GET with CA + token; keep-alive connection reused; user agent set', async () => {
  const pods = source();
  try {
    const before = api.requests.length;
    const first = (await pods.getPod('ns', 'p')) as { metadata: { name: string } };
    await pods.getPod('ns', 'p');
    assert.equal(first.metadata.name, 'p');
    const [one, two] = api.requests.slice(before);
    assert.ok(one !== undefined && two !== undefined);
    assert.equal(two.connection, one.connection, 'the second GET reused the first connection');
    const last = api.requests.at(-1);
    assert.equal(last?.headers['user-agent'], 'istio-cni/test');
    assert.equal(last?.headers['authorization'], `Bearer ${api.token}`);
  } finally {
    pods.close();
  }
});

test('insecure-skip-tls-verify works without a CA; an unknown CA is refused (not retryable)', async () => {
  const insecure = source({ caPem: undefined, insecureSkipTlsVerify: true });
  try {
    assert.ok(await insecure.getPod('ns', 'p'));
  } finally {
    insecure.close();
  }
  const noCa = source({ caPem: undefined });
  try {
    const error = await failure(noCa.getPod('ns', 'p'));
    assert.equal(error.retryable, false);
  } finally {
    noCa.close();
  }
});

test('404 → retryable with the API message; 401 → not retryable', async () => {
  const pods = source();
  try {
    const missing = await failure(pods.getPod('ns', 'ghost'));
    assert.equal(missing.status, 404);
    assert.equal(missing.retryable, true);
    assert.equal(missing.message, 'pods "ghost" not found');
  } finally {
    pods.close();
  }
  const bad = source({ token: 'nope' });
  try {
    const unauthorized = await failure(bad.getPod('ns', 'p'));
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.retryable, false);
  } finally {
    bad.close();
  }
});

test('500, dropped connection and timeout are retryable', async () => {
  const pods = source({}, 300);
  try {
    api.injectFault({ status: 500, times: 1 });
    const serverError = await failure(pods.getPod('ns', 'p'));
    assert.equal(serverError.retryable, true);
    assert.equal(serverError.retryAfterMs, undefined);
    api.injectFault({ status: 429, times: 1 });
    const throttled = await failure(pods.getPod('ns', 'p'));
    assert.equal(throttled.retryable, true);
    assert.equal(throttled.retryAfterMs, 1000, "the test server's Retry-After: 1");
    api.injectFault({ drop: true, times: 1 });
    assert.equal((await failure(pods.getPod('ns', 'p'))).retryable, true);
    api.injectFault({ latencyMs: 1000, times: 1 });
    const slow = await failure(pods.getPod('ns', 'p'));
    assert.equal(slow.retryable, true);
    assert.match(slow.message, /no answer within 300 ms/);
  } finally {
    api.clearFaults();
    pods.close();
  }
});

test('connection refused is retryable', async () => {
  const pods = source({ server: 'https://127.0.0.1:1' });
  try {
    assert.equal((await failure(pods.getPod('ns', 'p'))).retryable, true);
  } finally {
    pods.close();
  }
});

/** How long a test waits for something that happens at once (a connection, a close) before it fails. */
const WAIT_MS = 5000;

/** A TCP listener on 127.0.0.1 that keeps the connections it accepts, so that a test can wait for the client to close
 * one. `serve` handles each; without it the listener accepts, reads and never answers (not even the TLS handshake):
 * reading, so that it sees the client's close. */
async function listen(serve: (socket: Socket) => void = (socket) => socket.resume()): Promise<{
  url: string;
  /** The next connection; call before the client connects. */
  accepted(): Promise<Socket>;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    serve(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted: async () => {
      const [socket] = (await once(server, 'connection', { signal: AbortSignal.timeout(WAIT_MS) })) as [
        Socket,
      ];
      return socket;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      const closed = once(server, 'close');
      server.close();
      await closed;
    },
  };
}

/** `serve` for `listen`: passes the connection through to the API server (whose certificate names 127.0.0.1).
 * What the server does to its end is not passed back, so only the client closes the client's connection (the
 * server's keep-alive timeout closing an idle one cannot pass for the client's close()). */
function toApiServer(socket: Socket): void {
  const upstream = connect(api.port, '127.0.0.1');
  upstream.on('error', () => {});
  socket.pipe(upstream);
  upstream.pipe(socket, { end: false });
  socket.on('close', () => upstream.destroy());
}

/** Resolves when the peer closes `socket`; fails the test when it is still open `WAIT_MS` later. */
async function closes(socket: Socket, what: string): Promise<void> {
  if (socket.destroyed) return;
  // Not events.once: an ECONNRESET from the client's close would reject it.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await within(closed, WAIT_MS, `${what} closing`);
}

/** Resolves once the API server has received a request for `path` (from now on). */
function requestArrives(path: string): Promise<void> {
  const from = api.requests.length;
  let stop: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => {
    stop = api.onActivity(() => {
      if (api.requests.slice(from).some((request) => request.path === path)) resolve();
    });
  });
  return within(arrived, WAIT_MS, `a request for ${path}`).finally(stop);
}

test('a server that accepts and never answers: the GET fails at the request timeout and its connection is closed', async () => {
  const silent = await listen();
  const pods = source({ server: silent.url }, 300);
  try {
    const accepted = silent.accepted();
    const error = await failure(pods.getPod('ns', 'p'));
    assert.equal(error.message, 'get pod ns/p: no answer within 300 ms');
    assert.equal(error.retryable, true);
    await closes(await accepted, 'the unanswered connection');
  } finally {
    pods.close();
    await silent.close();
  }
});

test('an answer that starts and never ends: the GET fails at the request timeout and its connection is closed', async () => {
  const proxy = await listen(toApiServer);
  const pods = source({ server: proxy.url }, 300);
  api.injectFault({ stall: true, times: 1 });
  try {
    const accepted = proxy.accepted();
    const error = await failure(pods.getPod('ns', 'p'));
    assert.equal(error.message, 'get pod ns/p: no answer within 300 ms');
    assert.equal(error.retryable, true);
    assert.equal(api.requests.at(-1)?.path, '/api/v1/namespaces/ns/pods/p');
    await closes(await accepted, 'the stalled connection');
  } finally {
    api.clearFaults();
    pods.close();
    await proxy.close();
  }
});

test('a GET that timed out unanswered does not keep the process alive (even without close())', async () => {
  const silent = await listen();
  const module = pathToFileURL(`${import.meta.dirname}/../../src/kube/pod-source-node.ts`).href;
  const script = `
    import { HttpsPodSource } from ${JSON.stringify(module)};
    const pods = new HttpsPodSource(
      { server: ${JSON.stringify(silent.url)}, caPem: undefined, insecureSkipTlsVerify: true, token: 't' },
      { userAgent: 'istio-cni/test', requestTimeoutMs: 200 },
    );
    await pods.getPod('ns', 'p').then(() => console.log('answered'), (error) => console.log(error.message));
  `;
  try {
    const child = promisify(execFile)(process.execPath, ['--input-type=module', '--eval', script], {
      timeout: 20_000,
    });
    const { stdout } = await child.catch((error: { killed?: boolean }) => {
      assert.ok(!error.killed, 'the process was still running 20 s after a 200 ms request timeout');
      throw error;
    });
    assert.equal(stdout, 'get pod ns/p: no answer within 200 ms\n');
  } finally {
    await silent.close();
  }
});

test("the caller's abort signal ends a GET the server holds, before the request timeout, and closes its connection", async () => {
  const proxy = await listen(toApiServer);
  const pods = source({ server: proxy.url }, 10_000);
  let release = (): void => {};
  const hold = new Promise<void>((resolve) => (release = resolve));
  api.injectFault({ hold, times: 1 });
  try {
    const accepted = proxy.accepted();
    const arrived = requestArrives('/api/v1/namespaces/ns/pods/p');
    const controller = new AbortController();
    const pending = failure(pods.getPod('ns', 'p', controller.signal));
    await arrived;
    controller.abort();
    const error = await pending;
    assert.equal(error.message, 'get pod ns/p: no answer before the lookup deadline');
    assert.equal(error.retryable, true);
    await closes(await accepted, 'the aborted connection');
  } finally {
    release();
    api.clearFaults();
    pods.close();
    await proxy.close();
  }
});

test('the lookup deadline ends an attempt the server never answers, long before the request timeout (code 11)', async () => {
  const silent = await listen();
  const pods = source({ server: silent.url }, 10_000);
  const policy: LookupPolicy = {
    deadlineMs: 300,
    requestTimeoutMs: 10_000,
    initialBackoffMs: 50,
    maxBackoffMs: 50,
  };
  try {
    const error = await failure(lookupPod(pods, 'ns', 'p', policy, systemClock, () => {}));
    assert.equal(error.message, 'get pod ns/p: no answer before the lookup deadline');
    assert.equal(toCniError(error, 'ADD').code, 11);
  } finally {
    pods.close();
    await silent.close();
  }
});

test('close() closes the kept-alive connection at once', async () => {
  const proxy = await listen(toApiServer);
  const pods = source({ server: proxy.url });
  try {
    const accepted = proxy.accepted();
    await pods.getPod('ns', 'p');
    const connection = await accepted;
    assert.equal(connection.destroyed, false, 'the connection is kept alive after the GET');
    pods.close();
    await closes(connection, 'the kept-alive connection after close()');
  } finally {
    pods.close();
    await proxy.close();
  }
});

/** What the container runtime gets (and shows in the pod's events) when the lookup fails with `error`. */
function cniErrorOf(error: unknown): unknown {
  return JSON.parse(encodeCniError(toCniError(error, 'ADD')));
}

const ONE_TRY: LookupPolicy = {
  deadlineMs: 5000,
  requestTimeoutMs: 2000,
  initialBackoffMs: 50,
  maxBackoffMs: 50,
};

test('401: code 999 at once, with the API message and a hint at the token the agent writes', async () => {
  const bad = source({ token: 'nope' });
  const retries: KubeError[] = [];
  try {
    const from = api.requests.length;
    const error = await failure(lookupPod(bad, 'ns', 'p', ONE_TRY, systemClock, (e) => retries.push(e)));
    assert.equal(error.status, 401);
    assert.deepEqual(cniErrorOf(error), {
      code: 999,
      msg: 'Unauthorized (401: the API server rejected the token in the plugin kubeconfig; the istio-cni agent rewrites it from its service account token)',
      details: 'KUBE_API',
    });
    assert.deepEqual(retries, []);
    assert.equal(api.requests.length - from, 1, 'one GET, not retried');
  } finally {
    bad.close();
  }
});

test("403: code 999 at once, with the API message and a hint at the ClusterRole's pods get permission", async () => {
  const forbidding = await startKubeApiServer({ authorize: (request) => request.resource !== 'pods' });
  const pods = new HttpsPodSource(
    {
      server: forbidding.url,
      caPem: forbidding.caPem,
      insecureSkipTlsVerify: false,
      token: forbidding.token,
    },
    { userAgent: 'istio-cni/test', requestTimeoutMs: 2000 },
  );
  const retries: KubeError[] = [];
  try {
    const error = await failure(lookupPod(pods, 'ns', 'p', ONE_TRY, systemClock, (e) => retries.push(e)));
    assert.equal(error.status, 403);
    assert.deepEqual(cniErrorOf(error), {
      code: 999,
      msg:
        'pods "p" is forbidden: User "system:serviceaccount:istio-system:istio-cni" cannot get resource "pods" in API group "" in the namespace "ns"' +
        " (403: the istio-cni service account may not read pods; check the istio-cni ClusterRole's pods get permission)",
      details: 'KUBE_API',
    });
    assert.deepEqual(retries, []);
    assert.equal(forbidding.requests.length, 1, 'one GET, not retried');
  } finally {
    pods.close();
    await forbidding.close();
  }
});
