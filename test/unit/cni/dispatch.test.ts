import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CniHandlers } from '../../../src/cni/dispatch.ts';
import { dispatch } from '../../../src/cni/dispatch.ts';
import { CniError } from '../../../src/cni/spec.ts';
import { AppError, KubeError } from '../../../src/errors.ts';
import { cniEnv, fakeProcessIO } from '../../support/fake-process-io.ts';

const ABOUT = 'CNI plugin istio-cni test';
const CONF = (version?: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    ...(version === undefined ? {} : { cniVersion: version }),
    name: 'k8s-pod-network',
    type: 'istio-cni',
    ...extra,
  });

function recordingHandlers(overrides: Partial<CniHandlers> = {}): CniHandlers & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    add: (args) => {
      calls.push(`ADD ${args.cniVersion}`);
      return Promise.resolve('{"ok":true}');
    },
    del: () => {
      calls.push('DEL');
      return Promise.resolve();
    },
    check: () => {
      calls.push('CHECK');
      return Promise.resolve();
    },
    ...overrides,
  };
}

async function run(
  env: Record<string, string | undefined>,
  stdin: string | Error,
  handlers = recordingHandlers(),
  ownNetns?: string,
) {
  const io = fakeProcessIO(env, stdin, ownNetns === undefined ? {} : { ownNetns });
  const exitCode = await dispatch(io, handlers, ABOUT);
  const stdout = io.stdout.join('');
  const error =
    exitCode === 0 ? undefined : (JSON.parse(stdout) as { code: number; msg: string; details?: string });
  return { exitCode, stdout, stderr: io.stderr.join(''), error, handlers, io };
}

test('VERSION prints exactly the supported versions, reads no stdin', async () => {
  const result = await run({ CNI_COMMAND: 'VERSION' }, new Error('must not read'));
  assert.equal(result.exitCode, 0);
  assert.equal(
    result.stdout,
    '{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n',
  );
  assert.equal(result.io.stdinReads, 0);
});

test('no CNI_COMMAND: about text on stderr, nothing on stdout, exit 0', async () => {
  const result = await run({}, '');
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, '');
  assert.equal(
    result.stderr,
    `${ABOUT}\nCNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\n`,
  );
});

test('missing env vars per command → code 4 listing them in table order', async () => {
  const add = await run({ CNI_COMMAND: 'ADD' }, CONF('1.0.0'));
  assert.equal(add.error?.code, 4);
  assert.equal(
    add.error?.msg,
    'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing',
  );
  const del = await run({ CNI_COMMAND: 'DEL' }, CONF('1.0.0'));
  assert.equal(del.error?.msg, 'required env variables [CNI_CONTAINERID,CNI_IFNAME,CNI_PATH] missing');
  const status = await run({ CNI_COMMAND: 'STATUS' }, CONF('1.1.0'));
  assert.equal(status.error?.msg, 'required env variables [CNI_PATH] missing');
  assert.deepEqual(add.handlers.calls, []);
});

test('extra/unknown CNI_* vars are ignored', async () => {
  const result = await run(cniEnv('ADD', { CNI_FOO: 'bar', CNI_ARGS_EXTRA: 'x' }), CONF('1.0.0'));
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, '{"ok":true}');
});

test('unknown command → code 4 (after the config is validated, as skel)', async () => {
  const result = await run(cniEnv('FROB'), CONF('1.0.0'));
  assert.equal(result.error?.code, 4);
  assert.equal(result.error?.msg, 'unknown CNI_COMMAND: FROB');
});

test('invalid container id / interface name → code 4', async () => {
  const id = await run(cniEnv('ADD', { CNI_CONTAINERID: 'bad id!' }), CONF('1.0.0'));
  assert.equal(id.error?.code, 4);
  assert.equal(id.error?.msg, 'invalid characters in containerID');
  const ifname = await run(cniEnv('ADD', { CNI_IFNAME: 'a-very-long-interface' }), CONF('1.0.0'));
  assert.equal(ifname.error?.msg, 'interface name is too long');
  // IFNAMSIZ 16 with the terminating NUL: 15 bytes is the longest name.
  const sixteen = await run(cniEnv('ADD', { CNI_IFNAME: 'x'.repeat(16) }), CONF('1.0.0'));
  assert.equal(sixteen.error?.msg, 'interface name is too long');
  assert.equal((await run(cniEnv('ADD', { CNI_IFNAME: 'x'.repeat(15) }), CONF('1.0.0'))).exitCode, 0);
  const slash = await run(cniEnv('DEL', { CNI_IFNAME: 'eth/0' }), CONF('1.0.0'));
  assert.equal(slash.error?.code, 4);
  // IFNAMSIZ counts bytes: 9 two-byte characters are 18 bytes.
  const wide = await run(cniEnv('ADD', { CNI_IFNAME: 'é'.repeat(9) }), CONF('1.0.0'));
  assert.equal(wide.error?.msg, 'interface name is too long');
  assert.equal((await run(cniEnv('ADD', { CNI_IFNAME: 'é'.repeat(7) }), CONF('1.0.0'))).exitCode, 0);
  // Whitespace as Go's unicode.IsSpace: U+0085 is, U+FEFF is not.
  const nel = await run(cniEnv('ADD', { CNI_IFNAME: 'eth\u00850' }), CONF('1.0.0'));
  assert.equal(nel.error?.msg, 'interface name contains / or : or whitespace characters');
  assert.equal((await run(cniEnv('ADD', { CNI_IFNAME: 'eth\ufeff0' }), CONF('1.0.0'))).exitCode, 0);
  // skel checks the netconf first: with both wrong, the netconf's error (6) is the answer.
  const both = await run(cniEnv('ADD', { CNI_CONTAINERID: 'bad id!' }), 'not json');
  assert.equal(both.error?.code, 6);
});

test('garbage, empty and non-object stdin → code 6; missing name → 7', async () => {
  for (const stdin of ['', 'not json', '{"name":', '[1,2]', '"str"', '{"name": 5}']) {
    const result = await run(cniEnv('ADD'), stdin);
    assert.equal(result.error?.code, 6, stdin);
    // skel's shape: the decoder's reason is part of the message, no details; and the handlers never ran.
    assert.match(result.error?.msg ?? '', /^error unmarshall network config: \S/, JSON.stringify(stdin));
    assert.equal(result.error?.details, undefined);
    assert.deepEqual(result.handlers.calls, []);
    assert.ok(!result.stdout.includes('    at '), 'no stack trace on stdout');
  }
  for (const stdin of ['{}', 'null', '{"name":""}']) {
    const result = await run(cniEnv('ADD'), stdin);
    assert.equal(result.error?.code, 7, stdin);
    assert.equal(result.error?.msg, 'missing network name');
  }
  const badName = await run(cniEnv('ADD'), '{"name":"bad name"}');
  assert.equal(badName.error?.code, 7);
  assert.equal(badName.error?.msg, 'invalid characters found in network name');
});

test('stdin read failure (e.g. too large) → code 5 with the reason', async () => {
  const result = await run(cniEnv('ADD'), new Error('stdin is larger than 4194304 bytes'));
  assert.equal(result.error?.code, 5);
  assert.match(result.error?.msg ?? '', /larger than/);
});

test('huge but valid stdin still works', async () => {
  const result = await run(cniEnv('ADD'), CONF('1.0.0', { padding: 'x'.repeat(2_000_000) }));
  assert.equal(result.exitCode, 0);
});

test('cniVersion: every supported version works; absent means 0.1.0; unknown → code 1', async () => {
  for (const version of ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const result = await run(cniEnv('ADD'), CONF(version));
    assert.equal(result.exitCode, 0, version);
    assert.deepEqual(result.handlers.calls, [`ADD ${version}`]);
  }
  const absent = await run(cniEnv('ADD'), CONF());
  assert.deepEqual(absent.handlers.calls, ['ADD 0.1.0']);
  const unknown = await run(cniEnv('ADD'), CONF('2.0.0'));
  assert.equal(unknown.error?.code, 1);
  assert.equal(unknown.error?.msg, 'incompatible CNI versions');
  assert.equal(
    unknown.error?.details,
    'config is "2.0.0", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]',
  );
  const notString = await run(cniEnv('ADD'), JSON.stringify({ name: 'n', cniVersion: 1 }));
  assert.equal(notString.error?.code, 6);
  // Go decodes the netconf ignoring the keys' case; the last of two spellings wins.
  const recased = await run(cniEnv('ADD'), '{"NAME": "n", "cniversion": "1.0.0", "CNIVersion": "0.4.0"}');
  assert.deepEqual(recased.handlers.calls, ['ADD 0.4.0']);
  const unnamed = await run(cniEnv('ADD'), '{"Name": "", "cniVersion": "1.0.0"}');
  assert.equal(unnamed.error?.code, 7);
  // A null leaves a Go string field as an earlier key set it; Go's fold also maps the Kelvin sign and the long s.
  const nulls = await run(
    cniEnv('ADD'),
    '{"name": "n", "Name": null, "cniVer\u017fion": "0.4.0", "cniversion": null}',
  );
  assert.deepEqual(nulls.handlers.calls, ['ADD 0.4.0']);
});

test('CHECK needs >= 0.4.0; GC and STATUS need >= 1.1.0', async () => {
  assert.equal((await run(cniEnv('CHECK'), CONF('0.3.1'))).error?.msg, 'config version does not allow CHECK');
  assert.equal((await run(cniEnv('CHECK'), CONF('0.4.0'))).exitCode, 0);
  assert.equal((await run(cniEnv('GC'), CONF('1.0.0'))).error?.code, 1);
  assert.equal((await run(cniEnv('GC'), CONF('1.1.0'))).exitCode, 0);
  const status = await run(cniEnv('STATUS'), CONF('1.0.0'));
  assert.equal(status.error?.msg, 'config version does not allow STATUS');
  const ok = await run(cniEnv('STATUS'), CONF('1.1.0'));
  assert.equal(ok.exitCode, 0);
  assert.equal(ok.stdout, '');
  assert.equal((await run(cniEnv('CHECK'), CONF('abc'))).error?.code, 6);
  // Go's ParseVersion takes one to three parts: "1.1" passes the gates and is then not a supported version.
  const twoParts = await run(cniEnv('CHECK'), CONF('1.1'));
  assert.equal(twoParts.error?.code, 1);
  assert.equal(twoParts.error?.msg, 'incompatible CNI versions');
  const fourParts = await run(cniEnv('GC'), CONF('1.1.0.0'));
  assert.equal(fourParts.error?.code, 6);
  assert.equal(fourParts.error?.msg, 'invalid version "1.1.0.0": too many parts');
  assert.equal(
    (await run(cniEnv('CHECK'), CONF('99999999999999999999.0.0'))).error?.msg,
    'failed to convert major version part "99999999999999999999": strconv.Atoi: parsing "99999999999999999999": value out of range',
  );
  assert.equal(
    (await run(cniEnv('STATUS'), CONF('1.x.0'))).error?.msg,
    'failed to convert minor version part "x": strconv.Atoi: parsing "x": invalid syntax',
  );
});

test('DEL prints nothing and is idempotent', async () => {
  const handlers = recordingHandlers();
  for (let index = 0; index < 2; index += 1) {
    const result = await run(cniEnv('DEL', { CNI_NETNS: '' }), CONF('1.0.0'), handlers);
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, '');
  }
  assert.deepEqual(handlers.calls, ['DEL', 'DEL']);
});

test("ADD into the plugin's own netns → code 8 unless CNI_NETNS_OVERRIDE", async () => {
  const own = '/proc/self/ns/net';
  const result = await run(cniEnv('ADD', { CNI_NETNS: own }), CONF('1.0.0'), recordingHandlers(), own);
  assert.equal(result.error?.code, 8);
  assert.deepEqual(result.handlers.calls, []);
  // skel's override: "1" or "true" in any case; anything else keeps the check.
  for (const [value, exitCode] of [
    ['true', 0],
    ['1', 0],
    ['TRUE', 0],
    ['yes', 1],
  ] as const) {
    const override = await run(
      cniEnv('ADD', { CNI_NETNS: own, CNI_NETNS_OVERRIDE: value }),
      CONF('1.0.0'),
      recordingHandlers(),
      own,
    );
    assert.equal(override.exitCode, exitCode, value);
  }
});

test('the own-netns check starts before stdin is read, but netconf errors still win over it', async () => {
  const own = '/proc/self/ns/net';
  const garbage = await run(cniEnv('ADD', { CNI_NETNS: own }), 'not json', recordingHandlers(), own);
  assert.equal(garbage.error?.code, 6);
  const version = await run(cniEnv('ADD', { CNI_NETNS: own }), CONF('9.9.9'), recordingHandlers(), own);
  assert.equal(version.error?.code, 1);
  // CHECK never asks (skel checks ADD and DEL only).
  const check = await run(cniEnv('CHECK', { CNI_NETNS: own }), CONF('1.0.0'), recordingHandlers(), own);
  assert.equal(check.exitCode, 0);
});

test("handler errors: CniError kept, retryable KubeError → 11, AppError → 999, a bug → 999 in upstream's panic wording; 4-space JSON", async () => {
  const cases: [Error, number, string | undefined, string?][] = [
    [new CniError(7, 'bad conf', 'why'), 7, 'why'],
    [new KubeError('pods "x" not found', { status: 404, retryable: true }), 11, 'KUBE_API'],
    [new KubeError('Unauthorized', { status: 401, retryable: false }), 999, 'KUBE_API'],
    [new AppError('ANNOTATION_INVALID', 'annotation value error'), 999, 'ANNOTATION_INVALID'],
    [new TypeError('boom'), 999, undefined, 'istio-cni panicked during cmdAdd: boom'],
  ];
  for (const [error, code, details, msg = error.message] of cases) {
    const result = await run(
      cniEnv('ADD'),
      CONF('1.0.0'),
      recordingHandlers({ add: () => Promise.reject(error) }),
    );
    assert.equal(result.exitCode, 1);
    assert.equal(result.error?.code, code);
    assert.equal(result.error?.msg, msg);
    assert.equal(result.error?.details, details);
    assert.ok(result.stdout.startsWith('{\n    "code": '), result.stdout);
    assert.ok(!result.stdout.includes('at '), 'no stack trace');
  }
});

test('CHECK needs CNI_NETNS like ADD (code 4, before stdin is read); DEL does not', async () => {
  for (const netns of [undefined, '']) {
    const check = await run(cniEnv('CHECK', { CNI_NETNS: netns }), CONF('1.0.0'));
    assert.equal(check.exitCode, 1);
    assert.equal(check.error?.code, 4);
    assert.equal(check.error?.msg, 'required env variables [CNI_NETNS] missing');
    assert.deepEqual(check.handlers.calls, []);
    assert.equal(check.io.stdinReads, 0);
    const add = await run(cniEnv('ADD', { CNI_NETNS: netns }), CONF('1.0.0'));
    assert.equal(add.error?.msg, 'required env variables [CNI_NETNS] missing');
    const del = await run(cniEnv('DEL', { CNI_NETNS: netns }), CONF('1.0.0'));
    assert.equal(del.exitCode, 0);
    assert.deepEqual(del.handlers.calls, ['DEL']);
  }
  assert.deepEqual((await run(cniEnv('CHECK'), CONF('1.0.0'))).handlers.calls, ['CHECK']);
});
