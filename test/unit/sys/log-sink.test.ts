// The agent's log.sock (behaviour §1.9): which plugin records are re-emitted, a record that must not crash the
// agent, the run dir's mode, and a removed socket noticed from a watch event without a name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseLogBody, startLogSink, type LogSink, type LogSinkOptions } from '../../../src/sys/log-sink.ts';

const TIME = '2026-01-02T03:04:05.123456Z';

/** The body the plugin posts: a JSON array of JSON-encoded records. */
const bodyOf = (...records: unknown[]): string =>
  JSON.stringify(records.map((record) => JSON.stringify(record)));

function post(socketPath: string, body: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const request = http.request({ socketPath, path: '/log', method: 'POST', agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** Runs `body` against a sink in a fresh run dir, with what it relayed and reported; closes and removes it after. */
async function withSink(
  options: LogSinkOptions,
  body: (sink: LogSink, seen: { received: string[]; problems: string[]; runDir: string }) => Promise<void>,
): Promise<void> {
  const runDir = mkdtempSync(path.join(tmpdir(), 'ic-sink-'));
  const seen = { received: [] as string[], problems: [] as string[], runDir };
  const sink = await startLogSink(
    runDir,
    (records) => seen.received.push(...records.map((record) => record.msg)),
    (problem) => seen.problems.push(problem),
    options,
  );
  try {
    await body(sink, seen);
  } finally {
    await sink.close();
    rmSync(runDir, { recursive: true, force: true });
  }
}

test('log body: an encoded null, array or string is a dropped record, not a crash', () => {
  const parsed = parseLogBody(
    JSON.stringify(['null', '[]', '"text"', '7', JSON.stringify({ level: 'info', time: TIME, msg: 'kept' })]),
  );
  assert.equal(parsed.malformed, false);
  assert.deepEqual(
    parsed.records.map((record) => record.msg),
    ['kept'],
  );
  assert.equal(parsed.dropped, 4);
});

test('log body: a record must be a JSON-encoded string; a bare object in the array is dropped', () => {
  const parsed = parseLogBody(
    JSON.stringify([
      { level: 'info', time: TIME, msg: 'bare object' },
      JSON.stringify({ level: 'info', time: TIME, msg: 'encoded' }),
    ]),
  );
  assert.deepEqual(
    parsed.records.map((record) => record.msg),
    ['encoded'],
  );
  assert.equal(parsed.dropped, 1);
});

test('log body: time must be one RFC 3339 timestamp (a zone offset is one); anything around or short of it is dropped', () => {
  const timeKept = (time: unknown): boolean =>
    parseLogBody(bodyOf({ level: 'info', time, msg: 'm' })).records.length === 1;
  for (const time of [
    '2026-01-02T03:04:05Z',
    TIME,
    '2026-01-02T03:04:05+02:00',
    '2026-01-02T03:04:05.5-05:30',
  ]) {
    assert.equal(timeKept(time), true, time);
  }
  for (const time of [
    `x${TIME}`,
    `${TIME} and more`,
    `${TIME}\n2026-01-02T03:04:05Z`,
    '2026-01-02T03:04:05',
    '2026-01-02T03:04:05.123',
    [TIME],
  ]) {
    assert.equal(timeKept(time), false, JSON.stringify(time));
  }
});

test('log.sock: an encoded null record is dropped and the agent keeps relaying the next requests', async () => {
  await withSink({}, async (sink, { received }) => {
    assert.equal(await post(sink.path, JSON.stringify(['null'])), 200);
    assert.equal(await post(sink.path, bodyOf({ level: 'warn', time: TIME, msg: 'next' })), 200);
    assert.deepEqual(received, ['next']);
  });
});

test('log.sock: a missing run dir is created with mode 0750 (mkdir -p, as upstream)', async () => {
  const base = mkdtempSync(path.join(tmpdir(), 'ic-sink-'));
  const runDir = path.join(base, 'var', 'run', 'istio-cni');
  const previous = process.umask(0o022);
  try {
    const sink = await startLogSink(
      runDir,
      () => undefined,
      () => undefined,
    );
    try {
      assert.equal(statSync(runDir).mode & 0o777, 0o750);
      assert.equal(statSync(path.join(base, 'var')).mode & 0o777, 0o750);
      assert.ok(existsSync(sink.path));
    } finally {
      await sink.close();
    }
  } finally {
    process.umask(previous);
    rmSync(base, { recursive: true, force: true });
  }
});

test('log.sock: a removal reported without a name (the kernel dropped it) is repaired too', async () => {
  let changed: (name: string | undefined) => Promise<void> = () => Promise.resolve();
  const watchDir: LogSinkOptions['watchDir'] = (_dir, onChange) => {
    changed = onChange;
    return { close() {} };
  };
  await withSink({ watchDir }, async (sink, { received, problems }) => {
    // An event for another entry does not matter; the socket is still there.
    await changed('istio-cni.log');
    assert.deepEqual(problems, []);
    rmSync(sink.path);
    await changed(undefined);
    assert.deepEqual(problems, [`log.sock: ${sink.path} was removed; listening there again`]);
    assert.equal(
      await post(sink.path, bodyOf({ level: 'info', time: TIME, msg: 'through the new socket' })),
      200,
    );
    assert.deepEqual(received, ['through the new socket']);
  });
});

test('log.sock: a watch that cannot be set up is reported, and the socket still serves', async () => {
  const watchDir: LogSinkOptions['watchDir'] = () => {
    throw new Error('ENOSPC: no inotify instances left');
  };
  await withSink({ watchDir }, async (sink, { received, problems, runDir }) => {
    assert.deepEqual(problems, [
      `log.sock: cannot watch ${runDir} (ENOSPC: no inotify instances left); a removed socket stays removed`,
    ]);
    assert.equal(await post(sink.path, bodyOf({ level: 'info', time: TIME, msg: 'served' })), 200);
    assert.deepEqual(received, ['served']);
  });
});

test(
  'log.sock: close() ends a request still in progress instead of waiting for its body',
  { timeout: 10_000 },
  async (t) => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'ic-sink-'));
    const sink = await startLogSink(
      runDir,
      () => undefined,
      () => undefined,
    );
    const client = net.createConnection(sink.path);
    client.on('error', () => undefined);
    // Were close() to wait for the request, the time limit ends the connection, so the test still finishes.
    t.signal.addEventListener('abort', () => client.destroy(), { once: true });
    try {
      await once(client, 'connect');
      // Expect: 100-continue makes the agent answer as soon as it has read the head: the request is then in progress.
      client.write(
        'POST /log HTTP/1.1\r\nHost: unix\r\nContent-Type: application/json\r\nContent-Length: 100\r\n' +
          'Expect: 100-continue\r\n\r\n[',
      );
      const [interim] = (await once(client, 'data')) as [Buffer];
      assert.match(interim.toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n/);
      const hungUp = once(client, 'close');
      await sink.close();
      await hungUp;
      assert.equal(existsSync(sink.path), false);
    } finally {
      client.destroy();
      await sink.close();
      rmSync(runDir, { recursive: true, force: true });
    }
  },
);
