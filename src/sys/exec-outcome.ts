// What a finished child process means for an Exec caller (src/sys/ports.ts), shared by the two real Exec ports:
// SpawnExec (node:child_process, the agent and the tests) and BunSpawnExec (Bun.spawn, the compiled plugin). A
// binary that cannot be started — nsenter itself, or the command nsenter tries to exec (exit 127 "failed to
// execute") — is ExecError BINARY_MISSING naming the binary and its Debian package; a namespace nsenter cannot
// enter is ExecError NETNS, as BunSpawnExec's own switch (thread-netns.ts) reports it.
import { ExecError } from '../errors.ts';
import type { ExecRequest, ExecResult } from './ports.ts';
import { debianPackageFor } from './netns.ts';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The environment every child inherits: this process's PATH and LC_ALL=C (parseable tool output). */
export function baseExecEnv(): Readonly<Record<string, string>> {
  return { PATH: process.env['PATH'] ?? DEFAULT_PATH, LC_ALL: 'C' };
}

export function missingBinary(binary: string, detail: string): ExecError {
  return new ExecError(
    'BINARY_MISSING',
    `required binary "${binary}" is missing on the host (Debian package: ${debianPackageFor(binary)}): ${detail}`,
  );
}

/** The request's timeout as a watchdog: `kill` (SIGKILL the child) once it passes; `fired()` says whether it did. */
export function timeoutWatchdog(
  request: ExecRequest,
  kill: () => void,
): { readonly fired: () => boolean; readonly clear: () => void } {
  let fired = false;
  const timer =
    request.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          fired = true;
          kill();
        }, request.timeoutMs);
  return { fired: () => fired, clear: () => clearTimeout(timer) };
}

export interface FinishedChild {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** The result, or throws the ExecError to reject with. `wrapped`: the argv ran under nsenter. */
export function execOutcome(request: ExecRequest, wrapped: boolean, child: FinishedChild): ExecResult {
  if (child.timedOut) {
    throw new ExecError('EXEC_FAILED', `${request.argv.join(' ')} timed out after ${request.timeoutMs} ms`, {
      stderr: child.stderr,
      timedOut: true,
    });
  }
  // nsenter's own failure to enter the namespace (a pod netns that is gone): the command never ran.
  const unentered =
    wrapped && child.exitCode === 1
      ? /^nsenter: ((?:cannot open|reassociate to namespace) .*)$/m.exec(child.stderr)
      : null;
  if (unentered !== null) {
    const namespaces = [
      request.userns === undefined ? '' : `user namespace ${request.userns}`,
      request.netns === undefined ? '' : `network namespace ${request.netns}`,
    ].filter((text) => text !== '');
    throw new ExecError('NETNS', `cannot enter ${namespaces.join(' and ')}: ${unentered[1]}`, {
      exitCode: 1,
      stderr: child.stderr,
    });
  }
  const notFound =
    wrapped && child.exitCode === 127 ? /failed to execute (\S+): No such file/.exec(child.stderr) : null;
  if (notFound !== null) throw missingBinary(notFound[1] ?? String(request.argv[0]), child.stderr.trim());
  return { exitCode: child.exitCode, stdout: child.stdout, stderr: child.stderr };
}
