import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addOutcomeOf, createAgentLogging } from '../../../src/log/agent-logger.ts';
import type { LogLevel } from '../../../src/config/load.ts';

function capture(level: LogLevel, json = true, pluginLevel?: LogLevel) {
  const lines: string[] = [];
  const logging = createAgentLogging({
    level,
    ...(pluginLevel === undefined ? {} : { pluginLevel }),
    json,
    write: (line) => lines.push(line),
  });
  return { ...logging, lines };
}

const secrets = {
  token: 'secret-token',
  ca: 'secret-ca',
  caData: 'secret-caData',
  kubeconfig: 'secret-kubeconfig',
};

test('tokens, CA data and kubeconfigs are redacted at the top level and one object down', () => {
  const { logger, lines } = capture('info');
  const nested = {
    ...Object.fromEntries(Object.entries(secrets).map(([key, value]) => [key, `nested-${value}`])),
    'certificate-authority-data': 'nested-secret-certificate-authority-data',
    server: 'https://10.96.0.1',
  };
  logger.info({ ...secrets, cluster: nested }, 'wrote kubeconfig');
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  for (const key of Object.keys(secrets)) assert.equal(record[key], 'REDACTED', key);
  assert.deepEqual(record['cluster'], {
    token: 'REDACTED',
    ca: 'REDACTED',
    caData: 'REDACTED',
    kubeconfig: 'REDACTED',
    'certificate-authority-data': 'REDACTED',
    server: 'https://10.96.0.1',
  });
  assert.doesNotMatch(lines[0] ?? '', /secret/);
});

test('a top-level certificate-authority-data field is redacted', () => {
  const { logger, lines } = capture('info');
  logger.info({ 'certificate-authority-data': 'secret-ca' }, 'wrote kubeconfig');
  assert.equal(
    (JSON.parse(lines[0] ?? '') as Record<string, unknown>)['certificate-authority-data'],
    'REDACTED',
  );
});

test('redaction also holds in the text format and for another scope', () => {
  const { logger, scoped, lines } = capture('info', false);
  logger.info({ token: 'secret-token' }, 'text');
  scoped('repair', 'info').info({ cluster: { 'certificate-authority-data': 'secret-ca' } }, 'repair');
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', /\ttoken=REDACTED\n$/);
  assert.match(lines[1] ?? '', /\tcluster=\{"certificate-authority-data":"REDACTED"\}\n$/);
  assert.doesNotMatch(lines.join(''), /secret/);
});

test('level none logs nothing, not even fatal; level fatal still logs fatal records', () => {
  const none = capture('none');
  none.logger.fatal('fatal at none');
  none.logger.error('error at none');
  none.scoped('repair', 'none').fatal('repair fatal at none');
  assert.deepEqual(none.lines, []);

  const fatal = capture('fatal');
  fatal.logger.error('error at fatal');
  fatal.logger.fatal('fatal at fatal');
  fatal.scoped('repair', 'fatal').fatal('repair fatal at fatal');
  assert.deepEqual(
    fatal.lines.map((line) => {
      const record = JSON.parse(line) as Record<string, unknown>;
      return [record['level'], record['scope'], record['msg']];
    }),
    [
      ['fatal', 'cni-agent', 'fatal at fatal'],
      ['fatal', 'repair', 'repair fatal at fatal'],
    ],
  );
});

test('relayed plugin records: level none or fatal drops them all (a plugin record is at most error); error keeps error', () => {
  const records = (['debug', 'info', 'warn', 'error'] as const).map((level) => ({
    level,
    time: '2026-01-01T00:00:00Z',
    msg: level,
    labels: {},
  }));
  for (const level of ['none', 'fatal'] as const) {
    const viaPluginLevel = capture('info', true, level);
    viaPluginLevel.relay(records);
    assert.deepEqual(viaPluginLevel.lines, [], `cni-plugin level ${level}`);
    // Without a cni-plugin level of its own, the agent's level applies.
    const viaAgentLevel = capture(level);
    viaAgentLevel.relay(records);
    assert.deepEqual(viaAgentLevel.lines, [], `agent level ${level}`);
  }
  const atError = capture('info', true, 'error');
  atError.relay(records);
  assert.deepEqual(
    atError.lines.map((line) => (JSON.parse(line) as Record<string, unknown>)['msg']),
    ['error'],
  );
});

test("agent records carry Istio's time form: UTC with microseconds (as the plugin's relayed records do)", () => {
  const json = capture('info');
  json.logger.info('json');
  const time = (JSON.parse(json.lines[0] ?? '') as Record<string, unknown>)['time'];
  assert.match(String(time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  const text = capture('info', false);
  text.logger.info('text');
  assert.match(text.lines[0] ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\tinfo\tcni-agent\ttext\n$/);
});

test('text format: a record without fields ends at its message (no trailing tab), relayed or not', () => {
  const { logger, relay, lines } = capture('info', false);
  logger.info('no fields');
  relay([{ level: 'warn', time: '2026-01-01T00:00:00.000001Z', msg: 'relayed, no fields', labels: {} }]);
  assert.match(lines[0] ?? '', /\tinfo\tcni-agent\tno fields\n$/);
  assert.equal(lines[1], '2026-01-01T00:00:00.000001Z\twarn\tcni-plugin\trelayed, no fields\n');
});

test('text format: a field value with a quote, a tab or a line break is quoted and escaped, so it stays on its line', () => {
  const { relay, lines } = capture('info', false);
  relay([
    {
      level: 'error',
      time: '2026-01-01T00:00:00Z',
      msg: 'm',
      labels: {
        quoted: 'a="b"',
        tabbed: 'a\tb',
        broken: 'x\n2026-01-01T00:00:01Z\tinfo\tcni-agent\tforged',
        plain: 'ns/p',
      },
    },
  ]);
  assert.equal(
    lines.join(''),
    '2026-01-01T00:00:00Z\terror\tcni-plugin\tm\tquoted="a=\\"b\\"" tabbed="a\\tb" ' +
      'broken="x\\n2026-01-01T00:00:01Z\\tinfo\\tcni-agent\\tforged" plain=ns/p\n',
  );
});

test('a relayed record is under scope cni-plugin even when it carries a scope label of its own', () => {
  const { relay, lines } = capture('info');
  relay([
    { level: 'info', time: '2026-01-01T00:00:00Z', msg: 'm', labels: { scope: 'cni-agent', pod: 'ns/p' } },
  ]);
  assert.equal(lines[0]?.match(/"scope":/g)?.length, 1);
  assert.deepEqual(JSON.parse(lines[0] ?? ''), {
    pod: 'ns/p',
    level: 'info',
    time: '2026-01-01T00:00:00Z',
    scope: 'cni-plugin',
    msg: 'm',
  });
});

test('ADD outcomes are recognised from the start of the message only, by its whole prefix', () => {
  const outcome = (msg: string) =>
    addOutcomeOf({ level: 'info', time: '2026-01-01T00:00:00Z', msg, labels: {} });
  assert.equal(outcome('skipping: pod is in an excluded namespace'), 'skipped');
  assert.equal(outcome('redirect rules programmed'), 'redirected');
  for (const msg of [
    'not skipping: sidecar injected',
    'skipping redirect',
    'redirecting to ztunnel',
    'redirect-rules',
  ]) {
    assert.equal(outcome(msg), undefined, msg);
  }
});
