import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  appendToPluginLogFile,
  backupName,
  backupTime,
  PLUGIN_LOG_LIMITS,
} from '../../../src/sys/plugin-log-file.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'ia-plugin-log-'));
after(() => rmSync(root, { recursive: true, force: true }));

const limits = { maxBytes: 200, maxBackups: 1, maxAgeMs: 2 * 24 * 3600 * 1000 };
const record = (level: string, msg: string) =>
  `{"level":"${level}","time":"t","scope":"cni-plugin","msg":"${msg}"}`;

test("backups are named as upstream's lumberjack names them (UTC)", () => {
  assert.equal(
    backupName('/var/run/istio-cni/istio-cni.log', new Date('2026-11-23T18:15:19.042Z')),
    '/var/run/istio-cni/istio-cni-2026-11-23T18-15-19.042.log',
  );
});

test('appends info and above as JSON lines; debug is left out; appending twice keeps both', () => {
  const dir = mkdtempSync(path.join(root, 'a-'));
  const file = path.join(dir, 'istio-cni.log');
  appendToPluginLogFile(
    file,
    [record('debug', 'd'), record('info', 'i'), record('error', 'e')],
    new Date(),
    limits,
  );
  appendToPluginLogFile(file, [record('warn', 'w')], new Date(), limits);
  appendToPluginLogFile(file, [record('debug', 'only debug')], new Date(), limits);
  assert.deepEqual(
    readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => (JSON.parse(line) as { msg: string }).msg),
    ['i', 'e', 'w'],
  );
  assert.equal(statSync(file).mode & 0o777, 0o600);
});

test('rotates before the file would pass its limit and keeps one backup, the newest', () => {
  const dir = mkdtempSync(path.join(root, 'r-'));
  const file = path.join(dir, 'istio-cni.log');
  const line = record('info', 'x'.repeat(60)); // ~110 bytes: two do not fit in 200
  appendToPluginLogFile(file, [line], new Date('2026-11-23T10:00:00.000Z'), limits);
  appendToPluginLogFile(file, [line], new Date('2026-11-23T11:00:00.000Z'), limits);
  assert.deepEqual(readdirSync(dir).sort(), ['istio-cni-2026-11-23T11-00-00.000.log', 'istio-cni.log']);
  appendToPluginLogFile(file, [line], new Date('2026-11-23T12:00:00.000Z'), limits);
  // The newer backup replaces the older one (one backup at most); the current file holds one record.
  assert.deepEqual(readdirSync(dir).sort(), ['istio-cni-2026-11-23T12-00-00.000.log', 'istio-cni.log']);
  assert.equal(readFileSync(file, 'utf8'), `${line}\n`);
});

test('never throws: an unwritable place is ignored', () => {
  assert.doesNotThrow(() =>
    appendToPluginLogFile(path.join(root, 'missing-dir', 'istio-cni.log'), [record('info', 'i')]),
  );
});

test('a symlink planted under the file name is not followed: the target stays untouched', () => {
  const dir = mkdtempSync(path.join(root, 'l-'));
  const target = path.join(dir, 'elsewhere');
  writeFileSync(target, 'precious\n');
  const file = path.join(dir, 'istio-cni.log');
  symlinkSync(target, file);
  appendToPluginLogFile(file, [record('error', 'e')], new Date(), limits);
  assert.equal(readFileSync(target, 'utf8'), 'precious\n');
});

test('at rotation, backups rotated more than maxAge before `now` (the time in their name) are removed; younger ones stay, however many', () => {
  const dir = mkdtempSync(path.join(root, 'age-'));
  const file = path.join(dir, 'istio-cni.log');
  // A clock far from the machine's: the age is measured from the `now` given, not from the wall clock.
  const now = new Date('2030-06-15T12:00:00.000Z');
  const ago = (ms: number) => new Date(now.getTime() - ms);
  const day = 24 * 3600 * 1000;
  const backups = new Map([
    ['istio-cni-2030-06-12T11-00-00.000.log', ago(3 * day + 3600 * 1000)], // well past 2 days
    ['istio-cni-2030-06-13T11-59-59.000.log', ago(2 * day + 1000)], // one second past
    ['istio-cni-2030-06-13T12-00-00.000.log', ago(2 * day)], // exactly 2 days: not older than the limit
    ['istio-cni-2030-06-14T12-00-00.000.log', ago(day)],
  ]);
  for (const [name, mtime] of backups) {
    writeFileSync(path.join(dir, name), 'old\n');
    utimesSync(path.join(dir, name), mtime, mtime);
  }
  const line = record('info', 'x'.repeat(60)); // ~110 bytes: two do not fit in 200
  writeFileSync(file, `${line}\n`);
  utimesSync(file, ago(3600 * 1000), ago(3600 * 1000));
  appendToPluginLogFile(file, [line], now, { ...limits, maxBackups: 10 });
  assert.deepEqual(readdirSync(dir).sort(), [
    'istio-cni-2030-06-13T12-00-00.000.log',
    'istio-cni-2030-06-14T12-00-00.000.log',
    'istio-cni-2030-06-15T12-00-00.000.log', // the one this rotation made
    'istio-cni.log',
  ]);
});

test("a log idle for longer than maxAge keeps the backup its rotation makes (the age is the name's rotation time, not the mtime a rename keeps); a file not named like a backup is left alone", () => {
  const dir = mkdtempSync(path.join(root, 'idle-'));
  const file = path.join(dir, 'istio-cni.log');
  const now = new Date('2030-06-15T12:00:00.000Z');
  const line = record('info', 'x'.repeat(60)); // ~110 bytes: two do not fit in 200
  writeFileSync(file, `${line}\n`);
  const lastWrite = new Date('2030-06-10T12:00:00.000Z');
  utimesSync(file, lastWrite, lastWrite);
  const foreign = [
    'istio-cni-notes.log',
    'istio-cni-2030-01-01T00-00-00.log',
    'istio-cni-2030-13-45T99-00-00.000.log',
  ];
  for (const name of foreign) writeFileSync(path.join(dir, name), 'not a backup\n');
  appendToPluginLogFile(file, [line], now, limits);
  assert.deepEqual(
    readdirSync(dir).sort(),
    [...foreign, 'istio-cni-2030-06-15T12-00-00.000.log', 'istio-cni.log'].sort(),
  );
});

test('backupTime reads the UTC rotation time from a backup name; anything else is no backup', () => {
  assert.equal(
    backupTime('istio-cni-2026-11-23T18-15-19.042.log', 'istio-cni-', '.log'),
    Date.parse('2026-11-23T18:15:19.042Z'),
  );
  assert.equal(
    backupTime(path.basename(backupName('/x/istio-cni.log', new Date(0))), 'istio-cni-', '.log'),
    0,
  );
  for (const name of [
    'istio-cni.log',
    'istio-cni-notes.log',
    'istio-cni-2026-11-23T18-15-19.log',
    'other-2026-11-23T18-15-19.042.log',
    'istio-cni-2026-02-30T18-15-19.042.log',
    'istio-cni-2026-11-23T18-15-19.042.txt',
    'istio-cni-copy-2026-11-23T18-15-19.042.log',
  ])
    assert.equal(backupTime(name, 'istio-cni-', '.log'), undefined, name);
});

test('a batch of debug records only writes nothing: no file is created, no empty line is added to one', () => {
  const dir = mkdtempSync(path.join(root, 'd-'));
  const file = path.join(dir, 'istio-cni.log');
  appendToPluginLogFile(file, [record('debug', 'd')], new Date(), limits);
  assert.deepEqual(readdirSync(dir), []);
  appendToPluginLogFile(file, [record('info', 'i')], new Date(), limits);
  appendToPluginLogFile(file, [record('debug', 'd')], new Date(), limits);
  assert.equal(readFileSync(file, 'utf8'), `${record('info', 'i')}\n`);
});

test('only the record level decides what is left out: an info record carrying a nested "level":"debug" is kept', () => {
  const dir = mkdtempSync(path.join(root, 'n-'));
  const file = path.join(dir, 'istio-cni.log');
  const nested = '{"level":"info","time":"t","msg":"m","detail":{"level":"debug"}}';
  appendToPluginLogFile(file, [nested], new Date(), limits);
  assert.equal(readFileSync(file, 'utf8'), `${nested}\n`);
});

test('the size limit counts bytes, and a file filled exactly to it is not rotated; one byte more is', () => {
  const dir = mkdtempSync(path.join(root, 'b-'));
  const file = path.join(dir, 'istio-cni.log');
  const first = record('info', 'x'.repeat(40));
  appendToPluginLogFile(file, [first], new Date('2026-11-23T10:00:00.000Z'), limits);
  // Fill the file to exactly maxBytes: the record (with its newline) takes what is left.
  const room = limits.maxBytes - statSync(file).size - Buffer.byteLength(`${record('info', '')}\n`);
  const exact = record('info', 'y'.repeat(room));
  appendToPluginLogFile(file, [exact], new Date('2026-11-23T11:00:00.000Z'), limits);
  assert.equal(statSync(file).size, limits.maxBytes);
  assert.deepEqual(readdirSync(dir), ['istio-cni.log']);

  // Multi-byte characters: fits in characters, not in bytes.
  const other = mkdtempSync(path.join(root, 'u-'));
  const second = path.join(other, 'istio-cni.log');
  appendToPluginLogFile(second, [first], new Date('2026-11-23T10:00:00.000Z'), limits);
  const wide = record('info', 'é'.repeat(room));
  assert.ok(statSync(second).size + `${wide}\n`.length <= limits.maxBytes);
  appendToPluginLogFile(second, [wide], new Date('2026-11-23T12:00:00.000Z'), limits);
  assert.deepEqual(readdirSync(other).sort(), ['istio-cni-2026-11-23T12-00-00.000.log', 'istio-cni.log']);
  assert.equal(readFileSync(second, 'utf8'), `${wide}\n`);
});

test('a record larger than the limit is still written to a fresh file (not lost), with no backup made', () => {
  const dir = mkdtempSync(path.join(root, 'big-'));
  const file = path.join(dir, 'istio-cni.log');
  const big = record('error', 'z'.repeat(limits.maxBytes));
  appendToPluginLogFile(file, [big], new Date(), limits);
  assert.deepEqual(readdirSync(dir), ['istio-cni.log']);
  assert.equal(readFileSync(file, 'utf8'), `${big}\n`);
});

test("the default limits are upstream's: rotation past 10 MiB, one backup kept", () => {
  const dir = mkdtempSync(path.join(root, 'default-'));
  const file = path.join(dir, 'istio-cni.log');
  const line = record('info', 'x'.repeat(60));
  const now = new Date('2026-11-23T12:00:00.000Z');
  writeFileSync(path.join(dir, 'istio-cni-2026-11-23T10-00-00.000.log'), 'older\n');
  // Room for this record and not one byte more: no rotation.
  writeFileSync(file, Buffer.alloc(10 * 1024 * 1024 - Buffer.byteLength(`${line}\n`), 'a'));
  appendToPluginLogFile(file, [line], now);
  assert.equal(statSync(file).size, 10 * 1024 * 1024);
  assert.equal(readdirSync(dir).length, 2);
  appendToPluginLogFile(file, [line], now);
  assert.deepEqual(readdirSync(dir).sort(), ['istio-cni-2026-11-23T12-00-00.000.log', 'istio-cni.log']);
  assert.equal(readFileSync(file, 'utf8'), `${line}\n`);
  assert.equal(PLUGIN_LOG_LIMITS.maxAgeMs, 2 * 24 * 3600 * 1000);
});

test('no file descriptor is left open after an append', () => {
  const dir = mkdtempSync(path.join(root, 'fd-'));
  const file = path.join(dir, 'istio-cni.log');
  const before = readdirSync('/proc/self/fd').length;
  for (let i = 0; i < 5; i++) appendToPluginLogFile(file, [record('info', `${i}`)], new Date(), limits);
  assert.equal(readdirSync('/proc/self/fd').length, before);
});
