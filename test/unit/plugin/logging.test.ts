// Plugin logging: Istio-shaped records, level control, and the best-effort log.sock / pluginevent.sock clients
// (field-lessons item 51: log plumbing must never fail or stall an ADD).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createPluginLogging, istioTime } from '../../../src/log/plugin-logger.ts';
import { forwardLogs, postCniEvent } from '../../../src/sys/log-forwarder.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ia-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function unixServer(
  name: string,
  handler: (req: IncomingMessage, body: string, res: ServerResponse) => void,
): Promise<{ socket: string; server: Server }> {
  const socket = path.join(dir, name);
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, server };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

test('records are Istio-shaped JSON with microsecond UTC time', () => {
  const lines: string[] = [];
  const logging = createPluginLogging(
    (line) => lines.push(line),
    () => new Date('2026-01-02T03:04:05.678Z'),
  );
  logging.logger.child({ pod: 'ns/p' }).info('hello');
  assert.deepEqual(JSON.parse(lines[0] ?? ''), {
    level: 'info',
    time: '2026-01-02T03:04:05.678000Z',
    scope: 'cni-plugin',
    pod: 'ns/p',
    msg: 'hello',
  });
  assert.equal(istioTime(new Date(0)), '1970-01-01T00:00:00.000000Z');
});

test('plugin_log_level: debug shows debug; none silences; only emitted records are kept', () => {
  const lines: string[] = [];
  const logging = createPluginLogging((line) => lines.push(line));
  logging.logger.debug('hidden');
  logging.setLevel('debug');
  logging.keepRecords();
  logging.logger.debug('shown');
  logging.setLevel('none');
  logging.logger.error('silenced');
  assert.deepEqual(
    lines.map((line) => (JSON.parse(line) as { msg: string }).msg),
    ['shown'],
  );
  assert.equal(logging.takeRecords().length, 1);
  assert.deepEqual(logging.takeRecords(), []);
});

test('forwardLogs POSTs a JSON array of encoded records to /log', async () => {
  let received: (request: string) => void = () => undefined;
  const request = new Promise<string>((resolve) => (received = resolve));
  const { socket, server } = await unixServer('log.sock', (req, body, res) => {
    received(`${req.method ?? ''} ${req.url ?? ''} ${body}`);
    res.end();
  });
  try {
    assert.equal(await forwardLogs(socket, ['{"msg":"a"}', '{"msg":"b"}'], 1000), true);
    assert.equal(await request, 'POST /log ["{\\"msg\\":\\"a\\"}","{\\"msg\\":\\"b\\"}"]');
  } finally {
    await close(server);
  }
});

test('forwardLogs never fails; false when no agent listens (no socket, or a stale one); never waits for an answer', async () => {
  assert.equal(await forwardLogs(path.join(dir, 'missing.sock'), ['{}'], 1000), false);
  // An agent that died leaves its socket file behind: nobody accepts (ECONNREFUSED).
  const { socket: live, server: gone } = await unixServer('live.sock', () => undefined);
  const stale = path.join(dir, 'stale.sock');
  linkSync(live, stale);
  await close(gone);
  assert.equal(await forwardLogs(stale, ['{}'], 1000), false);

  // An agent that takes the request but never answers: the records are written, and that is all the plugin waits
  // for (were it to wait for the answer, this would only end after the 60 s timeout, with false).
  let received: (body: string) => void = () => undefined;
  const body = new Promise<string>((resolve) => (received = resolve));
  const { socket, server } = await unixServer('hung.sock', (_req, text) => received(text));
  try {
    assert.equal(await forwardLogs(socket, ['{"msg":"kept"}'], 60_000), true);
    assert.equal(await body, '["{\\"msg\\":\\"kept\\"}"]');
  } finally {
    await close(server);
  }
});

test('postCniEvent: 200 resolves; non-200 rejects with upstream text; missing socket rejects', async () => {
  let status = 200;
  const bodies: string[] = [];
  const { socket, server } = await unixServer('pluginevent.sock', (req, body, res) => {
    bodies.push(`${req.url ?? ''} ${req.headers['content-type'] ?? ''} ${body}`);
    res.statusCode = status;
    res.end(status === 200 ? '' : 'agent says no');
  });
  try {
    await postCniEvent(socket, '{"PodName":"p"}');
    assert.deepEqual(bodies, ['/cmdadd application/json {"PodName":"p"}']);
    status = 500;
    await assert.rejects(postCniEvent(socket, '{}'), {
      message: 'unable to push CNI event (status code 500): agent says no',
    });
  } finally {
    await close(server);
  }
  await assert.rejects(postCniEvent(path.join(dir, 'nope.sock'), '{}'), /ENOENT/);
});

test('keepRecords: only records emitted after it are kept, each exactly as written minus its newline, in order', () => {
  const lines: string[] = [];
  const logging = createPluginLogging(
    (line) => lines.push(line),
    () => new Date('2026-01-02T03:04:05.678Z'),
  );
  logging.logger.info('before');
  logging.logger.error('also before');
  assert.deepEqual(logging.takeRecords(), [], 'nothing is kept until asked');
  logging.keepRecords();
  logging.logger.child({ pod: 'ns/p' }).info('first');
  logging.logger.warn('second');
  const kept = logging.takeRecords();
  assert.deepEqual(kept, [
    '{"level":"info","time":"2026-01-02T03:04:05.678000Z","scope":"cni-plugin","pod":"ns/p","msg":"first"}',
    '{"level":"warn","time":"2026-01-02T03:04:05.678000Z","scope":"cni-plugin","msg":"second"}',
  ]);
  // Every record still goes to stderr while it is kept, the same text with its newline.
  assert.equal(lines.length, 4);
  assert.deepEqual(
    lines.slice(2),
    kept.map((record) => `${record}\n`),
  );
});

test('keepRecords stays on after takeRecords: later records are kept for the next take, none twice', () => {
  const logging = createPluginLogging(() => undefined);
  logging.keepRecords();
  logging.keepRecords(); // a second call changes nothing
  logging.logger.info('one');
  const msgs = (records: string[]) => records.map((record) => (JSON.parse(record) as { msg: string }).msg);
  assert.deepEqual(msgs(logging.takeRecords()), ['one']);
  logging.logger.info('two');
  logging.logger.error('three');
  assert.deepEqual(msgs(logging.takeRecords()), ['two', 'three']);
  assert.deepEqual(logging.takeRecords(), []);
});

test('plugin_log_level: each level lets through itself and what is more severe; none lets nothing through', () => {
  const lines: string[] = [];
  const logging = createPluginLogging((line) => lines.push(line));
  const emitted = (level: 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'none') => {
    lines.length = 0;
    logging.setLevel(level);
    logging.logger.debug('debug');
    logging.logger.info('info');
    logging.logger.warn('warn');
    logging.logger.error('error');
    logging.logger.fatal('fatal');
    return lines.map((line) => (JSON.parse(line) as { level: string }).level);
  };
  assert.deepEqual(emitted('debug'), ['debug', 'info', 'warn', 'error', 'fatal']);
  assert.deepEqual(emitted('info'), ['info', 'warn', 'error', 'fatal']);
  assert.deepEqual(emitted('warn'), ['warn', 'error', 'fatal']);
  assert.deepEqual(emitted('error'), ['error', 'fatal']);
  assert.deepEqual(emitted('fatal'), ['fatal']);
  assert.deepEqual(emitted('none'), []);
});
