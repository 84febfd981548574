// UDS log server (behaviour §1.9): HTTP over `<run dir>/log.sock`, POST /log with a JSON array of JSON-encoded
// plugin records. Invalid records are skipped; the response is 200 with an empty body (413 for a body over 1 MiB).
import { createServer } from 'node:http';
import { chmod, mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { LOG_SOCKET_FILE } from '../run-dir.ts';
import { tempPathFor } from './fs.ts';
import type { RelayedRecord } from '../log/agent-logger.ts';

export interface LogSink {
  readonly path: string;
  close(): Promise<void>;
}

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);
/** A plugin run posts a handful of records (a few KiB); anything far beyond is not a plugin. Any local process can
 * reach the socket's path, so a body is bounded before it is buffered. */
export const MAX_LOG_BODY_BYTES = 1024 * 1024;
const MAX_RECORDS = 1000;
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
    if (index >= MAX_RECORDS) {
      dropped += items.length - MAX_RECORDS;
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

export async function startLogSink(
  runDir: string,
  onRecords: (records: RelayedRecord[]) => void,
  onMalformed: (error: string) => void,
): Promise<LogSink> {
  const socketPath = path.join(runDir, LOG_SOCKET_FILE);
  let lastMalformed = -Infinity;
  const malformed = (problem: string): void => {
    const now = performance.now();
    if (now - lastMalformed < MALFORMED_REPORT_EVERY_MS) return;
    lastMalformed = now;
    onMalformed(problem);
  };
  await mkdir(runDir, { recursive: true, mode: 0o750 });
  // Bound at a name of its own, then renamed over log.sock: a second agent on the node (a rolling update with
  // maxSurge) takes the path over atomically, and the first one's close, which unlinks the path it bound, cannot
  // remove the second one's socket.
  const boundPath = tempPathFor(socketPath);
  const server = createServer((request, response) => {
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
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(boundPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Upstream: 0666. The plugin is exec'd by the container runtime, as root: nobody else has anything to post.
  await chmod(boundPath, 0o600);
  await rename(boundPath, socketPath);
  const ours = await stat(socketPath);
  return {
    path: socketPath,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      // Removed only while it is still ours (another agent may have taken the path over meanwhile).
      const current = await stat(socketPath).catch(() => undefined);
      if (current !== undefined && current.ino === ours.ino && current.dev === ours.dev) {
        await rm(socketPath, { force: true });
      }
    },
  };
}
