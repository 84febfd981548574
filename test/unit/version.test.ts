import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { VERSION } from '../../src/version.ts';
import { parseVersionOutput, renderVersion } from '../../src/version-info.ts';

test('the embedded version is the package version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  assert.equal(VERSION, pkg.version);
});

test('install-cni version prints what upstream prints: the BuildInfo long form, -s the version alone, -o json|yaml the fields under clientVersion', () => {
  const info = { version: '1.2.3', runtime: 'bun 1.4.5' };
  assert.equal(
    renderVersion(info, false, ''),
    'version.BuildInfo{Version:"1.2.3", GitRevision:"unknown", GolangVersion:"bun 1.4.5", BuildStatus:"unknown", GitTag:"unknown"}\n',
  );
  assert.equal(renderVersion(info, true, ''), '1.2.3\n');
  const fields = {
    version: '1.2.3',
    revision: 'unknown',
    golang_version: 'bun 1.4.5',
    status: 'unknown',
    tag: 'unknown',
  };
  // Go's json.MarshalIndent order (struct fields), two spaces; -o wins over -s, as upstream's switch does.
  assert.equal(renderVersion(info, true, 'json'), `${JSON.stringify({ clientVersion: fields }, null, 2)}\n`);
  assert.equal(
    renderVersion(info, false, 'yaml'),
    'clientVersion:\n  golang_version: bun 1.4.5\n  revision: unknown\n  status: unknown\n  tag: unknown\n  version: 1.2.3\n\n',
  );
});

test('install-cni version -o takes only yaml or json (empty is the default form)', () => {
  assert.equal(parseVersionOutput(undefined), '');
  assert.equal(parseVersionOutput(''), '');
  assert.equal(parseVersionOutput('json'), 'json');
  assert.equal(parseVersionOutput('yaml'), 'yaml');
  assert.throws(() => parseVersionOutput('xml'), { message: `--output must be 'yaml' or 'json'` });
  assert.throws(() => parseVersionOutput('JSON'), { message: `--output must be 'yaml' or 'json'` });
});
