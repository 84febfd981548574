// sendOverUnixSocket (the compiled plugin's synchronous log POST), under bun: it needs bun's FFI. Its peers run in
// other processes: the send blocks this process's only JavaScript thread, so a reader here could never read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { linkSync, mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sendOverUnixSocket } from '../../src/sys/unix-send.ts';

/** A reader in a child process: listens on `socket`, says "listening", then (after `delayMs`) reads one
 * connection to its end and prints the byte count and the SHA-256 of what it read. */
function startReader(socket: string, delayMs: number) {
  const child = spawn(
    'python3',
    [
      '-c',
      `import hashlib, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
conn, _ = s.accept()
time.sleep(float(sys.argv[2]) / 1000)
data = b""
while True:
    chunk = conn.recv(1 << 20)
    if not chunk: break
    data += chunk
print(len(data), hashlib.sha256(data).hexdigest(), flush=True)`,
      socket,
      String(delayMs),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  let onLine: () => void = () => undefined;
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
    onLine();
  });
  const nextLine = (index: number) =>
    new Promise<string>((resolve) => {
      const check = () => {
        if (lines.length > index) resolve(lines[index] ?? '');
      };
      onLine = check;
      check();
    });
  return { child, listening: nextLine(0), result: () => nextLine(1) };
}

const received = (bytes: Uint8Array) =>
  `${bytes.byteLength} ${createHash('sha256').update(bytes).digest('hex')}`;

/** Runs `work` with a fresh temp dir, removed after. */
async function inTempDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'us-'));
  try {
    await work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sends `request` to a reader child that starts reading `delayMs` after accepting; returns what the reader got.
 * The child is killed whatever happens, so a failing send leaves no reader waiting in accept. */
function sendToReader(request: Uint8Array, delayMs: number, timeoutMs: number) {
  return inTempDir(async (dir) => {
    const socket = path.join(dir, 'log.sock');
    const reader = startReader(socket, delayMs);
    try {
      await reader.listening;
      assert.equal(await sendOverUnixSocket(socket, request, timeoutMs), 'sent');
      assert.equal(await reader.result(), received(request));
    } finally {
      reader.child.kill();
    }
  });
}

test('sendOverUnixSocket: a request is in the peer socket whole when it returns sent', async () => {
  await sendToReader(new TextEncoder().encode('POST /log HTTP/1.1\r\n\r\n[]'), 0, 1000);
});

test('sendOverUnixSocket: more than the socket buffers hold waits for the reader (poll), then all of it is sent', async () => {
  // The reader starts reading 200 ms after accepting: 4 MiB cannot all be queued before. No two 251-byte stretches
  // alike at a power-of-two offset: a part sent twice or skipped changes the digest.
  await sendToReader(
    Uint8Array.from({ length: 4 * 1024 * 1024 }, (_, index) => index % 251),
    200,
    5000,
  );
});

test('sendOverUnixSocket: a peer that never reads fails the send once the timeout has passed', async () => {
  await inTempDir(async (dir) => {
    // Listening, never reading: connections queue in the kernel while this thread is blocked in the send.
    const server = createServer(() => undefined);
    try {
      const socket = path.join(dir, 'log.sock');
      await new Promise<void>((resolve) => server.listen(socket, resolve));
      const start = performance.now();
      assert.equal(await sendOverUnixSocket(socket, new Uint8Array(8 * 1024 * 1024), 300), 'failed');
      const elapsed = performance.now() - start;
      assert.ok(elapsed >= 290 && elapsed < 2000, `returned after ${elapsed} ms`);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

test('sendOverUnixSocket: no socket file or nobody listening fails at once; a path no sockaddr_un holds is unsupported', async () => {
  await inTempDir(async (dir) => {
    const request = new TextEncoder().encode('POST /log HTTP/1.1\r\n\r\n[]');
    assert.equal(await sendOverUnixSocket(path.join(dir, 'missing.sock'), request, 1000), 'failed');
    // A socket file whose listener is gone (ECONNREFUSED).
    const stale = path.join(dir, 'stale.sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(stale, resolve));
    linkSync(stale, path.join(dir, 'kept.sock'));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    assert.equal(await sendOverUnixSocket(path.join(dir, 'kept.sock'), request, 1000), 'failed');
    assert.equal(await sendOverUnixSocket(`${dir}/${'x'.repeat(120)}.sock`, request, 1000), 'unsupported');
  });
});
