// The plugin's clients of the agent's unix sockets (behaviour §2.6.3, §2.10): the ambient event's 5 s deadline
// and its 200-only success, and what forwardLogs reports when the agent refuses the records (the caller then
// writes them to the rolling file instead, bin/istio-cni.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { forwardLogs, postCniEvent } from '../../../src/sys/log-forwarder.ts';
import { MAX_LOG_BODY_BYTES, MAX_LOG_RECORDS } from '../../../src/run-dir.ts';
import { startLogSink } from '../../../src/sys/log-sink.ts';
import type { RelayedRecord } from '../../../src/log/agent-logger.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ia-forwarder-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A raw unix-socket server: `onConnection` gets every accepted socket; close() destroys them all. */
async function rawServer(
  name: string,
  onConnection: (socket: Socket) => void,
): Promise<{ socket: string; server: NetServer; close: () => Promise<void> }> {
  const socketPath = path.join(dir, name);
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socket: socketPath,
    server,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function httpServer(name: string, status: number): Promise<{ socket: string; server: HttpServer }> {
  const socket = path.join(dir, name);
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = status;
      res.end(`status ${status}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, server };
}

/** `promise`, or a rejection once the test is aborted (its time limit): a broken client that never settles then
 * still reaches the test's `finally`, which closes the server (a listening server would keep the file running). */
function bounded<T>(signal: AbortSignal, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('the test was aborted while waiting'));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function closeHttp(server: HttpServer): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

test('postCniEvent gives up on an agent that accepts and never answers, after the timeout it was given, and hangs up', async (t) => {
  let accepted: (socket: Socket) => void = () => undefined;
  const connection = new Promise<Socket>((resolve) => (accepted = resolve));
  const silent = await rawServer('silent-short.sock', (socket) => {
    socket.resume(); // reads (and drops) the request, so it sees the end of the connection
    accepted(socket);
  });
  try {
    const started = performance.now();
    await assert.rejects(bounded(t.signal, postCniEvent(silent.socket, '{"PodName":"p"}', 50)), {
      message: 'Post "http://unix/cmdadd": context deadline exceeded (50 ms)',
    });
    assert.ok(performance.now() - started < 4000, 'the given timeout, not the 5 s default');
    // The request is abandoned: the agent sees the connection end.
    const socket = await connection;
    if (!socket.closed) await once(socket, 'close', { signal: t.signal });
  } finally {
    await silent.close();
  }
});

test('postCniEvent waits 5 s by default for a silent agent (upstream client timeout), not less', async (t) => {
  let accepted: () => void = () => undefined;
  const connection = new Promise<void>((resolve) => (accepted = resolve));
  const silent = await rawServer('silent-default.sock', () => accepted());
  t.mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let settled: Error | 'resolved' | undefined;
    const outcome = () => settled;
    void postCniEvent(silent.socket, '{"PodName":"p"}').then(
      () => (settled = 'resolved'),
      (error: Error) => (settled = error),
    );
    // The deadline is armed when the request is made, so before the agent can see the connection.
    await bounded(t.signal, connection);
    t.mock.timers.tick(4999);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(outcome(), undefined, 'still waiting at 4999 ms');
    t.mock.timers.tick(1);
    await new Promise((resolve) => setImmediate(resolve));
    const error = outcome();
    assert.ok(error instanceof Error, `rejected at 5000 ms, got ${String(error)}`);
    assert.equal(error.message, 'Post "http://unix/cmdadd": context deadline exceeded (5000 ms)');
  } finally {
    t.mock.timers.reset();
    await silent.close();
  }
});

test('postCniEvent: only 200 is success; other 2xx answers fail the event like any non-200', async () => {
  for (const status of [201, 204, 299]) {
    const { socket, server } = await httpServer(`event-${status}.sock`, status);
    try {
      const body = status === 204 ? '' : `status ${status}`;
      await assert.rejects(postCniEvent(socket, '{}', 2000), {
        message: `unable to push CNI event (status code ${status}): ${body}`,
      });
    } finally {
      await closeHttp(server);
    }
  }
});

test('forwardLogs: no records, no request (true without connecting, even with no agent)', async () => {
  assert.equal(await forwardLogs(path.join(dir, 'absent.sock'), [], 1000), true);
  let connections = 0;
  const agent = await rawServer('empty.sock', (socket) => {
    connections += 1;
    socket.destroy();
  });
  try {
    assert.equal(await forwardLogs(agent.socket, [], 1000), true);
    // One real forward after it: had the empty one connected, the agent would have counted two.
    await forwardLogs(agent.socket, ['{"msg":"x"}'], 1000);
    assert.equal(connections, 1);
  } finally {
    await agent.close();
  }
});

test('forwardLogs: an agent that answers 413 before taking the whole body → false (the caller falls back to the rolling file)', async () => {
  // An agent that reads the head, refuses at once and stops reading, keeping the connection open: the plugin
  // cannot finish writing a body that does not fit in the socket buffers, so the answer comes first.
  const refusing = await rawServer('refusing.sock', (socket) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n\r\ntoo large');
    };
    socket.on('data', onData);
  });
  try {
    // 768 KiB: within log.sock's 1 MiB, far beyond a unix socket's ~200 KiB of buffer.
    const records = Array.from(
      { length: 12 },
      (_, index) => `{"msg":"${String(index)}${'x'.repeat(65_536)}"}`,
    );
    assert.equal(await forwardLogs(refusing.socket, records, 30_000), false);
  } finally {
    await refusing.close();
  }
});

test('forwardLogs: records log.sock would refuse or cut (a body over 1 MiB, more than 1000 records) → false at once, no request (they go to the rolling file whole)', async () => {
  let connections = 0;
  const agent = await rawServer('limits.sock', (socket) => {
    connections += 1;
    socket.destroy();
  });
  try {
    const record = (size: number) => `{"msg":"${'x'.repeat(size)}"}`;
    // JSON.stringify of the array adds quotes, escapes and commas: the limit is on the body as sent.
    const fitting = [record(MAX_LOG_BODY_BYTES - 18)];
    assert.equal(Buffer.byteLength(JSON.stringify(fitting)), MAX_LOG_BODY_BYTES);
    const tooBig = [record(MAX_LOG_BODY_BYTES - 10)];
    assert.ok(Buffer.byteLength(JSON.stringify(tooBig)) > MAX_LOG_BODY_BYTES);
    assert.equal(await forwardLogs(agent.socket, tooBig, 1000), false);
    assert.equal(
      await forwardLogs(
        agent.socket,
        Array.from({ length: MAX_LOG_RECORDS + 1 }, () => record(1)),
        1000,
      ),
      false,
    );
    assert.equal(connections, 0);
    await forwardLogs(
      agent.socket,
      Array.from({ length: MAX_LOG_RECORDS }, () => record(1)),
      1000,
    );
    await forwardLogs(agent.socket, fitting, 1000);
    assert.equal(connections, 2);
  } finally {
    await agent.close();
  }
});

test('forwardLogs: the 1 MiB limit is on bytes, not characters (multi-byte messages) → false at once, no request', async () => {
  let connections = 0;
  const agent = await rawServer('bytes.sock', (socket) => {
    connections += 1;
    socket.destroy();
  });
  try {
    // 600 000 characters, each two bytes in UTF-8: about 0.6 Mi characters, but 1.2 MB on the wire.
    const records = [`{"msg":"${'é'.repeat(600_000)}"}`];
    assert.ok(JSON.stringify(records).length < MAX_LOG_BODY_BYTES);
    assert.ok(Buffer.byteLength(JSON.stringify(records)) > MAX_LOG_BODY_BYTES);
    assert.equal(await forwardLogs(agent.socket, records, 1000), false);
    assert.equal(connections, 0);
  } finally {
    await agent.close();
  }
});

test('forwardLogs to the agent log.sock: the records arrive with their level, time, message and fields', async () => {
  const runDir = mkdtempSync(path.join(dir, 'run-'));
  let arrived: (records: RelayedRecord[]) => void = () => undefined;
  const records = new Promise<RelayedRecord[]>((resolve) => (arrived = resolve));
  const sink = await startLogSink(
    runDir,
    (batch) => arrived(batch),
    () => undefined,
  );
  try {
    const time = '2026-01-02T03:04:05.678000Z';
    const sent = [
      JSON.stringify({
        level: 'info',
        time,
        scope: 'cni-plugin',
        pod: 'ns/p',
        msg: 'redirect rules programmed',
      }),
      JSON.stringify({ level: 'warn', time, scope: 'cni-plugin', msg: 'é ünïcode' }),
    ];
    assert.equal(await forwardLogs(sink.path, sent, 1000), true);
    assert.deepEqual(await records, [
      { level: 'info', time, msg: 'redirect rules programmed', labels: { scope: 'cni-plugin', pod: 'ns/p' } },
      { level: 'warn', time, msg: 'é ünïcode', labels: { scope: 'cni-plugin' } },
    ]);
  } finally {
    await sink.close();
  }
});
