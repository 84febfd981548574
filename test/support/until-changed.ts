// Waiting on the file system without polling: re-check a condition on every change fs.watch reports in a directory.

import { watch } from 'node:fs';

/** Resolves once `check()` holds, re-checking on every change in `dir`; rejects after `timeoutMs` naming `what`. */
export function untilChangedIn(
  dir: string,
  what: string,
  check: () => boolean,
  timeoutMs = 15_000,
): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const watcher = watch(dir, () => {
      if (check()) finish();
    });
    const timer = setTimeout(
      () => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
    function finish(error?: Error): void {
      clearTimeout(timer);
      watcher.close();
      if (error === undefined) resolve();
      else reject(error);
    }
    // A change between the first check and the watch starting is not missed.
    if (check()) finish();
  });
}
