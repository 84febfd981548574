// Host file-system adapter (style-anchors §D2): atomic writes and copies for files other processes read
// (kubelet/containerd read net.d; the runtime execs the plugin binary).
import { constants, type Stats } from 'node:fs';
import {
  type FileHandle,
  copyFile,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { AgentFs, DirEntry, FileStat } from '../installer/fs-port.ts';
import { sameFileState } from '../installer/fs-port.ts';

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** `<name>.tmp.<random>`: never a .conf/.conflist/.json suffix, so no runtime or CNI watcher loads it. */
export function tempPathFor(target: string): string {
  return `${target}.tmp.${randomBytes(6).toString('hex')}`;
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function toStat(info: Stats): FileStat {
  return {
    isFile: info.isFile(),
    isDirectory: info.isDirectory(),
    mode: info.mode & 0o7777,
    size: info.size,
    ino: info.ino,
    mtimeMs: info.mtimeMs,
    links: info.nlink,
  };
}

/** How much of each file `sameBytes` holds at a time. */
const COMPARE_CHUNK_BYTES = 1 << 20;

/** Whether two files hold the same bytes, read a chunk at a time: the plugin is ≈ 110 MB, and reading both whole
 * took a bun process from 38 to 247 MiB peak (measured) at every agent start that finds the plugin installed (after
 * a crash or an OOM kill, which run no cleanup): enough for a memory limit to kill each start again. */
async function sameBytes(a: string, b: string): Promise<boolean> {
  const fa = await open(a, 'r');
  try {
    const fb = await open(b, 'r');
    try {
      const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
      if (sa.size !== sb.size) return false;
      const ba = Buffer.alloc(Math.min(COMPARE_CHUNK_BYTES, sa.size));
      const bb = Buffer.alloc(ba.length);
      for (let offset = 0; offset < sa.size; offset += ba.length) {
        const length = Math.min(ba.length, sa.size - offset);
        const [ra, rb] = await Promise.all([readAt(fa, ba, length, offset), readAt(fb, bb, length, offset)]);
        if (!ra || !rb || !ba.subarray(0, length).equals(bb.subarray(0, length))) return false;
      }
      return true;
    } finally {
      await fb.close();
    }
  } finally {
    await fa.close();
  }
}

/** Reads exactly `length` bytes at `offset`; false when the file ends first (it shrank meanwhile: not the same). */
async function readAt(file: FileHandle, into: Buffer, length: number, offset: number): Promise<boolean> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(into, done, length - done, offset + done);
    if (bytesRead === 0) return false;
    done += bytesRead;
  }
  return true;
}

/** The file's stat through any symlink; undefined when it does not exist. */
async function currentStat(file: string): Promise<FileStat | undefined> {
  try {
    return toStat(await stat(file));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Puts a file taken aside back at `file`, unless its owner has written `file` again meanwhile (theirs is newer). */
async function restore(aside: string, file: string): Promise<void> {
  try {
    await link(aside, file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    // EEXIST: a newer write is in place. Anything else (a file system without hard links): move it back.
    if (code !== 'EEXIST') await rename(aside, file);
    else await unlink(aside);
    return;
  }
  await unlink(aside);
}

/**
 * Atomic replace: `createTemp` fills a new `<target>.tmp.<random>` (created exclusively, never the target
 * itself, so a running binary is never written to — ETXTBSY), then chmod, fsync, rename over the target, fsync
 * the directory. Returns the written file's stat, taken before the rename, so it describes our file even if
 * another process replaces the target right after. The temp file never survives a failure.
 */
async function replaceAtomically(
  target: string,
  mode: number,
  createTemp: (temp: string) => Promise<void>,
): Promise<FileStat>;
async function replaceAtomically(
  target: string,
  mode: number,
  createTemp: (temp: string) => Promise<void>,
  stillCurrent: () => Promise<boolean>,
): Promise<FileStat | undefined>;
/** With `stillCurrent`: asked right before the rename; false drops the temp file and resolves undefined. */
async function replaceAtomically(
  target: string,
  mode: number,
  createTemp: (temp: string) => Promise<void>,
  stillCurrent?: () => Promise<boolean>,
): Promise<FileStat | undefined> {
  const temp = tempPathFor(target);
  let written: FileStat;
  try {
    await createTemp(temp);
    const handle = await open(temp, constants.O_RDWR);
    try {
      await handle.chmod(mode & 0o7777);
      await handle.sync();
      written = toStat(await handle.stat());
    } finally {
      await handle.close();
    }
    if (stillCurrent !== undefined && !(await stillCurrent())) {
      await rm(temp, { force: true });
      return undefined;
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDir(path.dirname(target));
  return written;
}

export function createNodeFs(): AgentFs {
  return {
    stat: currentStat,
    async readDir(dir: string): Promise<DirEntry[] | undefined> {
      try {
        const entries = await readdir(dir, { withFileTypes: true });
        return entries.map((entry) => ({ name: entry.name, isDirectory: entry.isDirectory() }));
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    readText: (file) => readFile(file, 'utf8'),
    async readBytes(file) {
      return new Uint8Array(await readFile(file));
    },
    writeFileAtomic(target, data, mode) {
      // Created with the final mode (minus umask) so a token is never readable by others, not even briefly.
      return replaceAtomically(target, mode, (temp) =>
        writeFile(temp, data, { flag: 'wx', mode: mode & 0o7777 }),
      );
    },
    async replaceIfUnchanged(target, data, mode, expected) {
      const written = await replaceAtomically(
        target,
        mode,
        (temp) => writeFile(temp, data, { flag: 'wx', mode: mode & 0o7777 }),
        async () => sameFileState(await currentStat(target), expected),
      );
      return written !== undefined;
    },
    async copyFileAtomic(source, target) {
      // Kernel-side copy (copy_file_range): the 100 MiB plugin never passes through the agent's heap.
      const info = await stat(source);
      return replaceAtomically(target, info.mode, (temp) => copyFile(source, temp, constants.COPYFILE_EXCL));
    },
    realPath: (file) => realpath(file),
    async remove(file) {
      try {
        await unlink(file);
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        // A read-only mount answers EROFS even for a name that is not there: nothing to remove is not a failure.
        const there = await lstat(file).then(
          () => true,
          (statError: unknown) => !isNotFound(statError),
        );
        if (!there) return false;
        throw error;
      }
    },
    async removeDir(dir) {
      if ((await currentStat(dir)) === undefined) return false;
      await rm(dir, { recursive: true, force: true });
      return true;
    },
    async makeStagingDir(target) {
      const staging = tempPathFor(target);
      await mkdir(staging, { mode: 0o755 });
      return staging;
    },
    async replaceDir(staging, target) {
      let aside: string | undefined = tempPathFor(target);
      try {
        await rename(target, aside);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        aside = undefined;
      }
      try {
        await rename(staging, target);
      } catch (error) {
        if (aside !== undefined) await rename(aside, target).catch(() => undefined);
        throw error;
      }
      await fsyncDir(path.dirname(target));
      if (aside !== undefined) await rm(aside, { recursive: true, force: true });
    },
    async removeIfUnchanged(file, expected) {
      // Take whatever is at the path aside in one atomic rename, then look at what was taken: an owner's write
      // landing after the rename makes a new file at the path and is never touched. A symlink is moved as the
      // link; one whose target is gone names nothing and is removed.
      const aside = tempPathFor(file);
      try {
        await rename(file, aside);
      } catch (error) {
        if (isNotFound(error)) return true;
        throw error;
      }
      const taken = await currentStat(aside).catch(async (error: unknown) => {
        await restore(aside, file);
        throw error;
      });
      if (taken === undefined || sameFileState(taken, expected)) {
        await unlink(aside);
        await fsyncDir(path.dirname(file));
        return true;
      }
      await restore(aside, file);
      return false;
    },
    async sameContents(a, b) {
      try {
        return await sameBytes(a, b);
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    },
  };
}
