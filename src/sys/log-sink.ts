// UDS log server (behaviour §1.9): HTTP over `<run dir>/log.sock`, POST /log with a JSON array of JSON-encoded
// plugin records. Invalid records are skipped; the response is 200 with an empty body (413 for a body over 1 MiB).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { LOG_SOCKET_FILE, MAX_LOG_BODY_BYTES, MAX_LOG_RECORDS } from '../run-dir.ts';
import { tempPathFor } from './fs.ts';
import { watchDirectory, type DirWatch } from './watch.ts';
import { errorMessage } from '../errors.ts';
import type { RelayedRecord } from '../log/agent-logger.ts';

export interface LogSink {
  readonly path: string;
  close(): Promise<void>;
}

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);
/** A flood of malformed bodies is reported at most this often. */
const MALFORMED_REPORT_EVERY_MS = 10_000;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Pure: body → records to re-emit, plus how many were dropped. */
export function parseLogBody(body: string): {
  records: RelayedRecord[];
  dropped: number;
  malformed: boolean;
} {
  let items: unknown;
  try {
    items = JSON.parse(body);
  } catch {
    return { records: [], dropped: 0, malformed: true };
  }
  if (!Array.isArray(items)) return { records: [], dropped: 0, malformed: true };
  const records: RelayedRecord[] = [];
  let dropped = 0;
  for (const [index, item] of items.entries()) {
    if (index >= MAX_LOG_RECORDS) {
      dropped += items.length - MAX_LOG_RECORDS;
      break;
    }
    let record: unknown;
    try {
      record = typeof item === 'string' ? JSON.parse(item) : undefined;
    } catch {
      record = undefined;
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      dropped++;
      continue;
    }
    const { msg, level, time, ...labels } = record as Record<string, unknown>;
    if (
      typeof msg !== 'string' ||
      typeof level !== 'string' ||
      typeof time !== 'string' ||
      !RFC3339.test(time)
    ) {
      dropped++;
      continue;
    }
    if (!LEVELS.has(level)) {
      dropped++;
      continue;
    }
    records.push({ level: level as RelayedRecord['level'], time, msg: msg.trim(), labels });
  }
  return { records, dropped, malformed: false };
}

export interface LogSinkOptions {
  /** Watches the run dir for the socket's removal (default: inotify, ./watch.ts). The sink awaits what `onChange`
   * returns only in tests, which drive the watch by hand. */
  readonly watchDir?: (
    dir: string,
    onChange: (name: string | undefined) => Promise<void>,
    onError: (error: Error) => void,
  ) => DirWatch;
}

export async function startLogSink(
  runDir: string,
  onRecords: (records: RelayedRecord[]) => void,
  onProblem: (problem: string) => void,
  options: LogSinkOptions = {},
): Promise<LogSink> {
  const socketPath = path.join(runDir, LOG_SOCKET_FILE);
  let lastMalformed = -Infinity;
  const malformed = (problem: string): void => {
    const now = performance.now();
    if (now - lastMalformed < MALFORMED_REPORT_EVERY_MS) return;
    lastMalformed = now;
    onProblem(problem);
  };
  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    if (request.method !== 'POST' || (request.url ?? '').split('?')[0] !== '/log') {
      response.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_LOG_BODY_BYTES) {
        malformed(`log.sock: request body over ${MAX_LOG_BODY_BYTES} bytes; dropped`);
        response.writeHead(413, { connection: 'close' }).end();
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      // Answer first: a client that waits for the answer (the plugin no longer does; it ends once its body is
      // written) must never wait on re-emitting the records, a write to this process's stdout.
      response.writeHead(200).end();
      const parsed = parseLogBody(Buffer.concat(chunks).toString('utf8'));
      if (parsed.malformed) malformed('log.sock: request body is not a JSON array of strings');
      if (parsed.records.length > 0) onRecords(parsed.records);
    });
  };

  /** Listens at log.sock. Bound at a name of its own, then renamed over log.sock: a second agent on the node (a
   * rolling update with maxSurge) takes the path over atomically, and the first one's close, which unlinks the
   * path it bound, cannot remove the second one's socket. */
  async function bind(): Promise<{ server: Server; ino: number; dev: number }> {
    await mkdir(runDir, { recursive: true, mode: 0o750 });
    const boundPath = tempPathFor(socketPath);
    const server = createServer(handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(boundPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    try {
      // Upstream: 0666. The plugin is exec'd by the container runtime, as root: nobody else has anything to post.
      await chmod(boundPath, 0o600);
      await rename(boundPath, socketPath);
      const { ino, dev } = await stat(socketPath);
      return { server, ino, dev };
    } catch (error) {
      await closeServer(server);
      await rm(boundPath, { force: true });
      throw error;
    }
  }

  const servers: Server[] = [];
  let ours = await bind();
  servers.push(ours.server);
  let closing = false;
  let restoring: Promise<void> = Promise.resolve();

  /** A log.sock deleted under the running agent (a cleanup of the run dir, a mistaken `rm`) is bound again: without
   * it, every plugin record goes to the fallback file and the ADD metrics stop until the agent restarts. A socket
   * at the path that is not ours (a newer agent took it over) is left alone. */
  const restoreIfMissing = (): Promise<void> => {
    restoring = restoring.then(async () => {
      if (closing || (await stat(socketPath).catch(() => undefined)) !== undefined) return;
      try {
        const bound = await bind();
        servers.push(bound.server);
        ours = bound;
        if (closing) return;
        onProblem(`log.sock: ${socketPath} was removed; listening there again`);
      } catch (error) {
        onProblem(`log.sock: ${socketPath} was removed and cannot be bound again: ${errorMessage(error)}`);
      }
    });
    return restoring;
  };

  let watch: DirWatch | undefined;
  try {
    watch = (options.watchDir ?? watchDirectory)(
      runDir,
      (name) => (name === LOG_SOCKET_FILE || name === undefined ? restoreIfMissing() : Promise.resolve()),
      (error) =>
        onProblem(`log.sock: watching ${runDir} failed (${error.message}); a removed socket stays removed`),
    );
  } catch (error) {
    onProblem(`log.sock: cannot watch ${runDir} (${errorMessage(error)}); a removed socket stays removed`);
  }

  return {
    path: socketPath,
    async close() {
      closing = true;
      watch?.close();
      await restoring;
      await Promise.all(servers.map(closeServer));
      // Removed only while it is still ours (another agent may have taken the path over meanwhile).
      const current = await stat(socketPath).catch(() => undefined);
      if (current !== undefined && current.ino === ours.ino && current.dev === ours.dev) {
        await rm(socketPath, { force: true });
      }
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
