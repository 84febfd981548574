// Go's encoding/json, as the installer reads and rewrites CNI config files with it (behaviour §1.5.3, §1.5.4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isJsonObject, marshalOrdered, marshalSorted, parseGoJson } from '../../../src/installer/go-json.ts';

test('a number past float64 is refused, as Go refuses it (ParseFloat range error), wherever it sits', () => {
  for (const text of ['1e400', '-1e400', '1.8e308', '{"a":{"b":[1,2,1e400]}}', '[{"mtu":-1E999}]']) {
    assert.throws(() => parseGoJson(text), /out of range/, text);
  }
  // The largest float64 is kept; an underflow is zero in Go (no range error) and here.
  assert.equal(parseGoJson('1.7976931348623157e308'), Number.MAX_VALUE);
  assert.deepEqual(parseGoJson('{"tiny":1e-400}'), { tiny: 0 });
});

test('what encoding/json accepts: the last of duplicate keys wins, whitespace around the value', () => {
  assert.deepEqual(parseGoJson(' {"type":"a","type":"b","n":1,"n":2}\n'), { type: 'b', n: 2 });
  // Go decodes invalid UTF-8 as U+FFFD; the file's text reaches the parser already decoded that way.
  const invalid = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]).toString('utf8');
  assert.deepEqual(parseGoJson(invalid), { a: '\ufffd' });
});

test('what encoding/json refuses: trailing data, a BOM, non-JSON literals and numbers', () => {
  for (const text of [
    '{} {}',
    '{"a":1}x',
    '\ufeff{}',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"a":01}',
    '{"a":+1}',
    '{"a":.5}',
    "{'a':1}",
    '{"a":1,}',
    '{"a":"tab\there"}',
    '',
  ]) {
    assert.throws(() => parseGoJson(text), SyntaxError, JSON.stringify(text));
  }
});

test('marshalSorted: keys sorted at every level, 2-space indent, newline, undefined members left out', () => {
  const value = { b: [1, { z: true, a: null }], a: {}, c: [], d: undefined } as unknown as Parameters<
    typeof marshalSorted
  >[0];
  assert.equal(
    marshalSorted(value),
    '{\n  "a": {},\n  "b": [\n    1,\n    {\n      "a": null,\n      "z": true\n    }\n  ],\n  "c": []\n}\n',
  );
});

test("both writers escape what Go's HTML-safe encoder escapes: <, >, &, U+2028, U+2029", () => {
  const text = 'a<b>c&d\u2028e\u2029f';
  const escaped = '"a\\u003cb\\u003ec\\u0026d\\u2028e\\u2029f"';
  assert.equal(marshalSorted({ k: text }), `{\n  "k": ${escaped}\n}\n`);
  assert.equal(marshalOrdered({ k: text }), `{\n  "k": ${escaped}\n}\n`);
});

test('marshalOrdered keeps the insertion order (a Go struct) and ends with a newline', () => {
  assert.equal(
    marshalOrdered({ type: 'istio-cni', name: 'istio-cni', ipam: {} }),
    '{\n  "type": "istio-cni",\n  "name": "istio-cni",\n  "ipam": {}\n}\n',
  );
});

test('isJsonObject: objects only, not arrays or null', () => {
  assert.equal(isJsonObject({}), true);
  for (const value of [[], null, 'x', 1, true, undefined])
    assert.equal(isJsonObject(value), false, String(value));
});
