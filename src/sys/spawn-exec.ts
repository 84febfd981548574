// The real Exec port for the agent and the tests: node:child_process spawn (argv only, never a shell) with stdin
// input, a minimal env and a timeout. Requests that name a netns/userns are wrapped with nsenter
// (src/sys/netns.ts); the outcome rules (missing binaries, timeouts) are src/sys/exec-outcome.ts. The compiled
// plugin uses BunSpawnExec (src/sys/bun-spawn-exec.ts) instead: node:child_process costs it ≈ 10 ms to load.
import { spawn } from 'node:child_process';
import type { Exec, ExecRequest, ExecResult } from './ports.ts';
import { ExecError } from '../errors.ts';
import { nsenterArgv } from './netns.ts';
import { baseExecEnv, execOutcome, missingBinary, timeoutWatchdog } from './exec-outcome.ts';

export class SpawnExec implements Exec {
  readonly #baseEnv: Readonly<Record<string, string>>;

  /** `baseEnv`: the environment every child inherits (default: PATH of this process + LC_ALL=C). */
  constructor(baseEnv?: Readonly<Record<string, string>>) {
    this.#baseEnv = baseEnv ?? baseExecEnv();
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
      const watchdog = timeoutWatchdog(request, () => child.kill('SIGKILL'));
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.stdin.on('error', () => {
        // EPIPE when the child exits without reading its input: its exit status tells the story.
      });
      child.on('error', (error: NodeJS.ErrnoException) => {
        watchdog.clear();
        if (error.code === 'ENOENT') reject(missingBinary(file, error.message));
        else
          reject(new ExecError('EXEC_FAILED', `failed to start ${file}: ${error.message}`, { cause: error }));
      });
      child.on('close', (code, signal) => {
        watchdog.clear();
        try {
          resolve(
            execOutcome(request, wrapped, {
              exitCode: code ?? 128 + (signal === null ? 0 : 9),
              stdout: Buffer.concat(stdout).toString('utf8'),
              stderr: Buffer.concat(stderr).toString('utf8'),
              timedOut: watchdog.fired(),
            }),
          );
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
      child.stdin.end(request.input ?? '');
    });
  }
}
