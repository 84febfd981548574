// The real Exec port: node:child_process spawn (argv only, never a shell) with stdin input, a minimal env and a
// timeout. Requests that name a netns/userns are wrapped with nsenter (src/sys/netns.ts). A binary that cannot
// be started — nsenter itself, or the command nsenter tries to exec (exit 127 "failed to execute") — rejects
// with ExecError BINARY_MISSING naming the binary and its Debian package.
import { spawn } from 'node:child_process';
import type { Exec, ExecRequest, ExecResult } from './ports.ts';
import { ExecError } from '../errors.ts';
import { debianPackageFor, nsenterArgv } from './netns.ts';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function missing(binary: string, detail: string): ExecError {
  return new ExecError(
    'BINARY_MISSING',
    `required binary "${binary}" is missing on the host (Debian package: ${debianPackageFor(binary)}): ${detail}`,
  );
}

export class SpawnExec implements Exec {
  readonly #baseEnv: Readonly<Record<string, string>>;

  /** `baseEnv`: the environment every child inherits (default: PATH of this process + LC_ALL=C). */
  constructor(baseEnv?: Readonly<Record<string, string>>) {
    this.#baseEnv = baseEnv ?? { PATH: process.env['PATH'] ?? DEFAULT_PATH, LC_ALL: 'C' };
  }

  run(request: ExecRequest): Promise<ExecResult> {
    const argv = nsenterArgv(request.argv, { netns: request.netns, userns: request.userns });
    const [file, ...args] = argv;
    if (file === undefined) return Promise.reject(new ExecError('EXEC_FAILED', 'empty argv'));
    const wrapped = argv.length !== request.argv.length;
    return new Promise<ExecResult>((resolve, reject) => {
      const child = spawn(file, args, {
        env: { ...this.#baseEnv, ...request.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timedOut = false;
      const timer =
        request.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              child.kill('SIGKILL');
            }, request.timeoutMs);
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.stdin.on('error', () => {
        // EPIPE when the child exits without reading its input: its exit status tells the story.
      });
      child.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (error.code === 'ENOENT') reject(missing(file, error.message));
        else
          reject(new ExecError('EXEC_FAILED', `failed to start ${file}: ${error.message}`, { cause: error }));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const err = Buffer.concat(stderr).toString('utf8');
        if (timedOut) {
          reject(
            new ExecError(
              'EXEC_FAILED',
              `${request.argv.join(' ')} timed out after ${request.timeoutMs} ms`,
              {
                stderr: err,
              },
            ),
          );
          return;
        }
        const exitCode = code ?? 128 + (signal === null ? 0 : 9);
        const notFound =
          wrapped && exitCode === 127 ? /failed to execute (\S+): No such file/.exec(err) : null;
        if (notFound !== null) {
          reject(missing(notFound[1] ?? String(request.argv[0]), err.trim()));
          return;
        }
        resolve({ exitCode, stdout: Buffer.concat(stdout).toString('utf8'), stderr: err });
      });
      child.stdin.end(request.input ?? '');
    });
  }
}
