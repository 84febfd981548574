// The real file-system port (src/sys/fs.ts) on a temp dir: conditional removal and the contents comparison.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  chmodSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hasConfExtension } from '../../../src/installer/conf-dir.ts';
import { createNodeFs, tempPathFor } from '../../../src/sys/fs.ts';

function inTempDir(body: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ic-fs-'));
    try {
      await body(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const fs = createNodeFs();

/** `<dir>/10-a.conf` holding `{}`, and its stat. */
async function statedConfig(dir: string) {
  const file = path.join(dir, '10-a.conf');
  writeFileSync(file, '{}');
  const seen = await fs.stat(file);
  assert.ok(seen);
  return { file, seen };
}

/** `<dir>/10-a.conf`, a symlink to `<dir>/real.conf`, and its stat through the link. */
async function linkedConfig(dir: string) {
  const target = path.join(dir, 'real.conf');
  const link = path.join(dir, '10-a.conf');
  writeFileSync(target, '{}');
  symlinkSync(target, link);
  const seen = await fs.stat(link);
  assert.ok(seen);
  return { target, link, seen };
}

test(
  'removeIfUnchanged: removes the file as it was stat-ed, twice is still fine',
  inTempDir(async (dir) => {
    const { file, seen } = await statedConfig(dir);
    assert.equal(await fs.removeIfUnchanged(file, seen), true);
    assert.equal(existsSync(file), false);
    assert.equal(await fs.removeIfUnchanged(file, seen), true);
  }),
);

test(
  'removeIfUnchanged: a file rewritten since it was stat-ed stays',
  inTempDir(async (dir) => {
    const { file, seen } = await statedConfig(dir);
    rmSync(file);
    writeFileSync(file, '{"name": "rewritten"}');
    assert.equal(await fs.removeIfUnchanged(file, seen), false);
    assert.equal(readFileSync(file, 'utf8'), '{"name": "rewritten"}');
    assert.deepEqual(readdirSync(dir), ['10-a.conf'], 'nothing left aside');
  }),
);

test(
  'removeIfUnchanged: a symlink whose target is gone names nothing and is removed',
  inTempDir(async (dir) => {
    const { target, link, seen } = await linkedConfig(dir);
    rmSync(target);
    assert.equal(await fs.removeIfUnchanged(link, seen), true);
    assert.deepEqual(readdirSync(dir), []);
  }),
);

test(
  'removeIfUnchanged: through a symlink, the link goes and the file it names stays',
  inTempDir(async (dir) => {
    const { target, link, seen } = await linkedConfig(dir);
    assert.equal(await fs.removeIfUnchanged(link, seen), true);
    assert.throws(() => lstatSync(link), /ENOENT/);
    assert.equal(existsSync(target), true);
  }),
);

test(
  'sameContents: compares chunk by chunk, so a difference past the first chunk and an empty pair are both seen',
  inTempDir(async (dir) => {
    const size = 3 * (1 << 20) + 17; // more than one 1 MiB chunk, and a partial last one
    const original = Buffer.alloc(size, 0x5a);
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    writeFileSync(a, original);
    writeFileSync(b, original);
    assert.equal(await fs.sameContents(a, b), true);
    const changed = Buffer.from(original);
    changed[size - 1] = 0x00; // the last byte of the last, partial chunk
    writeFileSync(b, changed);
    assert.equal(await fs.sameContents(a, b), false);
    changed[size - 1] = 0x5a;
    changed[(1 << 20) + 1] = 0x00; // inside the second chunk
    writeFileSync(b, changed);
    assert.equal(await fs.sameContents(a, b), false);
    writeFileSync(b, original.subarray(0, size - 1));
    assert.equal(await fs.sameContents(a, b), false, 'a different size');
    writeFileSync(a, '');
    writeFileSync(b, '');
    assert.equal(await fs.sameContents(a, b), true, 'two empty files');
    assert.equal(await fs.sameContents(a, path.join(dir, 'missing')), false);
  }),
);

test(
  'writeFileAtomic and copyFileAtomic: a rename that fails (the target is a non-empty directory) leaves no temp file',
  inTempDir(async (dir) => {
    const target = path.join(dir, '10-a.conflist');
    mkdirSync(target);
    writeFileSync(path.join(target, 'inside'), 'x');
    await assert.rejects(fs.writeFileAtomic(target, '{}', 0o644));
    const source = path.join(dir, 'source');
    writeFileSync(source, 'binary');
    await assert.rejects(fs.copyFileAtomic(source, target));
    assert.deepEqual(readdirSync(dir).sort(), ['10-a.conflist', 'source']);
    assert.deepEqual(readdirSync(target), ['inside']);
  }),
);

/** Runs `body` with `process.umask(mask)`, restoring the previous umask after. */
async function withUmask(mask: number, body: () => Promise<void>): Promise<void> {
  const previous = process.umask(mask);
  try {
    await body();
  } finally {
    process.umask(previous);
  }
}

/** Runs `body` with some of node:fs/promises' (or node:crypto's) functions replaced, as src/sys/fs.ts sees them. */
async function withPatched<M extends object>(
  module: M,
  replacements: Partial<M>,
  body: () => Promise<void>,
): Promise<void> {
  const saved = Object.fromEntries(Object.keys(replacements).map((key) => [key, module[key as keyof M]]));
  Object.assign(module, replacements);
  syncBuiltinESMExports();
  try {
    await body();
  } finally {
    Object.assign(module, saved);
    syncBuiltinESMExports();
  }
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

interface HandleEvent {
  readonly op: 'sync' | 'chmod';
  /** What the handle names (/proc/self/fd), and its permission bits when the call was made. */
  readonly path: string;
  readonly mode: number;
  /** The watched file's contents at that moment (undefined: missing or a directory). */
  readonly watched: string | undefined;
}

type HandleMethod = (this: FileHandle, ...args: unknown[]) => Promise<unknown>;

/** Runs `body` with some FileHandle methods wrapped (each wrapper gets the original), restoring them after. */
async function withHandleMethods(
  wrappers: Partial<Record<'sync' | 'chmod' | 'read', (original: HandleMethod) => HandleMethod>>,
  body: () => Promise<void>,
): Promise<void> {
  const probe = await fsp.open(import.meta.filename, 'r');
  const proto = Object.getPrototypeOf(probe) as object;
  await probe.close();
  const saved = new Map<string, PropertyDescriptor>();
  for (const [name, wrap] of Object.entries(wrappers)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name);
    assert.ok(descriptor !== undefined && typeof descriptor.value === 'function', name);
    saved.set(name, descriptor);
    Object.defineProperty(proto, name, { ...descriptor, value: wrap(descriptor.value as HandleMethod) });
  }
  try {
    await body();
  } finally {
    for (const [name, descriptor] of saved) Object.defineProperty(proto, name, descriptor);
  }
}

/** Records every FileHandle sync() and chmod() made during `body`, with what `watched` held at that moment. */
async function recordHandleCalls(watched: string, body: () => Promise<void>): Promise<HandleEvent[]> {
  const events: HandleEvent[] = [];
  const record = async (handle: FileHandle, op: HandleEvent['op']) => {
    let contents: string | undefined;
    try {
      contents = readFileSync(watched, 'utf8');
    } catch {
      contents = undefined;
    }
    const mode = (await handle.stat()).mode & 0o7777;
    events.push({ op, path: readlinkSync(`/proc/self/fd/${handle.fd}`), mode, watched: contents });
  };
  const recorded =
    (op: HandleEvent['op']) =>
    (original: HandleMethod): HandleMethod =>
      async function (this: FileHandle, ...args: unknown[]) {
        await record(this, op);
        return original.apply(this, args);
      };
  await withHandleMethods({ sync: recorded('sync'), chmod: recorded('chmod') }, body);
  return events;
}

test('tempPathFor: beside the target, and never a name a runtime or CNI watcher would load', () => {
  for (const target of ['/n/10-a.conflist', '/n/10-a.conf', '/n/10-a.json', '/r/istio-cni-kubeconfig']) {
    const temp = tempPathFor(target);
    assert.equal(path.dirname(temp), path.dirname(target));
    assert.ok(temp.startsWith(`${target}.tmp.`), temp);
    assert.equal(hasConfExtension(path.basename(temp)), false, temp);
    assert.notEqual(tempPathFor(target), temp, 'random');
  }
});

test(
  'writeFileAtomic: the temp file is fsynced before the rename and the directory after it',
  inTempDir(async (dir) => {
    const target = path.join(dir, '10-a.conflist');
    writeFileSync(target, 'old');
    const events = await recordHandleCalls(target, async () => {
      await fs.writeFileAtomic(target, 'new', 0o644);
    });
    const syncs = events.filter((e) => e.op === 'sync');
    assert.ok(
      syncs.some((e) => e.path.startsWith(`${target}.tmp.`) && e.watched === 'old'),
      `temp file synced while the target was still the old one: ${JSON.stringify(events)}`,
    );
    assert.ok(
      syncs.some((e) => e.path === dir && e.watched === 'new'),
      `directory synced after the rename: ${JSON.stringify(events)}`,
    );
    assert.equal(readFileSync(target, 'utf8'), 'new');
  }),
);

test(
  'copyFileAtomic and replaceIfUnchanged: fsync the file before the rename and the directory after it',
  inTempDir(async (dir) => {
    const target = path.join(dir, 'istio-cni');
    const source = path.join(dir, 'source');
    writeFileSync(source, 'new');
    writeFileSync(target, 'old');
    const copied = await recordHandleCalls(target, async () => {
      await fs.copyFileAtomic(source, target);
    });
    writeFileSync(target, 'old');
    const seen = await fs.stat(target);
    assert.ok(seen);
    const replaced = await recordHandleCalls(target, async () => {
      assert.equal(await fs.replaceIfUnchanged(target, 'new', 0o644, seen), true);
    });
    for (const events of [copied, replaced]) {
      assert.ok(
        events.some((e) => e.op === 'sync' && e.path.startsWith(`${target}.tmp.`) && e.watched === 'old'),
      );
      assert.ok(events.some((e) => e.op === 'sync' && e.path === dir && e.watched === 'new'));
    }
  }),
);

test(
  'replaceDir and removeIfUnchanged: the parent directory is fsynced after the change, nothing left aside',
  inTempDir(async (dir) => {
    const target = path.join(dir, 'runtime');
    mkdirSync(target);
    writeFileSync(path.join(target, 'old'), 'x');
    const staging = await fs.makeStagingDir(target);
    writeFileSync(path.join(staging, 'new'), 'y');
    const replaced = await recordHandleCalls(path.join(target, 'new'), async () => {
      await fs.replaceDir(staging, target);
    });
    assert.ok(replaced.some((e) => e.op === 'sync' && e.path === dir && e.watched === 'y'));
    assert.deepEqual(readdirSync(dir), ['runtime'], 'the old directory is gone, nothing left aside');
    assert.deepEqual(readdirSync(target), ['new']);
    const { file, seen } = await statedConfig(dir);
    const removed = await recordHandleCalls(file, async () => {
      assert.equal(await fs.removeIfUnchanged(file, seen), true);
    });
    assert.ok(removed.some((e) => e.op === 'sync' && e.path === dir && e.watched === undefined));
  }),
);

test(
  'writeFileAtomic and replaceIfUnchanged: a 0600 file is never readable by others, not even before its chmod',
  inTempDir(async (dir) => {
    const target = path.join(dir, 'istio-cni-kubeconfig');
    const written = await recordHandleCalls(target, async () => {
      await fs.writeFileAtomic(target, 'token: secret', 0o600);
    });
    const seen = await fs.stat(target);
    assert.ok(seen);
    const replaced = await recordHandleCalls(target, async () => {
      assert.equal(await fs.replaceIfUnchanged(target, 'token: other', 0o600, seen), true);
    });
    for (const events of [written, replaced]) {
      const chmods = events.filter((e) => e.op === 'chmod');
      assert.ok(chmods.length > 0);
      for (const e of chmods) assert.equal(e.mode & 0o077, 0, `mode before chmod: ${e.mode.toString(8)}`);
    }
    assert.equal(statSync(target).mode & 0o7777, 0o600);
  }),
);

test(
  'writeFileAtomic and copyFileAtomic: the mode is exactly the one asked for (the source’s), whatever the umask, special bits too',
  inTempDir(async (dir) =>
    withUmask(0o077, async () => {
      const conflist = path.join(dir, '10-a.conflist');
      const written = await fs.writeFileAtomic(conflist, '{}', 0o664);
      assert.equal(statSync(conflist).mode & 0o7777, 0o664);
      assert.equal(written.mode, 0o664);
      const source = path.join(dir, 'source');
      writeFileSync(source, 'binary');
      chmodSync(source, 0o4755);
      const target = path.join(dir, 'istio-cni');
      const copied = await fs.copyFileAtomic(source, target);
      assert.equal(statSync(target).mode & 0o7777, 0o4755);
      assert.equal(copied.mode, 0o4755);
      assert.equal((await fs.stat(target))?.mode, 0o4755);
    }),
  ),
);

test(
  'copyFileAtomic: a symlinked source is copied with the mode of the file it names',
  inTempDir(async (dir) => {
    const real = path.join(dir, 'real');
    writeFileSync(real, 'binary');
    chmodSync(real, 0o750);
    const source = path.join(dir, 'source');
    symlinkSync(real, source);
    const target = path.join(dir, 'istio-cni');
    await fs.copyFileAtomic(source, target);
    assert.equal(statSync(target).mode & 0o7777, 0o750);
    assert.equal(lstatSync(target).isFile(), true);
  }),
);

test(
  'writeFileAtomic and copyFileAtomic: the temp file is created exclusively, never written through something already at its name',
  inTempDir(async (dir) => {
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'untouched');
    const target = path.join(dir, '10-a.conflist');
    const source = path.join(dir, 'source');
    writeFileSync(source, 'binary');
    const fixed = Buffer.alloc(6, 0xab);
    await withPatched(crypto, { randomBytes: () => Buffer.from(fixed) }, async () => {
      const temp = tempPathFor(target);
      symlinkSync(victim, temp);
      await assert.rejects(fs.writeFileAtomic(target, '{}', 0o644), { code: 'EEXIST' });
      symlinkSync(victim, temp);
      await assert.rejects(fs.copyFileAtomic(source, target), { code: 'EEXIST' });
    });
    assert.equal(readFileSync(victim, 'utf8'), 'untouched');
    assert.equal(existsSync(target), false);
  }),
);

test(
  'replaceIfUnchanged: a file changed since it was stat-ed is left as it is, and no temp file stays',
  inTempDir(async (dir) => {
    const { file, seen } = await statedConfig(dir);
    rmSync(file);
    writeFileSync(file, '{"name": "rewritten"}');
    assert.equal(await fs.replaceIfUnchanged(file, '{"name": "ours"}', 0o644, seen), false);
    assert.equal(readFileSync(file, 'utf8'), '{"name": "rewritten"}');
    assert.deepEqual(readdirSync(dir), ['10-a.conf']);
  }),
);

test(
  'removeIfUnchanged: on a file system without hard links, a file rewritten since it was stat-ed is moved back',
  inTempDir(async (dir) => {
    const { file, seen } = await statedConfig(dir);
    rmSync(file);
    writeFileSync(file, '{"name": "rewritten"}');
    await withPatched(fsp, { link: () => Promise.reject(errno('EPERM')) }, async () => {
      assert.equal(await fs.removeIfUnchanged(file, seen), false);
    });
    assert.equal(readFileSync(file, 'utf8'), '{"name": "rewritten"}');
    assert.deepEqual(readdirSync(dir), ['10-a.conf']);
  }),
);

test(
  'removeIfUnchanged: a symlink into a loop cannot be stat-ed: an error, and the link is put back',
  inTempDir(async (dir) => {
    const file = path.join(dir, '10-a.conf');
    symlinkSync('loop-b', path.join(dir, 'loop-a'));
    symlinkSync('loop-a', path.join(dir, 'loop-b'));
    symlinkSync('loop-a', file);
    await assert.rejects(
      fs.removeIfUnchanged(file, {
        isFile: true,
        isDirectory: false,
        mode: 0o644,
        size: 2,
        ino: 1,
        mtimeMs: 1,
        links: 1,
      }),
      { code: 'ELOOP' },
    );
    assert.equal(readlinkSync(file), 'loop-a');
    assert.deepEqual(readdirSync(dir).sort(), ['10-a.conf', 'loop-a', 'loop-b']);
  }),
);

test(
  'stat and readDir: a path under a regular file (ENOTDIR) does not exist',
  inTempDir(async (dir) => {
    const file = path.join(dir, 'net');
    writeFileSync(file, 'not a directory');
    assert.equal(await fs.stat(path.join(file, '10-a.conf')), undefined);
    assert.equal(await fs.readDir(file), undefined);
    assert.equal(await fs.readDir(path.join(dir, 'missing')), undefined);
  }),
);

test(
  'stat: reports the kind, inode, size and hard-link count',
  inTempDir(async (dir) => {
    const { file } = await statedConfig(dir);
    assert.equal((await fs.stat(file))?.size, 2);
    assert.equal((await fs.stat(file))?.ino, statSync(file).ino);
    assert.deepEqual(
      [
        (await fs.stat(file))?.isFile,
        (await fs.stat(file))?.isDirectory,
        (await fs.stat(dir))?.isFile,
        (await fs.stat(dir))?.isDirectory,
      ],
      [true, false, false, true],
    );
    assert.equal((await fs.stat(file))?.links, 1);
    linkSync(file, path.join(dir, 'other'));
    assert.equal((await fs.stat(file))?.links, 2);
  }),
);

test(
  'sameContents: a file that only begins with the other one is not the same',
  inTempDir(async (dir) => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    writeFileSync(a, 'plugin');
    writeFileSync(b, 'plugin and more');
    assert.equal(await fs.sameContents(a, b), false);
    assert.equal(await fs.sameContents(b, a), false);
  }),
);

test(
  'remove and removeDir: false for what is not there, true for what was removed',
  inTempDir(async (dir) => {
    const file = path.join(dir, 'istio-cni');
    assert.equal(await fs.remove(file), false);
    writeFileSync(file, 'x');
    assert.equal(await fs.remove(file), true);
    assert.equal(existsSync(file), false);
    const sub = path.join(dir, 'runtime');
    assert.equal(await fs.removeDir(sub), false);
    mkdirSync(sub);
    writeFileSync(path.join(sub, 'inside'), 'x');
    assert.equal(await fs.removeDir(sub), true);
    assert.equal(existsSync(sub), false);
  }),
);

test(
  'remove on a read-only mount (EROFS): a name that is not there is not a failure, one that is there is',
  inTempDir(async (dir) => {
    const file = path.join(dir, 'istio-cni');
    await withPatched(fsp, { unlink: () => Promise.reject(errno('EROFS')) }, async () => {
      assert.equal(await fs.remove(file), false);
      writeFileSync(file, 'x');
      await assert.rejects(fs.remove(file), { code: 'EROFS' });
    });
    assert.equal(existsSync(file), true);
  }),
);

test(
  'replaceDir: when the staging directory cannot be moved in, the old directory is put back',
  inTempDir(async (dir) => {
    const target = path.join(dir, 'runtime');
    mkdirSync(target);
    writeFileSync(path.join(target, 'old'), 'x');
    await assert.rejects(fs.replaceDir(path.join(dir, 'missing-staging'), target), { code: 'ENOENT' });
    assert.deepEqual(readdirSync(dir), ['runtime']);
    assert.deepEqual(readdirSync(target), ['old']);
  }),
);

test(
  'replaceDir: an error moving the old directory aside (other than not found) stops it, nothing replaced',
  inTempDir(async (dir) => {
    const target = path.join(dir, 'runtime');
    mkdirSync(target);
    const staging = await fs.makeStagingDir(target);
    writeFileSync(path.join(staging, 'new'), 'y');
    const { rename } = fsp;
    const failAside: typeof fsp.rename = (from, to) =>
      from === target ? Promise.reject(errno('EBUSY')) : rename(from, to);
    await withPatched(fsp, { rename: failAside }, async () => {
      await assert.rejects(fs.replaceDir(staging, target), { code: 'EBUSY' });
    });
    assert.deepEqual(readdirSync(target), []);
    assert.deepEqual(readdirSync(staging), ['new']);
  }),
);

test(
  'sameContents: a file that shrinks while it is being compared is not the same',
  inTempDir(async (dir) => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    writeFileSync(a, Buffer.alloc(4096));
    writeFileSync(b, Buffer.alloc(4096));
    let shrunk = false;
    const shrinkFirst = (original: HandleMethod): HandleMethod =>
      async function (this: FileHandle, ...args: unknown[]) {
        if (!shrunk) {
          shrunk = true;
          truncateSync(b, 0); // after both sizes were taken, before any byte is read
        }
        return original.apply(this, args);
      };
    await withHandleMethods({ read: shrinkFirst }, async () => {
      assert.equal(await fs.sameContents(a, b), false);
    });
    assert.equal(shrunk, true);
  }),
);

test(
  'readDir: tells directories from files (a directory named like a config is not one)',
  inTempDir(async (dir) => {
    mkdirSync(path.join(dir, '05-dir.conf'));
    writeFileSync(path.join(dir, '10-a.conf'), '{}');
    const entries = await fs.readDir(dir);
    assert.deepEqual(
      entries?.sort((a, b) => a.name.localeCompare(b.name)),
      [
        { name: '05-dir.conf', isDirectory: true },
        { name: '10-a.conf', isDirectory: false },
      ],
    );
  }),
);

test(
  'readText: a config is read as UTF-8',
  inTempDir(async (dir) => {
    const file = path.join(dir, '10-a.conflist');
    const text = '{"name":"réseau-✓","plugins":[{"type":"bridge"}]}';
    writeFileSync(file, text);
    assert.equal(await fs.readText(file), text);
  }),
);

test(
  'makeStagingDir: a new, empty 0755 `<target>.tmp.<random>` directory each time, even after one was left behind',
  inTempDir(async (dir) => {
    const target = path.join(dir, 'runtime');
    const first = await fs.makeStagingDir(target);
    const second = await fs.makeStagingDir(target);
    assert.notEqual(first, second);
    for (const staging of [first, second]) {
      assert.ok(staging.startsWith(`${target}.tmp.`), staging);
      assert.equal(statSync(staging).mode & 0o7777, 0o755);
      assert.deepEqual(readdirSync(staging), []);
    }
  }),
);

test(
  'realPath: every symlink in the path is resolved',
  inTempDir(async (dir) => {
    const real = path.join(dir, 'real.conflist');
    writeFileSync(real, '{}');
    const link = path.join(dir, '10-a.conflist');
    symlinkSync('real.conflist', link);
    assert.equal(await fs.realPath(link), await fs.realPath(real));
    assert.equal(path.basename(await fs.realPath(link)), 'real.conflist');
  }),
);
