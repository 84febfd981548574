// UDS log server (behaviour §1.9): HTTP over `<run dir>/log.sock`, POST /log with a JSON array of JSON-encoded
// plugin records. Invalid records are skipped; the response is always 200 with an empty body.
import { createServer } from 'node:http';
import { chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RelayedRecord } from '../log/agent-logger.ts';

export interface LogSink {
  readonly path: string;
  close(): Promise<void>;
}

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);
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
  for (const item of items) {
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
  const socketPath = path.join(runDir, 'log.sock');
  await mkdir(runDir, { recursive: true, mode: 0o750 });
  await rm(socketPath, { force: true });
  const server = createServer((request, response) => {
    if (request.method !== 'POST' || (request.url ?? '').split('?')[0] !== '/log') {
      response.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      // Answer first: the plugin waits for this answer before its process ends, and the pod's sandbox waits for
      // that; re-emitting the records (a write to this process's stdout) is not the plugin's business.
      response.writeHead(200).end();
      const parsed = parseLogBody(Buffer.concat(chunks).toString('utf8'));
      if (parsed.malformed) onMalformed('log.sock: request body is not a JSON array of strings');
      if (parsed.records.length > 0) onRecords(parsed.records);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(socketPath, 0o666);
  return {
    path: socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
