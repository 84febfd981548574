// The Exec port's contract (src/sys/ports.ts), run against both real implementations: SpawnExec under Node
// (test/integration/rules-exec.test.ts) and BunSpawnExec under bun (test/bun/, `bun test`, the runtime the compiled
// plugin uses). stdin input, env, exit codes, missing binaries, timeouts, netns wrapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { readlink, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExecError } from '../../src/errors.ts';
import type { Exec } from '../../src/sys/ports.ts';
import { createPodPair } from './netns.ts';

export function execContract(name: string, exec: () => Exec): void {
  test(`${name}: stdin input, stdout, a non-zero exit is a result (not an exception), env reaches the child`, async () => {
    assert.deepEqual(await exec().run({ argv: ['cat'], input: 'hello\n' }), {
      exitCode: 0,
      stdout: 'hello\n',
      stderr: '',
    });
    const failed = await exec().run({ argv: ['ls', '/nonexistent-ib'] });
    assert.notEqual(failed.exitCode, 0);
    assert.match(failed.stderr, /nonexistent-ib/);
    const env = await exec().run({ argv: ['env'], env: { IB_MARK: 'x1' } });
    assert.match(env.stdout, /^IB_MARK=x1$/m);
    assert.match(env.stdout, /^LC_ALL=C$/m);
    assert.doesNotMatch(env.stdout, /^NODE_/m);
  });

  test(`${name}: missing binary → ExecError BINARY_MISSING naming binary and Debian package, with and without nsenter`, async () => {
    const isMissing = (binary: string) => (error: unknown) =>
      error instanceof ExecError && error.code === 'BINARY_MISSING' && error.message.includes(`"${binary}"`);
    await assert.rejects(exec().run({ argv: ['ib-no-such-binary'] }), isMissing('ib-no-such-binary'));
    await assert.rejects(
      exec().run({ argv: ['iptables-ib-missing-restore'], netns: '/proc/self/ns/net' }),
      (error: unknown) =>
        isMissing('iptables-ib-missing-restore')(error) && /Debian package: iptables/.test(String(error)),
    );
  });

  test(`${name}: an input larger than a pipe reaches the child whole; a child that ignores it is not an error`, async () => {
    const input = 'x'.repeat(3 * 1024 * 1024);
    assert.deepEqual(await exec().run({ argv: ['wc', '-c'], input }), {
      exitCode: 0,
      stdout: `${input.length}\n`,
      stderr: '',
    });
    assert.equal((await exec().run({ argv: ['true'], input })).exitCode, 0);
  });

  test(`${name}: timeout kills the child and rejects`, async () => {
    const pidFile = path.join(tmpdir(), `exec-contract-${process.pid}-${name.replace(/\W/g, '')}.pid`);
    try {
      await assert.rejects(
        exec().run({ argv: ['sh', '-c', `echo $$ > ${pidFile}; exec sleep 5`], timeoutMs: 200 }),
        // timedOut: the child ran and may have done part of its work (apply.ts then reads what it committed).
        (error: unknown) =>
          error instanceof ExecError && error.timedOut && /timed out after 200 ms/.test(error.message),
      );
      const pid = Number(readFileSync(pidFile, 'utf8'));
      assert.ok(pid > 0);
      // Killed and reaped by the time the run rejects.
      assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    } finally {
      rmSync(pidFile, { force: true });
    }
  });

  test(`${name}: a netns that cannot be entered → ExecError NETNS naming it; the command does not run`, async () => {
    for (const netns of ['/var/run/netns/ib-gone-000', '/etc/hostname']) {
      await assert.rejects(
        exec().run({ argv: ['touch', '/tmp/ib-must-not-exist'], netns }),
        (error: unknown) =>
          error instanceof ExecError && error.code === 'NETNS' && error.message.includes(netns),
      );
    }
    await assert.rejects(stat('/tmp/ib-must-not-exist'), { code: 'ENOENT' });
  });

  test(`${name}: each command runs in its own request's netns, concurrent ones too; none leaks into the next`, async () => {
    const pairs = await Promise.all([createPodPair({ prefix: 'ib' }), createPodPair({ prefix: 'ib' })]);
    try {
      const own = await readlink('/proc/self/ns/net');
      const wanted: { netns: string | undefined; inode: string }[] = [
        ...pairs.map((pair) => ({
          netns: pair.pod.path,
          inode: `net:[${statSync(pair.pod.path).ino}]`,
        })),
        { netns: undefined, inode: own },
      ];
      const seen = await Promise.all(
        [...wanted, ...wanted].map(({ netns }) =>
          exec().run({ argv: ['readlink', '/proc/self/ns/net'], ...(netns === undefined ? {} : { netns }) }),
        ),
      );
      assert.deepEqual(
        seen.map((result) => result.stdout.trim()),
        [...wanted, ...wanted].map(({ inode }) => inode),
      );
      assert.equal(await readlink('/proc/self/ns/net'), own);
    } finally {
      await Promise.all(pairs.map((pair) => pair.destroy()));
    }
  });

  test(`${name}: netns wrapping runs the command inside the namespace`, async () => {
    const pair = await createPodPair({ prefix: 'ib' });
    try {
      const result = await exec().run({
        argv: ['ip', '-o', 'addr', 'show', 'dev', 'eth0'],
        netns: pair.pod.path,
      });
      assert.equal(result.exitCode, 0);
      assert.match(result.stdout, new RegExp(`inet ${pair.pod.ip.replaceAll('.', '\\.')}/24`));
    } finally {
      await pair.destroy();
    }
  });
}
