// SpawnExec (the real Exec port): stdin input, env, exit codes, missing binaries, timeouts, netns wrapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpawnExec } from '../../src/sys/spawn-exec.ts';
import { ExecError } from '../../src/errors.ts';
import { createPodPair } from '../support/netns.ts';

const exec = new SpawnExec();

test('stdin input, stdout, a non-zero exit is a result (not an exception), env reaches the child', async () => {
  assert.deepEqual(await exec.run({ argv: ['cat'], input: 'hello\n' }), {
    exitCode: 0,
    stdout: 'hello\n',
    stderr: '',
  });
  const failed = await exec.run({ argv: ['ls', '/nonexistent-ib'] });
  assert.notEqual(failed.exitCode, 0);
  assert.match(failed.stderr, /nonexistent-ib/);
  const env = await exec.run({ argv: ['env'], env: { IB_MARK: 'x1' } });
  assert.match(env.stdout, /^IB_MARK=x1$/m);
  assert.match(env.stdout, /^LC_ALL=C$/m);
  assert.doesNotMatch(env.stdout, /^NODE_/m);
});

test('missing binary → ExecError BINARY_MISSING naming binary and Debian package, with and without nsenter', async () => {
  const isMissing = (name: string) => (error: unknown) =>
    error instanceof ExecError && error.code === 'BINARY_MISSING' && error.message.includes(`"${name}"`);
  await assert.rejects(exec.run({ argv: ['ib-no-such-binary'] }), isMissing('ib-no-such-binary'));
  await assert.rejects(
    exec.run({ argv: ['iptables-ib-missing-restore'], netns: '/proc/self/ns/net' }),
    (error: unknown) =>
      isMissing('iptables-ib-missing-restore')(error) && /Debian package: iptables/.test(String(error)),
  );
});

test('timeout kills the child and rejects', async () => {
  await assert.rejects(exec.run({ argv: ['sleep', '5'], timeoutMs: 50 }), /timed out after 50 ms/);
});

test('netns wrapping runs the command inside the namespace', async () => {
  const pair = await createPodPair({ prefix: 'ib' });
  try {
    const result = await exec.run({
      argv: ['ip', '-o', 'addr', 'show', 'dev', 'eth0'],
      netns: pair.pod.path,
    });
    assert.equal(result.exitCode, 0);
    assert.match(result.stdout, new RegExp(`inet ${pair.pod.ip.replaceAll('.', '\\.')}/24`));
  } finally {
    await pair.destroy();
  }
});
