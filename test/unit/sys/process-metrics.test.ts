import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  parseMaxOpenFiles,
  parseVirtualBytes,
  renderProcessMetrics,
  sampleProcess,
} from '../../../src/sys/process-metrics.ts';

test('process metrics render with the Go client names, help texts and types; unknown values are left out', () => {
  const text = renderProcessMetrics({
    cpuSeconds: 1.25,
    residentBytes: 61_000_000,
    virtualBytes: undefined,
    openFds: 17,
    maxFds: 1_048_576,
    startTimeSeconds: 1_795_470_066.5,
  });
  assert.equal(
    text,
    [
      '# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.',
      '# TYPE process_cpu_seconds_total counter',
      'process_cpu_seconds_total 1.25',
      '# HELP process_max_fds Maximum number of open file descriptors.',
      '# TYPE process_max_fds gauge',
      'process_max_fds 1048576',
      '# HELP process_open_fds Number of open file descriptors.',
      '# TYPE process_open_fds gauge',
      'process_open_fds 17',
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      'process_resident_memory_bytes 61000000',
      '# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.',
      '# TYPE process_start_time_seconds gauge',
      'process_start_time_seconds 1795470066.5',
      '',
    ].join('\n'),
  );
});

test('/proc parsers: a command name with spaces and parentheses, and the soft open-files limit', () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[20] = '123456789';
  assert.equal(parseVirtualBytes(`42 (a) b (c) ${fields.join(' ')}`), 123456789);
  const limits = [
    'Limit                     Soft Limit           Hard Limit           Units',
    'Max open files            1024                 524288               files',
  ].join('\n');
  assert.equal(parseMaxOpenFiles(limits), 1024);
  assert.equal(
    parseMaxOpenFiles('Max open files            unlimited            unlimited            files'),
    undefined,
  );
});

test('a sample of this process is plausible', () => {
  const sample = sampleProcess();
  assert.ok(sample.residentBytes > 1024 * 1024);
  assert.ok(sample.virtualBytes !== undefined && sample.virtualBytes >= sample.residentBytes);
  assert.ok(sample.openFds !== undefined && sample.openFds >= 3);
  assert.ok(
    sample.startTimeSeconds <= Date.now() / 1000 && sample.startTimeSeconds > Date.now() / 1000 - 3600,
  );
});

test('/proc/self/stat without a readable vsize gives no value, not NaN', () => {
  assert.equal(parseVirtualBytes('42 (truncated'), undefined);
  assert.equal(parseVirtualBytes('42 (a) S 1 2 3'), undefined);
});

test('the sample reports CPU seconds (user plus system) and the resident set /proc reports', () => {
  const before = process.cpuUsage();
  const sample = sampleProcess();
  const after = process.cpuUsage();
  assert.ok(sample.cpuSeconds >= (before.user + before.system) / 1e6, `${sample.cpuSeconds} s`);
  assert.ok(sample.cpuSeconds <= (after.user + after.system) / 1e6, `${sample.cpuSeconds} s`);
  const status = readFileSync('/proc/self/status', 'utf8');
  const vmRssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  assert.ok(vmRssKiB > 0);
  const ratio = sample.residentBytes / (vmRssKiB * 1024);
  assert.ok(ratio > 0.8 && ratio < 1.25, `resident ${sample.residentBytes} vs VmRSS ${vmRssKiB} KiB`);
});
