// The real process as a ProcessIO (src/cni/dispatch.ts): an env snapshot, stdin read once with a size limit,
// synchronous writes to fd 1/2 (stdout is a pipe to the runtime: a synchronous write cannot be lost when the
// process ends), and the own-netns check skel does for ADD/DEL.
import { existsSync, readSync, statSync, writeSync } from 'node:fs';
import type { ProcessIO } from '../cni/dispatch.ts';

/** Far above any real netconf (a few KiB, prevResult included); stops a runaway writer from exhausting memory. */
export const MAX_STDIN_BYTES = 4 * 1024 * 1024;

function readAllStdin(limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  const buffer = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let count: number;
    try {
      count = readSync(0, buffer, 0, buffer.length, null);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EOF') break;
      if (code === 'EAGAIN') return readStdinStream(chunks, total, limit);
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (count === 0) break;
    total += count;
    if (total > limit) return Promise.reject(new Error(`stdin is larger than ${limit} bytes`));
    chunks.push(Buffer.from(buffer.subarray(0, count)));
  }
  return Promise.resolve(Buffer.concat(chunks).toString('utf8'));
}

/** Non-blocking stdin (EAGAIN): finish reading through the stream API. */
function readStdinStream(chunks: Buffer[], already: number, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let total = already;
    process.stdin.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        process.stdin.destroy();
        reject(new Error(`stdin is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function writeFully(fd: number, text: string): void {
  const data = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
  }
}

function sameNamespace(a: string, b: string): boolean {
  try {
    const left = statSync(a);
    const right = statSync(b);
    return left.ino === right.ino && left.dev === right.dev;
  } catch {
    return false;
  }
}

export function realProcessIO(): ProcessIO {
  const env: Record<string, string | undefined> = { ...process.env };
  return {
    env: Object.freeze(env),
    readStdin: () => readAllStdin(MAX_STDIN_BYTES),
    writeStdout: (text) => writeFully(1, text),
    writeStderr: (text) => {
      try {
        writeFully(2, text);
      } catch {
        // stderr closed: logs are best effort
      }
    },
    isOwnNetns: (netnsPath) => Promise.resolve(sameNamespace('/proc/self/ns/net', netnsPath)),
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

/** Whether a file exists right now (the agent's log socket is checked once, when logging is configured). */
export function pathExists(target: string): boolean {
  try {
    return existsSync(target);
  } catch {
    return false;
  }
}
