// The agent's sinks (src/sys/log-sink.ts record parsing, src/sys/metrics.ts exposition); kept beside the installer
// tests because they are the agent's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addOutcomeOf } from '../../../src/log/agent-logger.ts';
import { parseLogBody, startLogSink } from '../../../src/sys/log-sink.ts';
import { MAX_LOG_BODY_BYTES } from '../../../src/run-dir.ts';
import http from 'node:http';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PrometheusMetrics } from '../../../src/sys/metrics.ts';
import { createAgentLogging } from '../../../src/log/agent-logger.ts';

test('log body: valid records kept (msg trimmed, labels kept), invalid ones dropped, non-array is malformed', () => {
  const time = '2026-01-02T03:04:05.123456Z';
  const body = JSON.stringify([
    JSON.stringify({ level: 'info', time, msg: ' hello \n', pod: 'a' }),
    JSON.stringify({ level: 'trace', time, msg: 'dropped level' }),
    JSON.stringify({ level: 'info', time: 'yesterday', msg: 'bad time' }),
    JSON.stringify({ level: 'info', time }),
    'not json',
    42,
  ]);
  const parsed = parseLogBody(body);
  assert.equal(parsed.malformed, false);
  assert.deepEqual(parsed.records, [{ level: 'info', time, msg: 'hello', labels: { pod: 'a' } }]);
  assert.equal(parsed.dropped, 5);
  assert.equal(parseLogBody('{}').malformed, true);
  assert.equal(parseLogBody('[').malformed, true);
});

test('relay keeps the plugin timestamp, applies the cni-plugin level, redacts tokens in agent logs', () => {
  const lines: string[] = [];
  const { logger, relay } = createAgentLogging({
    level: 'info',
    pluginLevel: 'warn',
    json: true,
    write: (l) => lines.push(l),
  });
  relay([
    { level: 'info', time: '2026-01-01T00:00:00Z', msg: 'below plugin level', labels: {} },
    { level: 'error', time: '2026-01-01T00:00:00Z', msg: 'kept', labels: { pod: 'p' } },
  ]);
  logger.info({ token: 'secret', nested: { token: 'secret2' } }, 'agent');
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(records.length, 2);
  assert.deepEqual(records[0], {
    pod: 'p',
    level: 'error',
    time: '2026-01-01T00:00:00Z',
    scope: 'cni-plugin',
    msg: 'kept',
  });
  assert.equal(records[1]?.['scope'], 'cni-agent');
  assert.doesNotMatch(lines[1] ?? '', /secret/);
});

test('text log format: time, level, scope, msg, then key=value', () => {
  const lines: string[] = [];
  const { logger } = createAgentLogging({ level: 'info', json: false, write: (l) => lines.push(l) });
  logger.info({ file: '/a b' }, 'wrote');
  assert.match(lines[0] ?? '', /^\S+Z\tinfo\tcni-agent\twrote\tfile="\/a b"\n$/);
});

test('another scope (the repair controller) has exactly one scope key, its own level, and redaction', () => {
  const lines: string[] = [];
  const { scoped } = createAgentLogging({ level: 'error', json: true, write: (l) => lines.push(l) });
  const repair = scoped('repair', 'info');
  repair.debug('below the level');
  repair.warn({ token: 'secret' }, 'repairing pod');
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.match(/"scope":/g)?.length, 1);
  assert.equal((JSON.parse(lines[0] ?? '') as Record<string, unknown>)['scope'], 'repair');
  assert.doesNotMatch(lines[0] ?? '', /secret/);
});

test('Prometheus text exposition', () => {
  const metrics = new PrometheusMetrics([0.1, 1]);
  metrics.increment('istio_cni_installs_total', 'installs', { result: 'SUCCESS' });
  metrics.increment('istio_cni_installs_total', 'installs', { result: 'SUCCESS' });
  metrics.setGauge('istio_cni_install_ready', 'ready', 1);
  metrics.observe('istio_cni_reinstall_duration_seconds', 'latency', 0.05);
  assert.equal(
    metrics.render(),
    [
      '# HELP istio_cni_install_ready ready',
      '# TYPE istio_cni_install_ready gauge',
      'istio_cni_install_ready 1',
      '# HELP istio_cni_installs_total installs',
      '# TYPE istio_cni_installs_total counter',
      'istio_cni_installs_total{result="SUCCESS"} 2',
      '# HELP istio_cni_reinstall_duration_seconds latency',
      '# TYPE istio_cni_reinstall_duration_seconds histogram',
      'istio_cni_reinstall_duration_seconds_bucket{le="0.1"} 1',
      'istio_cni_reinstall_duration_seconds_bucket{le="1"} 1',
      'istio_cni_reinstall_duration_seconds_bucket{le="+Inf"} 1',
      'istio_cni_reinstall_duration_seconds_sum 0.05',
      'istio_cni_reinstall_duration_seconds_count 1',
      '',
    ].join('\n'),
  );
});

test('Prometheus text: label values and help escaped, labels sorted, an observation on a bound counted in it, infinities spelled', () => {
  const metrics = new PrometheusMetrics([0.1, 1]);
  metrics.increment('m_total', 'line one\nback\\slash', { z: 'a"b', a: 'x\\y\nz' });
  metrics.setGauge('m_gauge', 'g', Infinity);
  metrics.setGauge('m_gauge', 'g', -Infinity, { side: 'low' });
  metrics.observe('m_seconds', 'h', 1);
  assert.equal(
    metrics.render(),
    [
      '# HELP m_gauge g',
      '# TYPE m_gauge gauge',
      'm_gauge +Inf',
      'm_gauge{side="low"} -Inf',
      '# HELP m_seconds h',
      '# TYPE m_seconds histogram',
      'm_seconds_bucket{le="0.1"} 0',
      'm_seconds_bucket{le="1"} 1',
      'm_seconds_bucket{le="+Inf"} 1',
      'm_seconds_sum 1',
      'm_seconds_count 1',
      '# HELP m_total line one\\nback\\\\slash',
      '# TYPE m_total counter',
      'm_total{a="x\\\\y\\nz",z="a\\"b"} 1',
      '',
    ].join('\n'),
  );
});

test('ADD outcomes from plugin records', () => {
  const r = (msg: string, labels: Record<string, unknown> = {}) => ({
    level: 'info' as const,
    time: 't',
    msg,
    labels,
  });
  assert.equal(addOutcomeOf(r('anything', { add_outcome: 'failed' })), 'failed');
  assert.equal(addOutcomeOf(r('skipping: excluded namespace')), 'skipped');
  assert.equal(addOutcomeOf(r('redirect rules programmed (ipv6: false)')), 'redirected');
  assert.equal(addOutcomeOf(r('pod lookup attempt 1 failed')), undefined);
});

test('relay at debug (upstream TestUDSLog): debug, info, warn and error records pass; a numeric label stays a number', () => {
  const lines: string[] = [];
  const { relay } = createAgentLogging({
    level: 'info',
    pluginLevel: 'debug',
    json: true,
    write: (l) => lines.push(l),
  });
  const time = '2026-01-01T00:00:00Z';
  const body = JSON.stringify(
    (['debug', 'info', 'warn', 'error'] as const).map((level) =>
      JSON.stringify({ level, time, msg: level, key: 2 }),
    ),
  );
  relay(parseLogBody(body).records);
  const records = lines
    .join('')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    records.map((record) => [record['level'], record['msg'], record['key']]),
    [
      ['debug', 'debug', 2],
      ['info', 'info', 2],
      ['warn', 'warn', 2],
      ['error', 'error', 2],
    ],
  );
});

test('text format: a relayed message with line breaks stays on one line (no forged agent records)', () => {
  const lines: string[] = [];
  const { relay } = createAgentLogging({ level: 'info', json: false, write: (l) => lines.push(l) });
  relay([
    {
      level: 'error',
      time: '2026-01-01T00:00:00Z',
      msg: "failed parsing cidr 'x\n2026-01-01T00:00:01Z\tinfo\tcni-agent\tremoved istio-cni entry'",
      labels: { 'k\ney': 'v' },
    },
  ]);
  const text = lines.join('');
  assert.equal(text.split('\n').length, 2, text);
  assert.match(text, /failed parsing cidr 'x\\n2026-01-01T00:00:01Z\\tinfo\\tcni-agent\\tremoved/);
  assert.match(text, /k\\ney=v/);
});

test('log body: more than 1000 records in one request are dropped beyond the first 1000', () => {
  const time = '2026-01-02T03:04:05Z';
  const item = JSON.stringify({ level: 'info', time, msg: 'm' });
  const parsed = parseLogBody(JSON.stringify(Array.from({ length: 1500 }, () => item)));
  assert.equal(parsed.records.length, 1000);
  assert.equal(parsed.dropped, 500);
});

test('only the ADD outcomes the plugin reports become metric labels', () => {
  const record = (add_outcome: unknown) => ({
    level: 'info' as const,
    time: 't',
    msg: 'm',
    labels: { add_outcome },
  });
  for (const outcome of ['skipped', 'redirected', 'ambient', 'failed'])
    assert.equal(addOutcomeOf(record(outcome)), outcome);
  for (const outcome of ['made-up', '', 42]) assert.equal(addOutcomeOf(record(outcome)), undefined);
});

test('log.sock: a second sink on the node takes the path over; the first one closing leaves it, the last one removes it', async () => {
  const runDir = mkdtempSync(path.join(tmpdir(), 'ic-sink-'));
  const sinks: { close(): Promise<void> }[] = [];
  try {
    const received: string[] = [];
    const first = await startLogSink(
      runDir,
      (records) => received.push(...records.map((r) => `first ${r.msg}`)),
      () => undefined,
    );
    const second = await startLogSink(
      runDir,
      (records) => received.push(...records.map((r) => `second ${r.msg}`)),
      () => undefined,
    );
    // Closed whatever an assertion says: a listening sink left behind would keep the test file from ending.
    sinks.push(first, second);
    await first.close();
    assert.deepEqual(readdirSync(runDir), ['log.sock']);
    assert.equal(statSync(`${runDir}/log.sock`).mode & 0o777, 0o600);
    const body = JSON.stringify([
      JSON.stringify({ level: 'info', time: '2026-01-01T00:00:00Z', msg: 'hello' }),
    ]);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const request = http.request(
        { socketPath: `${runDir}/log.sock`, path: '/log', method: 'POST' },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode));
        },
      );
      request.on('error', reject);
      request.end(body);
    });
    assert.equal(status, 200);
    assert.deepEqual(received, ['second hello']);
    await second.close();
    assert.deepEqual(readdirSync(runDir), []);
  } finally {
    await Promise.all(sinks.map((sink) => sink.close()));
    rmSync(runDir, { recursive: true, force: true });
  }
});

test('log body: a fatal record is dropped (only debug, info, warn and error are re-emitted)', () => {
  const time = '2026-01-02T03:04:05Z';
  const parsed = parseLogBody(
    JSON.stringify([
      JSON.stringify({ level: 'fatal', time, msg: 'fatal from the plugin' }),
      JSON.stringify({ level: 'error', time, msg: 'error from the plugin' }),
    ]),
  );
  assert.equal(parsed.malformed, false);
  assert.deepEqual(
    parsed.records.map((record) => record.msg),
    ['error from the plugin'],
  );
  assert.equal(parsed.dropped, 1);
});

/** One request over the unix socket; resolves with the status. A connection per request, as the plugin posts: a
 * 404 leaves the body unread and the server then drops the connection, which a keep-alive agent would reuse
 * (EPIPE). */
function requestOver(
  socketPath: string,
  method: string,
  urlPath: string,
  body: string,
): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const request = http.request({ socketPath, path: urlPath, method, agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('error', reject);
    request.end(body);
  });
}

interface SinkHarness {
  readonly socketPath: string;
  readonly received: string[];
  readonly problems: string[];
  readonly post: (method: string, urlPath: string, body: string) => Promise<number | undefined>;
}

/** A sink in a fresh run dir, closed (and the dir removed) whatever the test does. */
async function withSink(run: (sink: SinkHarness) => Promise<void>): Promise<void> {
  const runDir = mkdtempSync(path.join(tmpdir(), 'ic-sink-'));
  const received: string[] = [];
  const problems: string[] = [];
  let sink: { path: string; close(): Promise<void> } | undefined;
  try {
    sink = await startLogSink(
      runDir,
      (records) => received.push(...records.map((record) => record.msg)),
      (problem) => problems.push(problem),
    );
    const socketPath = sink.path;
    const post = (method: string, urlPath: string, body: string) =>
      requestOver(socketPath, method, urlPath, body);
    await run({ socketPath, received, problems, post });
  } finally {
    await sink?.close();
    rmSync(runDir, { recursive: true, force: true });
  }
}

const oneRecordBody = (msg: string): string =>
  JSON.stringify([JSON.stringify({ level: 'info', time: '2026-01-01T00:00:00Z', msg })]);

test('log.sock: only POST /log is served; another method or path is answered 404 and nothing is logged', async () => {
  await withSink(async ({ received, problems, post }) => {
    assert.equal(await post('GET', '/log', oneRecordBody('by GET')), 404);
    assert.equal(await post('PUT', '/log', oneRecordBody('by PUT')), 404);
    assert.equal(await post('POST', '/logs', oneRecordBody('to /logs')), 404);
    assert.equal(await post('POST', '/', oneRecordBody('to /')), 404);
    assert.deepEqual(received, []);
    // The path is matched without its query string.
    assert.equal(await post('POST', '/log?from=plugin', oneRecordBody('to /log')), 200);
    assert.deepEqual(received, ['to /log']);
    assert.deepEqual(problems, []);
  });
});

test('log.sock: a flood of malformed bodies is answered 200 each and reported once per 10 s', async (t) => {
  let clock = 1_000_000;
  t.mock.method(performance, 'now', () => clock);
  await withSink(async ({ received, problems, post }) => {
    for (const body of ['not json', '{"an":"object"}', '[', 'null', '42']) {
      assert.equal(await post('POST', '/log', body), 200);
    }
    assert.deepEqual(problems, ['log.sock: request body is not a JSON array of strings']);
    clock += 9_999;
    assert.equal(await post('POST', '/log', 'still not json'), 200);
    assert.equal(problems.length, 1);
    clock += 2;
    assert.equal(await post('POST', '/log', 'not json, a window later'), 200);
    assert.equal(problems.length, 2);
    assert.deepEqual(received, []);
  });
});

/** A valid one-record body of exactly `bytes` bytes (the message padded). */
function bodyOfSize(bytes: number): string {
  const base = Buffer.byteLength(oneRecordBody(''));
  const body = oneRecordBody('x'.repeat(bytes - base));
  assert.equal(Buffer.byteLength(body), bytes);
  return body;
}

test('log.sock: a body over 1 MiB is refused with 413 and nothing of it is logged; one of exactly 1 MiB is relayed', async () => {
  assert.equal(MAX_LOG_BODY_BYTES, 1024 * 1024);
  await withSink(async ({ received, problems, post }) => {
    assert.equal(await post('POST', '/log', bodyOfSize(MAX_LOG_BODY_BYTES + 1)), 413);
    assert.deepEqual(problems, [`log.sock: request body over ${MAX_LOG_BODY_BYTES} bytes; dropped`]);
    assert.equal(await post('POST', '/log', bodyOfSize(MAX_LOG_BODY_BYTES)), 200);
    assert.equal(received.length, 1);
    assert.equal(received[0]?.length, MAX_LOG_BODY_BYTES - Buffer.byteLength(oneRecordBody('')));
  });
});

/** Posts one record to `socketPath`; resolves with the status. */
const postRecord = (socketPath: string, msg: string): Promise<number | undefined> =>
  requestOver(socketPath, 'POST', '/log', oneRecordBody(msg));

test('log.sock deleted while the agent runs is bound again (a warning says so), and records reach the agent through it', async () => {
  const runDir = mkdtempSync(path.join(tmpdir(), 'ic-sink-'));
  const received: string[] = [];
  let restored: (problem: string) => void = () => undefined;
  const warned = new Promise<string>((resolve) => (restored = resolve));
  const sink = await startLogSink(
    runDir,
    (records) => received.push(...records.map((record) => record.msg)),
    (problem) => restored(problem),
  );
  try {
    rmSync(sink.path);
    assert.match(await warned, /log\.sock: .* was removed; listening there again/);
    assert.equal(statSync(sink.path).mode & 0o777, 0o600);
    assert.equal(await postRecord(sink.path, 'after the restore'), 200);
    assert.deepEqual(received, ['after the restore']);
  } finally {
    await sink.close();
  }
  assert.deepEqual(readdirSync(runDir), [], 'the re-bound socket is removed at exit too');
  rmSync(runDir, { recursive: true, force: true });
});

test("log.sock: a socket another agent put at the path is left alone; once it is gone, this agent's comes back", async () => {
  const runDir = mkdtempSync(path.join(tmpdir(), 'ic-sink-'));
  const received = { first: [] as string[], second: [] as string[] };
  // The first sink's watch is driven by hand, so the test knows when it has looked.
  let changed: (name: string | undefined) => Promise<void> = () => Promise.resolve();
  const problems: string[] = [];
  const first = await startLogSink(
    runDir,
    (records) => received.first.push(...records.map((record) => record.msg)),
    (problem) => problems.push(problem),
    {
      watchDir: (_dir, onChange) => {
        changed = onChange;
        return { close() {} };
      },
    },
  );
  const second = await startLogSink(
    runDir,
    (records) => received.second.push(...records.map((record) => record.msg)),
    () => undefined,
  );
  let secondClosed: Promise<void> | undefined;
  const closeSecond = () => (secondClosed ??= second.close());
  try {
    await changed('log.sock');
    await postRecord(first.path, 'to the newer agent');
    assert.deepEqual(received, { first: [], second: ['to the newer agent'] });
    await closeSecond();
    await changed('log.sock');
    await postRecord(first.path, 'back to the first');
    assert.deepEqual(received, { first: ['back to the first'], second: ['to the newer agent'] });
    assert.equal(problems.length, 1);
  } finally {
    await closeSecond();
    await first.close();
  }
  assert.deepEqual(readdirSync(runDir), []);
  rmSync(runDir, { recursive: true, force: true });
});

test('log.sock: a run-dir watch that fails is reported (the socket keeps serving, but a removal would not be repaired)', async () => {
  const runDir = mkdtempSync(path.join(tmpdir(), 'ic-sink-'));
  const problems: string[] = [];
  let fail: (error: Error) => void = () => undefined;
  const sink = await startLogSink(
    runDir,
    () => undefined,
    (problem) => problems.push(problem),
    {
      watchDir: (_dir, _onChange, onError) => {
        fail = onError;
        return { close() {} };
      },
    },
  );
  try {
    fail(Object.assign(new Error('ENOSPC: inotify watch limit reached'), { code: 'ENOSPC' }));
    assert.deepEqual(problems, [
      `log.sock: watching ${runDir} failed (ENOSPC: inotify watch limit reached); a removed socket stays removed`,
    ]);
    assert.equal(await postRecord(sink.path, 'still served'), 200);
  } finally {
    await sink.close();
    rmSync(runDir, { recursive: true, force: true });
  }
});
