import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAgentLogging } from '../../../src/log/agent-logger.ts';
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
