// ThreadNetns (the compiled plugin's nsenter-free netns switch), under bun: it needs bun's FFI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync, statSync } from 'node:fs';
import { ExecError } from '../../src/errors.ts';
import { ThreadNetns } from '../../src/sys/thread-netns.ts';
import { createPodPair } from '../support/netns.ts';

const threadNetns = () => readlinkSync('/proc/thread-self/ns/net');

test('ThreadNetns: the thread is in the pod netns during the call and back in its own after, also when the call throws', async () => {
  const pair = await createPodPair({ prefix: 'it' });
  try {
    const switcher = await ThreadNetns.open();
    const own = threadNetns();
    assert.equal(
      switcher.run(pair.pod.path, () => threadNetns()),
      `net:[${statSync(pair.pod.path).ino}]`,
    );
    assert.equal(threadNetns(), own);
    assert.throws(
      () =>
        switcher.run(pair.pod.path, () => {
          throw new Error('spawn failed');
        }),
      /spawn failed/,
    );
    assert.equal(threadNetns(), own);
  } finally {
    await pair.destroy();
  }
});

test('ThreadNetns: a missing path or a file that is no netns → ExecError NETNS naming it, the call never runs', async () => {
  const switcher = await ThreadNetns.open();
  const own = threadNetns();
  for (const [path, reason] of [
    ['/var/run/netns/it-gone-000', /no such file/],
    ['/etc/hostname', /invalid argument/],
  ] as const) {
    let ran = false;
    assert.throws(
      () =>
        switcher.run(path, () => {
          ran = true;
        }),
      (error: unknown) =>
        error instanceof ExecError &&
        error.code === 'NETNS' &&
        error.message.includes(path) &&
        reason.test(error.message),
    );
    assert.equal(ran, false);
    assert.equal(threadNetns(), own);
  }
});

test("ThreadNetns: readFiles shows the pod netns's /proc/net; an unreadable file is left out", async () => {
  const pair = await createPodPair({ prefix: 'it' });
  try {
    const files = (await ThreadNetns.open()).readFiles(pair.pod.path, [
      '/proc/thread-self/net/fib_trie',
      '/proc/thread-self/net/it-no-such-file',
    ]);
    assert.deepEqual([...files.keys()], ['/proc/thread-self/net/fib_trie']);
    assert.match(
      files.get('/proc/thread-self/net/fib_trie') ?? '',
      new RegExp(`\\|-- ${pair.pod.ip.replaceAll('.', '\\.')}\\n`),
    );
  } finally {
    await pair.destroy();
  }
});
