// The standard `process_*` metrics Prometheus' Go client (which Istio's exporter uses) adds to every /metrics:
// dashboards and alerts written for upstream's agent (memory, CPU, fd exhaustion, restarts) keep working.
// `renderProcessMetrics` is pure; `sampleProcess` reads this process from /proc at scrape time.
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcessSample {
  readonly cpuSeconds: number;
  readonly residentBytes: number;
  /** Undefined where /proc cannot tell (the metric is left out, as the Go client does). */
  readonly virtualBytes: number | undefined;
  readonly openFds: number | undefined;
  readonly maxFds: number | undefined;
  readonly startTimeSeconds: number;
}

const FAMILIES: ReadonlyArray<[keyof ProcessSample, string, 'counter' | 'gauge', string]> = [
  ['cpuSeconds', 'process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.'],
  ['maxFds', 'process_max_fds', 'gauge', 'Maximum number of open file descriptors.'],
  ['openFds', 'process_open_fds', 'gauge', 'Number of open file descriptors.'],
  ['residentBytes', 'process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.'],
  [
    'startTimeSeconds',
    'process_start_time_seconds',
    'gauge',
    'Start time of the process since unix epoch in seconds.',
  ],
  ['virtualBytes', 'process_virtual_memory_bytes', 'gauge', 'Virtual memory size in bytes.'],
];

export function renderProcessMetrics(sample: ProcessSample): string {
  const lines: string[] = [];
  for (const [key, name, kind, help] of FAMILIES) {
    const value = sample[key];
    if (value === undefined) continue;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`, `${name} ${value}`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function readOrUndefined<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** The soft "Max open files" limit from /proc/self/limits ("unlimited" is left out). */
export function parseMaxOpenFiles(limits: string): number | undefined {
  const match = /^Max open files\s+(\d+)/m.exec(limits);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** vsize (field 23) of /proc/self/stat; the command name (field 2) may hold spaces and parentheses. */
export function parseVirtualBytes(stat: string): number | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const vsize = Number(fields[20]);
  return Number.isFinite(vsize) ? vsize : undefined;
}

export function sampleProcess(): ProcessSample {
  const cpu = process.cpuUsage();
  return {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    residentBytes: process.memoryUsage.rss(),
    virtualBytes: readOrUndefined(() => parseVirtualBytes(readFileSync('/proc/self/stat', 'utf8'))),
    // The listing's own directory handle is one of the entries.
    openFds: readOrUndefined(() => readdirSync('/proc/self/fd').length - 1),
    maxFds: readOrUndefined(() => parseMaxOpenFiles(readFileSync('/proc/self/limits', 'utf8'))),
    startTimeSeconds: Math.round((Date.now() / 1000 - process.uptime()) * 100) / 100,
  };
}
