// A deadline for a wait that has none of its own (a child's exit, a server's close): past it the wait rejects
// naming what never happened, so a regression that hangs fails its test at once instead of holding the runner
// until its own limit with processes still running.

/** Resolves as `promise` does; rejects once `timeoutMs` has passed without it settling, after `onTimeout` (kill what
 * hangs there). `what` is read at the deadline, so it can report the state then (a child's stderr). */
export function within<T>(
  promise: Promise<T>,
  timeoutMs: number,
  what: string | (() => string),
  onTimeout: () => void = () => undefined,
): Promise<T> {
  let bound: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    bound = setTimeout(() => {
      onTimeout();
      reject(new Error(`${typeof what === 'string' ? what : what()} did not happen within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(bound));
}
