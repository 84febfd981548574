// The real file-system port (src/sys/fs.ts) on a temp dir: conditional removal and the contents comparison.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createNodeFs } from '../../../src/sys/fs.ts';

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
