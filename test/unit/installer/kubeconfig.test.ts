import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { renderKubeconfig } from '../../../src/installer/kubeconfig.ts';

const testdata = path.resolve(import.meta.dirname, '../../../../shared/conformance/istio-install-testdata');
const read = (name: string): string => readFileSync(path.join(testdata, name), 'utf8');
const base = {
  protocol: 'https',
  host: '10.96.0.1',
  port: '443',
  ca: readFileSync(path.join(testdata, 'kube-ca.crt')),
  skipTlsVerify: false,
  token: 'service_account_token_string',
};

test('TLS kubeconfig matches kubeconfig-tls', () => {
  assert.equal(renderKubeconfig(base), read('kubeconfig-tls'));
});
test('skip-TLS kubeconfig matches kubeconfig-skip-tls', () => {
  assert.equal(
    renderKubeconfig({ ...base, ca: undefined, skipTlsVerify: true }),
    read('kubeconfig-skip-tls'),
  );
});
test('new host matches kubeconfig-newhost', () => {
  assert.equal(renderKubeconfig({ ...base, host: '50.76.2.1' }), read('kubeconfig-newhost'));
});
test('redacted form hides token and CA; IPv6 host is bracketed', () => {
  const redacted = renderKubeconfig({ ...base, host: 'fd00::1' }, true);
  assert.doesNotMatch(redacted, /service_account_token_string|LS0t/);
  assert.match(redacted, /server: https:\/\/\[fd00::1\]:443/);
});

test('a token YAML would read as another type is quoted, as Go yaml writes it; a bracketed IPv6 host is not bracketed again', () => {
  const tokenLine = (token: string) => /^ {4}token: (.*)$/m.exec(renderKubeconfig({ ...base, token }))?.[1];
  assert.equal(tokenLine('eyJhbGciOi.x-y_z'), 'eyJhbGciOi.x-y_z');
  for (const token of ['true', 'No', 'null', '12345', '1e3', '', 'ends-with: colon', 'a: b']) {
    assert.equal(tokenLine(token), JSON.stringify(token), token);
  }
  assert.match(renderKubeconfig({ ...base, host: '[fd00::1]' }), /server: https:\/\/\[fd00::1\]:443\n/);
});

/** The token as a YAML reader gets it back from the rendered kubeconfig. */
function tokenReadBack(token: string): unknown {
  const doc = parse(renderKubeconfig({ ...base, token })) as { users: { user: { token: unknown } }[] };
  return doc.users[0]?.user.token;
}

test('every token reads back from the YAML exactly: trailing colon or space, leading indicators, plain-looking ones', () => {
  for (const token of [
    'abc:',
    'abc ',
    ' abc',
    '[abc',
    ']abc',
    '{abc}',
    '*abc',
    '#abc',
    '&abc',
    '-abc',
    'a:b',
    'a b',
    'a/b+c=',
    'eyJhbGciOi.x-y_z',
  ]) {
    assert.equal(tokenReadBack(token), token, JSON.stringify(token));
  }
});

test('the token is the token file exactly: a trailing newline is kept, not trimmed', () => {
  assert.equal(tokenReadBack('service_account_token_string\n'), 'service_account_token_string\n');
});

test('any IPv6 host is bracketed in the server URL, with or without "::"', () => {
  assert.match(
    renderKubeconfig({ ...base, host: 'fd00:1:2:3:4:5:6:7' }),
    /server: https:\/\/\[fd00:1:2:3:4:5:6:7\]:443\n/,
  );
});
