// Directory watches over inotify via node:fs.watch (not chokidar): we need raw, unfiltered, low-latency events
// for a handful of directories (net.d, bin dirs, the SA dir), and watching the *directory* survives atomic
// replaces of the files in it (rename over a watched file would drop a file watch). chokidar 6 is itself built
// on fs.watch and would add stat polling, an awaitWriteFinish delay and ~2 MB of start-up for nothing here.
import { watch, type FSWatcher } from 'node:fs';

export interface DirWatch {
  close(): void;
}

/** Watches one existing directory. `onChange` gets the entry name (or undefined when the kernel gave none);
 * `onError` is called once if the watch dies (e.g. inotify limits): the caller must treat it as fatal. Throws
 * when the watch cannot be created (ENOENT, ENOSPC, EMFILE). */
export function watchDirectory(
  dir: string,
  onChange: (name: string | undefined) => void,
  onError: (error: Error) => void,
): DirWatch {
  const watcher: FSWatcher = watch(dir, { persistent: true }, (_event, name) => {
    onChange(name === null ? undefined : String(name));
  });
  let closed = false;
  watcher.on('error', (error: Error) => {
    if (closed) return;
    closed = true;
    watcher.close();
    onError(error);
  });
  return {
    close() {
      if (closed) return;
      closed = true;
      watcher.close();
    },
  };
}
