// The agent's sinks (src/sys/log-sink.ts record parsing, src/sys/metrics.ts exposition); kept beside the installer
// tests because they are the agent's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addOutcomeOf } from '../../../src/log/agent-logger.ts';
import { parseLogBody, startLogSink } from '../../../src/sys/log-sink.ts';
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
