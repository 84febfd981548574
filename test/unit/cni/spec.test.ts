// The CNI error object and Go-compatible JSON text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniError, encodeCniError, goJson } from '../../../src/cni/spec.ts';

test("goJson escapes what Go's encoding/json escapes: <, >, & and the JavaScript line separators", () => {
  assert.equal(goJson({ msg: 'a<b>&c\u2028d\u2029e' }), '{"msg":"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029e"}');
});

test('the error object: code, msg, then details only when set, 4-space indent, no newline after it (types.Error.Print)', () => {
  assert.match(
    encodeCniError(new CniError(7, 'missing network name')),
    /^\{\n {4}"code": 7,\n {4}"msg": "missing network name"\n\}$/,
  );
  assert.match(
    encodeCniError(new CniError(4, 'invalid characters in containerID', 'a/b')),
    /^\{\n {4}"code": 4,\n {4}"msg": "invalid characters in containerID",\n {4}"details": "a\/b"\n\}$/,
  );
});
