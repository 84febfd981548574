// The file-system port the installer uses (implemented by src/sys/fs.ts; tests may use the real one on temp dirs).

export interface FileStat {
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly mode: number;
  readonly size: number;
  readonly ino: number;
  readonly mtimeMs: number;
  /** Hard links to it: 0 only for a directory deleted while it is still a mount point here (a hostPath whose host
   * directory was removed and re-created: this container keeps the old, empty, unwritable one). */
  readonly links: number;
}

/** Whether `now` is still the file `expected` was (same inode, size and mtime): how the conditional writes and
 * removals tell that another writer got in between. */
export function sameFileState(now: FileStat | undefined, expected: FileStat | undefined): boolean {
  return (
    now !== undefined &&
    expected !== undefined &&
    now.ino === expected.ino &&
    now.size === expected.size &&
    now.mtimeMs === expected.mtimeMs
  );
}

export interface DirEntry {
  readonly name: string;
  readonly isDirectory: boolean;
}

export interface AgentFs {
  /** Undefined when the path does not exist. */
  stat(path: string): Promise<FileStat | undefined>;
  /** Undefined when the directory does not exist. */
  readDir(path: string): Promise<DirEntry[] | undefined>;
  readText(path: string): Promise<string>;
  readBytes(path: string): Promise<Uint8Array>;
  /** Returns the written file's stat. Temp `<name>.tmp.<random>` in the same dir, chmod, write, fsync, rename, fsync dir. */
  writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<FileStat>;
  /** writeFileAtomic of a file that must not have changed since it was read (`expected`: its stat then): checked
   * right before the rename; false (nothing written) when it did. POSIX has no compare-and-rename, so a write
   * landing between that check and the rename (microseconds) is the one update this can still lose. */
  replaceIfUnchanged(path: string, data: string, mode: number, expected: FileStat): Promise<boolean>;
  /** Same as writeFileAtomic with the source file's contents and mode (streams; never opens the target). */
  copyFileAtomic(source: string, target: string): Promise<FileStat>;
  /** The path with every symlink in it resolved (the path itself when there is none). */
  realPath(path: string): Promise<string>;
  /** Resolves false when the file did not exist. */
  remove(path: string): Promise<boolean>;
  /** Removes the directory and everything in it; resolves false when it did not exist. */
  removeDir(path: string): Promise<boolean>;
  /** Creates an empty `<target>.tmp.<random>` directory (mode 0755) beside `target`; returns its path. */
  makeStagingDir(target: string): Promise<string>;
  /** Puts the directory `staging` in the place of `target` (a directory, a file or nothing): `target` is renamed
   * aside, `staging` renamed in, the parent fsynced, the old one removed. Readers see the old directory or the new
   * one, never a mix; `target` is missing only between the two renames. */
  replaceDir(staging: string, target: string): Promise<void>;
  /** remove() of a file that must not have changed since it was read (`expected`: its stat then, through any
   * symlink; the link itself is what goes): false (the file left as it is) when it did. True when removed, already
   * gone, or a symlink to nothing. Atomic: a write at any moment is kept. */
  removeIfUnchanged(path: string, expected: FileStat): Promise<boolean>;
  sameContents(a: string, b: string): Promise<boolean>;
}
