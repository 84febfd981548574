// Plugin logging (behaviour §2.10): pino with a synchronous destination (a plain `write` function, no transports,
// no worker threads) so nothing is lost when the short-lived process ends. Records are Istio-shaped
// ({"level":"info","time":"2026-…123456Z","scope":"cni-plugin","msg":"…",…labels}) and never go to stdout. When
// the run dir is known, records at or above the level are also kept for one POST to the agent's log.sock at exit
// (or the rolling file when the agent does not take them).
import { pino, type Logger } from 'pino';
import type { PluginLogLevel } from '../plugin/config.ts';

export interface PluginLogging {
  readonly logger: Logger;
  /** plugin_log_level: applies to the whole process; `none` silences it. */
  readonly setLevel: (level: PluginLogLevel) => void;
  /** From now on keep emitted records, for the agent's log socket or the rolling file. */
  readonly keepRecords: () => void;
  /** The kept records (each one JSON-encoded record), emptied. */
  readonly takeRecords: () => string[];
}

/** Istio's time format: RFC 3339 UTC with microseconds. */
export function istioTime(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

const PINO_LEVEL: Readonly<Record<PluginLogLevel, pino.LevelWithSilent>> = {
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'fatal',
  none: 'silent',
};

/** `write` receives one JSON line per record (with trailing newline) and must be synchronous. */
export function createPluginLogging(
  write: (line: string) => void,
  now: () => Date = () => new Date(),
): PluginLogging {
  let keeping = false;
  let kept: string[] = [];
  const destination = {
    write(line: string): void {
      write(line);
      if (keeping) kept.push(line.trimEnd());
    },
  };
  const logger = pino(
    {
      level: 'info',
      base: { scope: 'cni-plugin' },
      messageKey: 'msg',
      timestamp: () => `,"time":"${istioTime(now())}"`,
      formatters: { level: (label: string) => ({ level: label }) },
    },
    destination,
  );
  return {
    logger,
    setLevel: (level) => {
      logger.level = PINO_LEVEL[level];
    },
    keepRecords: () => {
      keeping = true;
    },
    takeRecords: () => {
      const records = kept;
      kept = [];
      return records;
    },
  };
}
