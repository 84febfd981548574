// The real process as a ProcessIO (src/cni/dispatch.ts) for the bun-compiled plugin: an env snapshot, stdin read
// once with a size limit, ordered writes to stdout/stderr, and the own-netns check skel does for ADD/DEL. Bun's
// native file API, not node:fs: loading node:fs costs the plugin ≈ 2 ms of every invocation (VERSION and DEL
// included), about as much as everything else a VERSION does (measured with the bench's C timer).
import type { ProcessIO } from '../cni/dispatch.ts';

/** Far above any real netconf (a few KiB, prevResult included); stops a runaway writer from exhausting memory. */
export const MAX_STDIN_BYTES = 4 * 1024 * 1024;

/** The parts of Bun's file API used here (no bun type package in this project). */
interface BunFileSink {
  /** Queues the chunk; a Promise while earlier data still waits for the pipe. */
  write(chunk: string): number | Promise<number>;
  /** Writes what is queued; a Promise when the pipe cannot take it all now. */
  flush(): number | Promise<number>;
}
interface BunFile {
  stream(): ReadableStream<Uint8Array>;
  writer(): BunFileSink;
  stat(): Promise<{ readonly ino: number | bigint; readonly dev: number | bigint }>;
  text(): Promise<string>;
}
interface BunFiles {
  readonly stdin: BunFile;
  readonly stdout: BunFile;
  readonly stderr: BunFile;
  file(path: string): BunFile;
}

/** Bun's file API; the plugin only runs as the bun-compiled dist/istio-cni. */
export function bunFiles(): BunFiles {
  const bun = (globalThis as { Bun?: BunFiles }).Bun;
  if (bun === undefined) throw new Error('istio-cni runs as the bun-compiled dist/istio-cni');
  return bun;
}

async function readAll(stream: ReadableStream<Uint8Array>, limit: number): Promise<string> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new Error(`stdin is larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  // ignoreBOM keeps a leading BOM in the text, so JSON.parse rejects it as Go's decoder does.
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
}

async function sameNamespace(files: BunFiles, a: string, b: string): Promise<boolean> {
  try {
    const [left, right] = await Promise.all([files.file(a).stat(), files.file(b).stat()]);
    return left.ino === right.ino && left.dev === right.dev;
  } catch {
    return false;
  }
}

export interface PluginProcessIO extends ProcessIO {
  /** Resolves once everything written to stdout and stderr has reached the pipes (awaited before the end): false
   * when stdout could not take it all (the runtime went away), which must make the exit code non-zero. */
  readonly drained: () => Promise<boolean>;
}

/**
 * Writes go through one sink per stream, so they stay in order; each write is flushed at once (on a pipe with
 * room — the runtime reads stdout, containerd stderr — that is a synchronous write(2)), and a write the pipe
 * cannot take yet is finished before the process ends (`drained`). A write error is never thrown: a stdout that
 * fails (EPIPE: nobody reads the result any more) is one line on stderr and a non-zero exit; stderr is best effort.
 */
export function realProcessIO(): PluginProcessIO {
  const files = bunFiles();
  const env: Record<string, string | undefined> = { ...process.env };
  const pending: Promise<unknown>[] = [];
  const writerOf = (file: BunFile, onError: (error: unknown) => void) => {
    const sink = file.writer();
    return (text: string): void => {
      try {
        for (const result of [sink.write(text), sink.flush()]) {
          if (result instanceof Promise) pending.push(result.catch(onError));
        }
      } catch (error) {
        onError(error);
      }
    };
  };
  const writeStderr = writerOf(files.stderr, () => undefined);
  let stdoutFailed = false;
  const writeStdout = writerOf(files.stdout, (error) => {
    if (!stdoutFailed) writeStderr(`istio-cni: cannot write the result to stdout: ${String(error)}\n`);
    stdoutFailed = true;
  });
  return {
    env: Object.freeze(env),
    readStdin: () => readAll(files.stdin.stream(), MAX_STDIN_BYTES),
    writeStdout,
    writeStderr,
    isOwnNetns: (netnsPath) => sameNamespace(files, '/proc/self/ns/net', netnsPath),
    drained: async () => {
      while (pending.length > 0) await pending.shift();
      return !stdoutFailed;
    },
  };
}

export const systemClock = {
  now: (): number => Date.now(),
  sleep: (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    }),
};
