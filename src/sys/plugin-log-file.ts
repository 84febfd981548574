// The plugin's rolling log file `<run dir>/istio-cni.log` (behaviour §2.10; field lessons: "log forwarding over a
// unix socket to the daemon, with a local rolling-file fallback"). Upstream tees every record there; we write it
// only with the records the agent did not take (no log.sock, or the POST failed): with the agent up they are in its
// log already, and a pod start then costs no host file write. Upstream's limits and names (lumberjack): 10 MB, one
// backup `istio-cni-<UTC time>.log`, backups older than 2 days removed, fixed minimum level info. Best effort: a
// failure here is ignored (the records are on stderr too) and never fails an ADD.
import {
  closeSync,
  constants,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

export interface RollingLogLimits {
  readonly maxBytes: number;
  readonly maxBackups: number;
  readonly maxAgeMs: number;
}

export const PLUGIN_LOG_LIMITS: RollingLogLimits = Object.freeze({
  maxBytes: 10 * 1024 * 1024,
  maxBackups: 1,
  maxAgeMs: 2 * 24 * 60 * 60 * 1000,
});

/** lumberjack's backup time format, UTC: 2006-01-02T15-04-05.000 */
export function backupName(file: string, time: Date): string {
  const stamp = time.toISOString().replace(/:/g, '-').replace(/Z$/, '');
  const extension = path.extname(file);
  return `${file.slice(0, file.length - extension.length)}-${stamp}${extension}`;
}

function isBelowInfo(record: string): boolean {
  return /^\{"level":"debug"/.test(record);
}

/** The rotation time lumberjack wrote into a backup's name, or undefined for a name that is not one of its
 * backups (such a file is neither counted nor removed, as lumberjack leaves it). */
export function backupTime(name: string, prefix: string, extension: string): number | undefined {
  if (!name.startsWith(prefix) || !name.endsWith(extension)) return undefined;
  const stamp = name.slice(prefix.length, name.length - extension.length);
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2}\.\d{3})$/.exec(stamp);
  if (match === null) return undefined;
  const iso = `${match[1]}T${match[2]}:${match[3]}:${match[4]}Z`;
  const time = Date.parse(iso);
  // Round-tripped: Date.parse rolls a February 30th over into March, where Go's time.Parse refuses it.
  return Number.isNaN(time) || new Date(time).toISOString() !== iso ? undefined : time;
}

/** lumberjack's mill: keeps the newest `maxBackups`, and of those only the ones rotated within `maxAgeMs`. The age
 * is the rotation time in the name, not the file's mtime: a rename keeps the time of the last write, so a log idle
 * for days would lose its backup the moment it is made. */
function removeOldBackups(file: string, limits: RollingLogLimits, now: Date): void {
  const directory = path.dirname(file);
  const extension = path.extname(file);
  const prefix = `${path.basename(file, extension)}-`;
  const backups = readdirSync(directory)
    .map((name) => ({ name, time: backupTime(name, prefix, extension) }))
    .filter((backup): backup is { name: string; time: number } => backup.time !== undefined)
    .sort((a, b) => b.time - a.time); // newest first
  backups.forEach((backup, index) => {
    const tooMany = index >= limits.maxBackups;
    if (tooMany || now.getTime() - backup.time > limits.maxAgeMs)
      rmSync(path.join(directory, backup.name), { force: true });
  });
}

/** Appends the records (JSON lines) at level info and above; rotates first when they would not fit. */
export function appendToPluginLogFile(
  file: string,
  records: readonly string[],
  now: Date = new Date(),
  limits: RollingLogLimits = PLUGIN_LOG_LIMITS,
): void {
  const lines = records.filter((record) => !isBelowInfo(record));
  if (lines.length === 0) return;
  const data = `${lines.join('\n')}\n`;
  try {
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {
      // no file yet
    }
    if (size > 0 && size + Buffer.byteLength(data) > limits.maxBytes) {
      renameSync(file, backupName(file, now));
      removeOldBackups(file, limits, now);
    }
    // One write of whole lines in append mode: concurrent plugin processes do not interleave within a record.
    // 0600 as lumberjack creates it (the records name pods); O_NOFOLLOW: a root process never appends through a
    // symlink someone planted under the file's name.
    const fd = openSync(
      file,
      constants.O_APPEND | constants.O_CREAT | constants.O_WRONLY | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Best effort (see the header).
  }
}
