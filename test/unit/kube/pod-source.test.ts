import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isRetryableStatus, parsePluginKubeconfig, statusMessage } from '../../../src/kube/pod-source.ts';
import { retryAfterMs } from '../../../src/kube/retry-after.ts';
import { KubeError } from '../../../src/errors.ts';
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
