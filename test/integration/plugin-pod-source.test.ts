// HttpsPodSource against the local HTTPS API server: TLS verification with the kubeconfig CA, bearer token, user
// agent, and how each failure maps to KubeError.retryable (→ CNI code 11 vs 999).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpsPodSource } from '../../src/kube/pod-source-node.ts';
import type { KubeconfigCredentials } from '../../src/kube/pod-source.ts';
import { KubeError } from '../../src/errors.ts';
import { startKubeApiServer } from '../support/kube-api-server.ts';
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
