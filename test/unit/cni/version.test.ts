// The netconf's cniVersion as containernetworking/cni's ConfigDecoder reads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configVersion, resultFamily, versionAtLeast } from '../../../src/cni/version.ts';
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

test("versionAtLeast compares all three parts numerically, as upstream's GreaterThanOrEqualTo", () => {
  const cases: [string, string, boolean][] = [
    ['0.3.0', '0.3.1', false],
    ['0.3.1', '0.3.0', true],
    ['1.1.0', '1.1.0', true],
    ['1.1', '1.1.0', true],
    ['1', '1.0.1', false],
    ['0.10.0', '0.4.0', true],
    // strconv.Atoi takes a sign; "" is 0.1.0
    ['+1.0.0', '0.4.0', true],
    ['-1.0.0', '0.1.0', false],
    ['', '0.1.0', true],
    ['', '0.1.1', false],
  ];
  for (const [version, other, expected] of cases) {
    assert.equal(versionAtLeast(version, other), expected, `${version} >= ${other}`);
  }
});

test("an unparseable version is a decoding failure (code 6) with Go's wording, naming the part", () => {
  const cases: [string, string][] = [
    ['x.0.0', 'failed to convert major version part "x": strconv.Atoi: parsing "x": invalid syntax'],
    ['1.y', 'failed to convert minor version part "y": strconv.Atoi: parsing "y": invalid syntax'],
    ['1.0.z', 'failed to convert micro version part "z": strconv.Atoi: parsing "z": invalid syntax'],
    ['1.0.0.0', 'invalid version "1.0.0.0": too many parts'],
  ];
  for (const [version, message] of cases) {
    assert.throws(
      () => versionAtLeast(version, '0.4.0'),
      (error: unknown) => error instanceof CniError && error.code === 6 && error.message === message,
      version,
    );
  }
});

test('result families: 0.1.0/0.2.0, every other 0.x, then 1.x', () => {
  const cases: [string, string][] = [
    ['0.1.0', '0.2'],
    ['0.2.0', '0.2'],
    ['0.3.0', '0.4'],
    ['0.3.1', '0.4'],
    ['0.4.0', '0.4'],
    ['1.0.0', '1'],
    ['1.1.0', '1'],
  ];
  for (const [version, family] of cases) assert.equal(resultFamily(version), family, version);
});
