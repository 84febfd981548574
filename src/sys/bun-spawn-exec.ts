// The Exec port of the compiled plugin: Bun.spawn (argv only, never a shell), same contract and outcome rules as
// SpawnExec (src/sys/exec-outcome.ts). Loading node:child_process costs a bun process ≈ 10 ms (its streams and
// sockets), Bun.spawn ≈ 0.5 ms — measured with empty executables that each spawn /bin/true. A command for a pod
// netns is spawned from inside it (thread-netns.ts) rather than through nsenter: one exec less per command.
import type { Exec, ExecRequest, ExecResult } from './ports.ts';
import { ExecError } from '../errors.ts';
import { nsenterArgv } from './netns.ts';
import { threadNetns } from './thread-netns.ts';
import { baseExecEnv, execOutcome, missingBinary, timeoutWatchdog } from './exec-outcome.ts';

/** The part of Bun's process API used here (no bun type package in this project). */
interface BunSubprocess {
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /** Resolves with the exit code, 128 + the signal number after a signal. */
  readonly exited: Promise<number>;
  kill(signal: string): void;
}
interface BunProcesses {
  spawn(
    argv: string[],
    options: {
      env: Record<string, string>;
      stdin: Uint8Array;
      stdout: 'pipe';
      stderr: 'pipe';
    },
  ): BunSubprocess;
  readableStreamToText(stream: ReadableStream<Uint8Array>): Promise<string>;
}

export class BunSpawnExec implements Exec {
  readonly #bun: BunProcesses;
  readonly #baseEnv: Readonly<Record<string, string>>;

  constructor(baseEnv?: Readonly<Record<string, string>>) {
    const bun = (globalThis as { Bun?: BunProcesses }).Bun;
    if (bun === undefined) throw new Error('BunSpawnExec needs the bun runtime');
    this.#bun = bun;
    this.#baseEnv = baseEnv ?? baseExecEnv();
  }

  async run(request: ExecRequest): Promise<ExecResult> {
    // A netns alone is entered by this thread around the spawn (thread-netns.ts); a user namespace needs nsenter.
    const netns = request.userns === undefined ? request.netns : undefined;
    const switcher = netns === undefined ? undefined : await threadNetns();
    const argv =
      switcher === undefined
        ? nsenterArgv(request.argv, { netns: request.netns, userns: request.userns })
        : [...request.argv];
    const file = argv[0];
    if (file === undefined) throw new ExecError('EXEC_FAILED', 'empty argv');
    const spawn = (): BunSubprocess => {
      try {
        return this.#bun.spawn(argv, {
          env: { ...this.#baseEnv, ...request.env },
          // Bun writes it in the background; a child that exits without reading it is told by its exit status.
          stdin: new TextEncoder().encode(request.input ?? ''),
          stdout: 'pipe',
          stderr: 'pipe',
        });
      } catch (error) {
        const { code, message } = error as { code?: unknown; message?: unknown };
        if (code === 'ENOENT') throw missingBinary(file, String(message));
        throw new ExecError('EXEC_FAILED', `failed to start ${file}: ${String(message)}`, { cause: error });
      }
    };
    const child = switcher !== undefined && netns !== undefined ? switcher.run(netns, spawn) : spawn();
    const watchdog = timeoutWatchdog(request, () => child.kill('SIGKILL'));
    try {
      const [stdout, stderr, exitCode] = await Promise.all([
        this.#bun.readableStreamToText(child.stdout),
        this.#bun.readableStreamToText(child.stderr),
        child.exited,
      ]);
      return execOutcome(request, argv.length !== request.argv.length, {
        exitCode,
        stdout,
        stderr,
        timedOut: watchdog.fired(),
      });
    } finally {
      watchdog.clear();
    }
  }
}
