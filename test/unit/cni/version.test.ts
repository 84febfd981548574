// The netconf's cniVersion as containernetworking/cni's ConfigDecoder reads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configVersion } from '../../../src/cni/version.ts';
import { CniError } from '../../../src/cni/spec.ts';

test('cniVersion absent, null or "" is 0.1.0 (ConfigDecoder); another string is taken as given, any key case', () => {
  assert.equal(configVersion({}), '0.1.0');
  assert.equal(configVersion({ cniVersion: null }), '0.1.0');
  assert.equal(configVersion({ cniVersion: '' }), '0.1.0');
  assert.equal(configVersion({ cniVersion: '1.1.0' }), '1.1.0');
  assert.equal(configVersion({ cniversion: '0.4.0' }), '0.4.0');
  assert.equal(configVersion({ cniVersion: '9.9.9' }), '9.9.9');
});

test('a cniVersion that is no string fails decoding (code 6)', () => {
  for (const value of [1, true, ['1.0.0'], { v: 1 }]) {
    assert.throws(
      () => configVersion({ cniVersion: value }),
      (error: unknown) => error instanceof CniError && error.code === 6,
      JSON.stringify(value),
    );
  }
});
