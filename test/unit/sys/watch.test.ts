// watchDirectory over a real fs.watch on a temp dir. The events the kernel hardly ever gives (a dying watch, an
// event without a name) are emitted on the real FSWatcher it created, caught by wrapping node:fs's watch.
import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { watchDirectory } from '../../../src/sys/watch.ts';
import type { DirWatch } from '../../../src/sys/watch.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'ia-watch-'));
after(() => rmSync(root, { recursive: true, force: true }));

const realWatch = fs.watch;
/** Closes every captured watcher, uncounted: a failed test leaves no watch keeping the file running. */
const closeCaptured: (() => void)[] = [];
afterEach(() => {
  fs.watch = realWatch;
  syncBuiltinESMExports();
  for (const close of closeCaptured.splice(0)) close();
});

/** Makes node:fs's watch (as src/sys/watch.ts imports it) hand out the real watchers it creates, with their
 * close() calls counted. */
function captureWatchers(): { watcher: () => FSWatcher; closes: () => number } {
  let created: FSWatcher | undefined;
  let closes = 0;
  fs.watch = ((...args: Parameters<typeof realWatch>) => {
    const watcher = realWatch(...args);
    const close = watcher.close.bind(watcher);
    closeCaptured.push(close);
    watcher.close = () => {
      closes += 1;
      close();
    };
    created = watcher;
    return watcher;
  }) as typeof fs.watch;
  syncBuiltinESMExports();
  return {
    watcher: () => {
      assert.ok(created, 'watchDirectory created a watcher through node:fs');
      return created;
    },
    closes: () => closes,
  };
}

test('a change in the directory is reported with the entry name', async (t) => {
  const dir = mkdtempSync(path.join(root, 'change-'));
  let changed: (name: string | undefined) => void = () => undefined;
  const name = new Promise<string | undefined>((resolve) => (changed = resolve));
  const watch = watchDirectory(dir, (entry) => changed(entry), assert.fail);
  try {
    writeFileSync(path.join(dir, '10-calico.conflist'), '{}');
    const aborted = new Promise<never>((_, reject) =>
      t.signal.addEventListener('abort', () => reject(new Error('no event before the test was aborted'))),
    );
    assert.equal(await Promise.race([name, aborted]), '10-calico.conflist');
  } finally {
    watch.close();
  }
});

test('an event without a file name is reported as undefined, not as "null"', () => {
  const dir = mkdtempSync(path.join(root, 'noname-'));
  const capture = captureWatchers();
  const names: (string | undefined)[] = [];
  const watch = watchDirectory(dir, (name) => names.push(name), assert.fail);
  try {
    capture.watcher().emit('change', 'rename', null);
    capture.watcher().emit('change', 'change', Buffer.from('a-buffer-name'));
    assert.deepEqual(names, [undefined, 'a-buffer-name']);
  } finally {
    watch.close();
  }
});

test('a dying watch is reported once, and the watcher is closed once, however many errors follow', () => {
  const dir = mkdtempSync(path.join(root, 'error-'));
  const capture = captureWatchers();
  const errors: Error[] = [];
  let watch: DirWatch | undefined;
  try {
    watch = watchDirectory(dir, assert.fail, (error) => errors.push(error));
    const first = Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), {
      code: 'ENOSPC',
    });
    capture.watcher().emit('error', first);
    capture.watcher().emit('error', new Error('a second error'));
    assert.deepEqual(errors, [first]);
    assert.equal(capture.closes(), 1);
    // Closing it afterwards (the caller's shutdown) does not close it again.
    watch.close();
    assert.equal(capture.closes(), 1);
  } finally {
    watch?.close();
  }
});

test('after close(), an error from the watcher is not reported', () => {
  const dir = mkdtempSync(path.join(root, 'closed-'));
  const capture = captureWatchers();
  const errors: Error[] = [];
  const watch = watchDirectory(dir, assert.fail, (error) => errors.push(error));
  watch.close();
  watch.close();
  assert.equal(capture.closes(), 1);
  capture.watcher().emit('error', new Error('late'));
  assert.deepEqual(errors, []);
  assert.equal(capture.closes(), 1);
});
