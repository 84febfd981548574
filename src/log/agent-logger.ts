// Agent logging (behaviour §1.9): pino under scope `cni-agent`, Istio-shaped records
// ({"level":"info","time":"…","scope":"cni-agent","msg":"…",…}). `--log_as_json` → JSON lines; otherwise Istio's
// text form `<time>\t<level>\t<scope>\t<msg>\t<key>=<value>…` (what the upstream agent prints by default).
// Tokens and CA data are redacted. The sink is passed in: only bin/ touches process.stdout.
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/load.ts';
import { istioTime } from './plugin-logger.ts';

export interface AgentLogOptions {
  readonly level: LogLevel;
  /** Level applied to relayed plugin records (cni-plugin scope). */
  readonly pluginLevel?: LogLevel;
  readonly json: boolean;
  readonly write: (line: string) => void;
}

export interface RelayedRecord {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly time: string;
  readonly msg: string;
  readonly labels: Readonly<Record<string, unknown>>;
}

export interface AgentLogging {
  /** Scope `cni-agent`. */
  readonly logger: Logger;
  /** A logger of another scope (the repair controller's `repair`, as upstream) at that scope's level: pino's child
   * bindings would add a second `scope` key to each JSON record, not replace the first. Same sink as `logger`. */
  readonly scoped: (scope: string, level: LogLevel) => Logger;
  /** Re-emits plugin records under scope `cni-plugin`, keeping their timestamps; one batch is written at once. */
  readonly relay: (records: readonly RelayedRecord[]) => void;
}

const RANK: Record<string, number> = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60, none: 100 };

export const REDACT_PATHS = [
  'token',
  '*.token',
  'ca',
  '*.ca',
  'caData',
  '*.caData',
  'kubeconfig',
  '*.kubeconfig',
  // A key with a dash is bracketed at the top level too: pino matches '"certificate-authority-data"' to nothing.
  '["certificate-authority-data"]',
  '*["certificate-authority-data"]',
];

/** Control characters escaped as JSON would: a relayed plugin message (which can quote a pod's annotation) must
 * not start a line of its own that reads like an agent record. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this replaces
  return text.replace(/[\u0000-\u001f\u007f]/g, (char) => JSON.stringify(char).slice(1, -1));
}

function textLine(record: Record<string, unknown>): string {
  const { time, level, scope, msg, ...rest } = record;
  const extras = Object.entries(rest)
    .map(
      ([key, value]) =>
        `${oneLine(key)}=${typeof value === 'string' && !/[\s"]/.test(value) ? value : JSON.stringify(value)}`,
    )
    .join(' ');
  const head = `${String(time)}\t${String(level)}\t${String(scope)}\t${typeof msg === 'string' ? oneLine(msg) : JSON.stringify(msg ?? '')}`;
  return `${extras === '' ? head : `${head}\t${extras}`}\n`;
}

export function createAgentLogging(options: AgentLogOptions): AgentLogging {
  const emit = (line: string): void => {
    if (options.json) {
      options.write(line.endsWith('\n') ? line : `${line}\n`);
      return;
    }
    try {
      options.write(textLine(JSON.parse(line) as Record<string, unknown>));
    } catch {
      options.write(line);
    }
  };
  const scoped = (scope: string, level: LogLevel): Logger =>
    pino(
      {
        level: level === 'none' ? 'silent' : level,
        base: { scope },
        messageKey: 'msg',
        timestamp: () => `,"time":"${istioTime(new Date())}"`,
        formatters: { level: (label) => ({ level: label }) },
        redact: { paths: REDACT_PATHS, censor: 'REDACTED' },
      },
      { write: emit },
    );
  const logger = scoped('cni-agent', options.level);
  const pluginRank = RANK[options.pluginLevel ?? options.level] ?? 30;
  return {
    logger,
    scoped,
    relay(records) {
      let batch = '';
      for (const record of records) {
        if ((RANK[record.level] ?? 0) < pluginRank) continue;
        const line = JSON.stringify({
          ...record.labels,
          level: record.level,
          time: record.time,
          scope: 'cni-plugin',
          msg: record.msg,
        });
        batch += options.json ? `${line}\n` : textLine(JSON.parse(line) as Record<string, unknown>);
      }
      if (batch !== '') options.write(batch);
    },
  };
}

/** The ADD outcomes the plugin reports; anything else in a record (which any local process can post to log.sock)
 * never becomes a metric label, so the series stay bounded. */
const ADD_OUTCOMES = new Set(['skipped', 'redirected', 'ambient', 'failed']);

/** The ADD outcome a plugin record reports: an explicit `add_outcome` label, else recognised from the plugin's
 * messages (`skipping: …` → skipped, `redirect rules …` → redirected); undefined for other records. */
export function addOutcomeOf(record: RelayedRecord): string | undefined {
  const label = record.labels['add_outcome'];
  if (typeof label === 'string' && ADD_OUTCOMES.has(label)) return label;
  if (record.msg.startsWith('skipping: ')) return 'skipped';
  if (record.msg.startsWith('redirect rules ')) return 'redirected';
  return undefined;
}
