// Host file-system adapter (style-anchors §D2): atomic writes and copies for files other processes read
// (kubelet/containerd read net.d; the runtime execs the plugin binary).
import { constants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { copyFile, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { AgentFs, DirEntry, FileStat } from '../installer/fs-port.ts';

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
  };
}

/** Returns the written file's stat (taken before the rename, so it describes our file even if another process
 * replaces the target right after). */
async function writeVia(
  target: string,
  mode: number,
  fill: (fd: FileHandle) => Promise<void>,
): Promise<FileStat> {
  const temp = tempPathFor(target);
  let written: FileStat;
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode & 0o7777);
  try {
    try {
      await handle.chmod(mode & 0o7777);
      await fill(handle);
      await handle.sync();
      written = toStat(await handle.stat());
    } finally {
      await handle.close();
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
    async stat(file: string): Promise<FileStat | undefined> {
      try {
        return toStat(await stat(file));
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
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
    async writeFileAtomic(target, data, mode) {
      return writeVia(target, mode, async (handle) => {
        await handle.writeFile(data);
      });
    },
    async copyFileAtomic(source, target) {
      // Kernel-side copy (copy_file_range) into the temp file, then the same chmod/fsync/rename as writes; the
      // target itself is never opened, so a running binary is never written to (ETXTBSY).
      const info = await stat(source);
      const temp = tempPathFor(target);
      let written: FileStat;
      try {
        await copyFile(source, temp, constants.COPYFILE_EXCL);
        const handle = await open(temp, constants.O_RDWR);
        try {
          await handle.chmod(info.mode & 0o7777);
          await handle.sync();
          written = toStat(await handle.stat());
        } finally {
          await handle.close();
        }
        await rename(temp, target);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      await fsyncDir(path.dirname(target));
      return written;
    },
    async remove(file) {
      try {
        await unlink(file);
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    },
    async sameContents(a, b) {
      try {
        const [sa, sb] = await Promise.all([stat(a), stat(b)]);
        if (sa.size !== sb.size) return false;
        const [da, db] = await Promise.all([readFile(a), readFile(b)]);
        return da.equals(db);
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    },
  };
}
