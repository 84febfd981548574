// The installer loop (behaviour §1.3–§1.7), event-driven: watch first, then validate, repair only what is
// invalid, then wait for the next change. Side effects go through the AgentFs port and the injected watcher.
import path from 'node:path';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/load.ts';
import { AppError, errorFields, errorMessage, errorReason } from '../errors.ts';
import type { Metrics } from '../sys/ports.ts';
import { confFileProblem, hasConfExtension, sortNames } from './conf-dir.ts';
import {
  buildPluginEntry,
  hasOurEntry,
  insertEntry,
  parseJsonObject,
  PLUGIN_TYPE,
  removeEntry,
  renderStandalone,
  standaloneProblem,
} from './conflist.ts';
import type { AgentFs, DirEntry, FileStat } from './fs-port.ts';
import { sameFileState } from './fs-port.ts';
import type { JsonObject } from './go-json.ts';
import { renderKubeconfig } from './kubeconfig.ts';
import { chainedStaleness, convertedName, mergeTargetProblem } from './chained-state.ts';
import { parsePluginKubeconfig } from '../kube/pod-source.ts';
import { KUBECONFIG_FILE, LOG_SOCKET_FILE } from '../run-dir.ts';

export const STANDALONE_DEFAULT_NAME = 'YYY-istio-cni.conf';
export const PLUGIN_BINARY = 'istio-cni';
/** The plugin's runtime next to it in each bin dir (scripts/build.ts): the bun executable and the glibc it runs
 * on, which `istio-cni`, a static launcher, execs. */
export const PLUGIN_RUNTIME_DIR = 'istio-cni.d';

export interface DirWatchHandle {
  close(): void;
}

export type WatchDir = (
  dir: string,
  onChange: (name: string | undefined) => void,
  onError: (error: Error) => void,
) => DirWatchHandle;

export interface InstallerDeps {
  readonly fs: AgentFs;
  readonly watchDir: WatchDir;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now?: () => number;
  /** First back-off after a failed pass (doubling to 30 s); default 500 ms. */
  readonly retryInitialMs?: number;
  /** How long our config file may stay invalid before we move to the next valid file; default 5 s. */
  readonly halfWrittenGraceMs?: number;
}

const HALF_WRITTEN_GRACE_MS = 5_000;

type Area = 'bin' | 'kube' | 'conf';
const ALL_AREAS: readonly Area[] = ['bin', 'kube', 'conf'];

const M_INSTALLS = 'istio_cni_installs_total';
const M_INSTALLS_HELP = 'Total number of CNI plugin installation attempts, by result.';
const M_READY = 'istio_cni_install_ready';
const M_READY_HELP = 'Whether the CNI plugin installation is ready (1) or not (0).';
const M_REINSTALL = 'istio_cni_reinstall_duration_seconds';
const M_REWRITES = 'istio_cni_config_rewrites_total';
const M_FIGHTS = 'istio_cni_config_fights_total';

/** Throttle of conflist rewrites (§1.7, tuned): a bucket of 10 immediate rewrites refilled every 40 ms, so an
 * isolated change is repaired at once and a continuous fight is capped at 25 rewrites/s. */
const BUCKET_SIZE = 10;
const REFILL_MS = 40;
/** Fight detection: more than this many repairs of our entry within the window → warning. */
const FIGHT_THRESHOLD = 10;
const FIGHT_WINDOW_MS = 10_000;
const FIGHT_WARN_EVERY_MS = 30_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

function fsCode(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code;
}

function installError(message: string, cause?: unknown): AppError {
  return new AppError('INSTALL_FAILED', message, cause === undefined ? undefined : { cause });
}

/** Runs a write to a host file; a failure names the file and the setting behind its directory, without the temp
 * file's random name (the same failure must read the same on every retry, so it is logged once). */
async function writingHostFile<T>(file: string, setting: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    throw installError(
      `writing ${file} failed: ${errorReason(error)} (check ${setting} and its mount)`,
      error,
    );
  }
}

export interface InstallerState {
  readonly ready: boolean;
  readonly trackedConfig: string | undefined;
}

export class Installer {
  readonly #config: AgentConfig;
  readonly #deps: InstallerDeps;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #entry: JsonObject;

  #ready = false;
  #areaOk: Record<Area, boolean> = { bin: false, kube: false, conf: false };
  #dirty = new Set<Area>(ALL_AREAS);
  #dirtySince: number | undefined;
  #wake: (() => void) | undefined;
  #fatal: Error | undefined;
  #watches = new Map<string, { handle: DirWatchHandle; ino: number; watched: string; gone: boolean }>();

  #tracked: string | undefined;
  /** The file a symlinked tracked config points to (we write through the link), else undefined. */
  #trackedTarget: string | undefined;
  /** Since when our tracked config has been invalid, and the timer that re-checks it once the grace is over. */
  #trackedInvalidSince: number | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #binaryGroupsSeen: BinaryGroup[] = [];
  #binaryStats = new Map<string, FileStat>();
  #lastWritten: { file: string; text: string } | undefined;
  /** Standalone mode: the file this process has written (ours to rewrite whatever lands in it from then on). */
  #standaloneWritten: string | undefined;
  #tokens = BUCKET_SIZE;
  #lastRefill = 0;
  #repairs: number[] = [];
  #lastFightWarning = -Infinity;
  #otherFiles = new Map<string, number>();
  #reported = new Map<string, string>();
  readonly #retryInitialMs: number;
  readonly #halfWrittenGraceMs: number;
  #retryMs: number;
  #onReady: (() => void) | undefined;
  #listeners = new Set<() => void>();

  constructor(config: AgentConfig, deps: InstallerDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#log = deps.logger;
    this.#now = deps.now ?? (() => performance.now());
    this.#retryInitialMs = deps.retryInitialMs ?? RETRY_MIN_MS;
    this.#halfWrittenGraceMs = deps.halfWrittenGraceMs ?? HALF_WRITTEN_GRACE_MS;
    this.#retryMs = this.#retryInitialMs;
    this.#entry = buildPluginEntry(config);
    this.#setReady(false);
  }

  get state(): InstallerState {
    return { ready: this.#ready, trackedConfig: this.#tracked };
  }

  /** Called after every reconcile pass (tests and the health server observe state without polling). */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called once, after the first successful install. */
  onFirstReady(callback: () => void): void {
    this.#onReady = callback;
  }

  #setReady(ready: boolean): void {
    const wasReady = this.#ready;
    this.#ready = ready;
    this.#deps.metrics.setGauge(M_READY, M_READY_HELP, ready ? 1 : 0);
    if (ready && !wasReady && this.#onReady !== undefined) {
      const callback = this.#onReady;
      this.#onReady = undefined;
      callback();
    }
  }

  /** Log a problem once per distinct message (no log flood on every event). */
  #report(
    key: string,
    message: string,
    fields: Record<string, unknown> = {},
    level: 'warn' | 'error' = 'error',
  ) {
    if (this.#reported.get(key) === message) return;
    this.#reported.set(key, message);
    this.#log[level](fields, message);
  }

  #clearReport(key: string): void {
    this.#reported.delete(key);
  }

  #markDirty(area: Area | 'all'): void {
    if (area === 'all') for (const a of ALL_AREAS) this.#dirty.add(a);
    else this.#dirty.add(area);
    this.#dirtySince ??= this.#now();
    this.#wake?.();
  }

  /** Whether a name in a bin dir is one we install (a file, or a group's directory); every name is, until the first
   * install has read the source dir: another plugin's files there are not ours to check. */
  #isOwnBinName(name: string): boolean {
    if (this.#binaryGroupsSeen.length === 0) return true;
    return this.#binaryGroupsSeen.some((group) =>
      group.subdir === '' ? group.names.includes(name) : group.subdir === name,
    );
  }

  #watchSpecs(): WatchSpec[] {
    const specs: WatchSpec[] = [];
    specs.push({
      dir: this.#config.netDir,
      onChange: (name) => {
        if (name !== undefined && name.includes('.tmp.')) return;
        if (name !== undefined && this.#tracked !== undefined && path.basename(this.#tracked) !== name) {
          this.#otherFiles.set(name, this.#now());
        }
        this.#markDirty('conf');
      },
    });
    const target = this.#trackedTarget;
    if (target !== undefined && path.dirname(target) !== this.#config.netDir) {
      // The owner of a symlinked config rewrites the file the link points to: that is where drift shows.
      specs.push({
        dir: path.dirname(target),
        onChange: (name) => {
          if (name === undefined || name === path.basename(target)) this.#markDirty('conf');
        },
      });
    }
    for (const dir of this.#config.binTargetDirs) {
      // The bin dir's names are read when an event comes, not when the watch is made: the watch is made before the
      // first install learns them and is kept after it.
      specs.push({
        dir,
        onChange: (name) => {
          if (name === undefined || this.#isOwnBinName(name)) this.#markDirty('bin');
        },
      });
      // A group's directory is ours: before the first install it is not there, and the bin dir's watch sees it
      // appear (or go).
      for (const group of this.#binaryGroupsSeen) {
        if (group.subdir === '') continue;
        specs.push({
          dir: path.join(dir, group.subdir),
          optional: true,
          onChange: (name) => {
            if (name === undefined || group.names.includes(name)) this.#markDirty('bin');
          },
        });
      }
    }
    specs.push({ dir: this.#config.serviceAccountDir, onChange: () => this.#markDirty('kube') });
    const caDir = path.dirname(this.#config.kubeCaFile);
    if (!this.#config.skipTlsVerify && caDir !== this.#config.serviceAccountDir) {
      specs.push({ dir: caDir, onChange: () => this.#markDirty('kube') });
    }
    specs.push({
      dir: this.#config.runDir,
      onChange: (name) => {
        if (name === undefined || name === KUBECONFIG_FILE) this.#markDirty('kube');
      },
    });
    return specs;
  }

  /** (Re)creates the directory watches; a missing directory is watched through its nearest existing parent. Runs
   * before every validation so no change between check and wait is missed. */
  async #ensureWatches(): Promise<void> {
    const wanted = new Set<string>();
    for (const spec of this.#watchSpecs()) {
      let watched = spec.dir;
      let info = await this.#deps.fs.stat(watched);
      if (info?.isDirectory !== true && spec.optional === true) continue;
      // A deleted directory has no links, and reading it fails (ENOENT: the readDir port's undefined) or finds
      // nothing; both, so that no file system's odd link count can stop the agent.
      if (
        info?.isDirectory === true &&
        info.links === 0 &&
        ((await this.#deps.fs.readDir(watched)) ?? []).length === 0
      ) {
        this.#stop(
          `${spec.dir} was deleted on the host while mounted here (a package upgrade re-creating it, ...): this container still sees the old, empty directory and cannot write to the new one; exiting so that the kubelet restarts it with the new one mounted`,
        );
        return;
      }
      while (info?.isDirectory !== true && path.dirname(watched) !== watched) {
        watched = path.dirname(watched);
        info = await this.#deps.fs.stat(watched);
      }
      if (info === undefined) continue;
      const key = `${spec.dir}\u0000${watched}`;
      wanted.add(key);
      const existing = this.#watches.get(key);
      // A directory deleted and re-created can get the same inode back: a watch that saw its own directory go
      // (inotify reports the directory's own name then) is renewed whatever the inode says.
      if (existing !== undefined && existing.ino === info.ino && !existing.gone) continue;
      existing?.handle.close();
      const onChange = watched === spec.dir ? spec.onChange : () => this.#markDirty('all');
      const entry = { handle: { close() {} }, ino: info.ino, watched, gone: false };
      const ownName = path.basename(watched);
      try {
        entry.handle = this.#deps.watchDir(
          watched,
          (name) => {
            if (name === ownName) {
              // The directory itself went (deleted or renamed away): everything in it must be checked again.
              entry.gone = true;
              this.#markDirty('all');
            }
            onChange(name);
          },
          (error) => this.#die(error, watched),
        );
        this.#watches.set(key, entry);
        // Changes made before this watch existed (or queued on a watch just closed) produced no event for it:
        // validate again now that the watch is in place.
        this.#markDirty('all');
      } catch (error) {
        if (fsCode(error) === 'ENOENT') {
          this.#markDirty('all');
          continue;
        }
        this.#die(error as Error, watched);
      }
      if (watched !== spec.dir) {
        this.#report(
          `missing:${spec.dir}`,
          `directory ${spec.dir} does not exist; waiting for it to appear`,
          {
            dir: spec.dir,
          },
        );
      }
    }
    for (const [key, watch] of this.#watches) {
      if (!wanted.has(key)) {
        watch.handle.close();
        this.#watches.delete(key);
      }
    }
  }

  #die(error: Error, dir: string): void {
    const hint = WATCH_LIMIT_HINTS.get(fsCode(error)) ?? '';
    this.#stop(`watching ${dir} failed: ${errorMessage(error)}${hint}`, error);
  }

  /** Ends the run loop with an error: the agent cleans up and exits non-zero, for what only a restart fixes. */
  #stop(message: string, cause?: Error): void {
    if (this.#fatal !== undefined) return;
    this.#fatal = new AppError('WATCH_FAILED', message, cause === undefined ? undefined : { cause });
    this.#wake?.();
  }

  #throwIfFatal(): void {
    if (this.#fatal !== undefined) throw this.#fatal;
  }

  #closeWatches(): void {
    for (const watch of this.#watches.values()) watch.handle.close();
    this.#watches.clear();
  }

  /** Temp files of our atomic writes (`<file>.tmp.<12 hex>`, src/sys/fs.ts) left by a crash mid-write: the
   * kubeconfig's and the log socket's (bound under a temp name, then renamed) in the run dir, and CNI configs' in
   * the net dir (the binaries' are cleaned with each copy). */
  async #removeStaleTemps(): Promise<void> {
    const { fs } = this.#deps;
    const ours = [
      {
        dir: this.#config.runDir,
        stale: new RegExp(
          `^(${KUBECONFIG_FILE}|${LOG_SOCKET_FILE.replace('.', '\\.')})\\.tmp\\.[0-9a-f]{12}$`,
        ),
      },
      { dir: this.#config.netDir, stale: /^[^/]+\.(conf|conflist|json)\.tmp\.[0-9a-f]{12}$/ },
    ];
    for (const { dir, stale } of ours) {
      for (const entry of (await fs.readDir(dir)) ?? []) {
        if (entry.isDirectory || !stale.test(entry.name)) continue;
        try {
          if (await fs.remove(path.join(dir, entry.name))) {
            this.#log.info({ file: path.join(dir, entry.name) }, 'removed stale temp file');
          }
        } catch (error) {
          this.#log.warn({ file: entry.name, ...errorFields(error) }, 'could not remove stale temp file');
        }
      }
    }
  }

  /** Runs until the signal aborts (resolves) or a watch dies (rejects). */
  async run(signal: AbortSignal): Promise<void> {
    await this.#removeStaleTemps();
    const onAbort = (): void => this.#wake?.();
    signal.addEventListener('abort', onAbort);
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (!signal.aborted) {
        this.#throwIfFatal();
        await this.#ensureWatches();
        this.#throwIfFatal();
        if (this.#dirty.size > 0) {
          // Re-check after sleeping: the refill happens in #throttleDelay, so a pass must not take a token the
          // sleep only waited for without counting it (that let two writes through per refill).
          for (
            let waitMs = this.#dirty.has('conf') ? this.#throttleDelay() : 0;
            waitMs > 0 && !signal.aborted;
            waitMs = this.#throttleDelay()
          ) {
            await this.#sleep(waitMs, signal);
          }
          if (signal.aborted) break;
          const areas = [...this.#dirty];
          const since = this.#dirtySince;
          this.#dirty.clear();
          this.#dirtySince = undefined;
          const failed = await this.#reconcile(areas, signal);
          if (signal.aborted) break;
          if (failed) {
            if (retryTimer !== undefined) clearTimeout(retryTimer);
            retryTimer = setTimeout(() => this.#markDirty('all'), this.#retryMs);
            this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
          } else {
            this.#retryMs = this.#retryInitialMs;
            if (this.#ready && since !== undefined) {
              this.#deps.metrics.observe(
                M_REINSTALL,
                'Seconds from a detected change to a valid install again.',
                (this.#now() - since) / 1000,
              );
            }
          }
          continue;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          if (this.#dirty.size > 0 || signal.aborted || this.#fatal !== undefined) resolve();
        });
        this.#wake = undefined;
        if (retryTimer !== undefined && this.#dirty.size > 0) {
          clearTimeout(retryTimer);
          retryTimer = undefined;
        }
      }
    } finally {
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      clearTimeout(this.#graceTimer);
      signal.removeEventListener('abort', onAbort);
      this.#closeWatches();
      this.#setReady(false);
    }
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done);
    });
  }

  #throttleDelay(): number {
    const now = this.#now();
    const refill = Math.floor((now - this.#lastRefill) / REFILL_MS);
    if (refill > 0) {
      this.#tokens = Math.min(BUCKET_SIZE, this.#tokens + refill);
      this.#lastRefill += refill * REFILL_MS;
    }
    if (this.#tokens === BUCKET_SIZE) this.#lastRefill = now;
    if (this.#tokens > 0) return 0;
    return REFILL_MS - (now - this.#lastRefill);
  }

  #takeToken(): void {
    if (this.#tokens === BUCKET_SIZE) this.#lastRefill = this.#now();
    this.#tokens = Math.max(0, this.#tokens - 1);
  }

  /** One pass over the given areas, and over every area not in order yet. Returns true when something failed
   * (retry with back-off). Stops between areas once `signal` is aborted: cleanup follows, and an entry written
   * now would only be taken out again. */
  async #reconcile(areas: readonly Area[], signal: AbortSignal): Promise<boolean> {
    let failed = false;
    let changed = false;
    for (const area of ALL_AREAS) {
      if (signal.aborted) return false;
      // The config names the plugin only while its binary and kubeconfig are in place: otherwise every pod
      // sandbox would fail ("failed to find plugin", no kubeconfig). Upstream's installAll stops at the first
      // failed step and its exit cleans up; we keep running, so we take the entry out and retry.
      const withdraw = area === 'conf' && !(this.#areaOk.bin && this.#areaOk.kube);
      // An area that is not in order runs on every pass, whatever woke it: the event that repaired its cause may
      // have come in another area's directory (a token back after the entry was withdrawn), and a pass woken by
      // an unrelated event must not end without retrying it (that pass clears the back-off timer).
      if (!areas.includes(area) && !withdraw && this.#areaOk[area]) continue;
      try {
        const result =
          area === 'bin'
            ? await this.#installBinaries()
            : area === 'kube'
              ? await this.#writeKubeconfig()
              : withdraw
                ? await this.#withdrawConfig()
                : await this.#installConfig();
        this.#areaOk[area] = result !== 'waiting';
        if (result === 'changed') changed = true;
      } catch (error) {
        this.#areaOk[area] = false;
        failed = true;
        const label =
          area === 'bin'
            ? 'COPY_BINARIES_FAILURE'
            : area === 'kube'
              ? 'CREATE_KUBECONFIG_FAILURE'
              : 'CREATE_CNI_CONFIG_FAILURE';
        this.#deps.metrics.increment(M_INSTALLS, M_INSTALLS_HELP, { result: label });
        this.#report(`fail:${area}`, errorMessage(error), { result: label, code: errorFields(error).code });
      }
    }
    const ok = ALL_AREAS.every((area) => this.#areaOk[area]);
    if (ok && (changed || !this.#ready)) {
      this.#deps.metrics.increment(M_INSTALLS, M_INSTALLS_HELP, { result: 'SUCCESS' });
      this.#log.info({ config: this.#tracked }, 'CNI plugin installed; ready');
      for (const area of ALL_AREAS) this.#clearReport(`fail:${area}`);
    }
    this.#setReady(ok);
    for (const listener of this.#listeners) listener();
    return failed;
  }

  // ---- §1.4 binaries -----------------------------------------------------------------------------------------

  /** What the source dir installs: its regular files, and each of its directories as a directory of that
   * directory's regular files (one level: the plugin's runtime, `istio-cni.d`). Directories come first, so a file
   * that runs what is in them (the plugin's launcher) is never installed before it. */
  async #binaryGroups(): Promise<BinaryGroup[]> {
    const { fs } = this.#deps;
    const source = this.#config.binSourceDir;
    const entries = await fs.readDir(source);
    if (entries === undefined) {
      throw installError(`binary source dir ${source} does not exist (CNI_BIN_SOURCE_DIR)`);
    }
    const top: BinaryGroup = { subdir: '', names: [] };
    const groups: BinaryGroup[] = [];
    for (const entry of entries) {
      const info = await fs.stat(path.join(source, entry.name));
      if (info?.isFile === true) top.names.push(entry.name);
      else if (info?.isDirectory === true) {
        const names: string[] = [];
        for (const inner of (await fs.readDir(path.join(source, entry.name))) ?? []) {
          const innerInfo = await fs.stat(path.join(source, entry.name, inner.name));
          if (innerInfo?.isFile === true) names.push(inner.name);
        }
        groups.push({ subdir: entry.name, names });
      }
    }
    // Without the plugin the config would name a binary that is not there, and every pod sandbox would fail.
    if (!top.names.includes(PLUGIN_BINARY)) {
      throw installError(
        `binary source dir ${source} has no ${PLUGIN_BINARY} executable (CNI_BIN_SOURCE_DIR); nothing installed`,
      );
    }
    groups.push(top);
    return groups;
  }

  async #installBinaries(): Promise<'ok' | 'changed'> {
    const { fs } = this.#deps;
    const groups = await this.#binaryGroups();
    if (this.#binaryGroupsSeen.length === 0) this.#binaryGroupsSeen = groups;
    let changed = false;
    for (const dir of this.#config.binTargetDirs) {
      if ((await fs.stat(dir))?.isDirectory !== true) {
        throw installError(`CNI binary dir ${dir} does not exist; create it or fix CNI_BIN_TARGET_DIRS`);
      }
      const listing = (await fs.readDir(dir)) ?? [];
      for (const group of groups) {
        const sourceDir = path.join(this.#config.binSourceDir, group.subdir);
        const written =
          group.subdir === ''
            ? await this.#installGroup(group.names, sourceDir, dir, listing)
            : await this.#installGroupDir(group, sourceDir, dir, listing);
        if (written) changed = true;
      }
    }
    return changed ? 'changed' : 'ok';
  }

  /** Whether `target` already is `from`: the stat we wrote it with, or the same contents and mode. */
  async #isInstalled(from: string, target: string): Promise<boolean> {
    const { fs } = this.#deps;
    const current = await fs.stat(target);
    if (sameFileState(current, this.#binaryStats.get(target))) return true;
    if (current === undefined || !(await fs.sameContents(from, target))) return false;
    if ((await fs.stat(from))?.mode !== current.mode) return false;
    this.#binaryStats.set(target, current);
    return true;
  }

  /** Removes `<name>.tmp.*` left in `dir` by a write that was cut short (a crash, a SIGKILL). */
  async #removeStale(dir: string, listing: readonly DirEntry[], name: string): Promise<void> {
    for (const stale of listing.filter((entry) => entry.name.startsWith(`${name}.tmp.`))) {
      try {
        await this.#deps.fs.removeDir(path.join(dir, stale.name));
      } catch (error) {
        this.#log.warn({ file: stale.name, ...errorFields(error) }, 'could not remove stale temp file');
      }
    }
  }

  /** A subdirectory of the source dir (the plugin's runtime: its loader and libraries) is installed whole: built
   * beside the target and swapped in with renames, so that a plugin starting meanwhile finds the old set or the
   * new one, never the new loader with the old libc. A directory whose files are all in place is left alone. */
  async #installGroupDir(
    group: BinaryGroup,
    sourceDir: string,
    binDir: string,
    listing: readonly DirEntry[],
  ): Promise<boolean> {
    const { fs } = this.#deps;
    await this.#removeStale(binDir, listing, group.subdir);
    const targetDir = path.join(binDir, group.subdir);
    if ((await fs.stat(targetDir))?.isDirectory === true) {
      const installed = await Promise.all(
        group.names.map((name) => this.#isInstalled(path.join(sourceDir, name), path.join(targetDir, name))),
      );
      if (installed.every(Boolean)) return false;
    }
    let staging: string | undefined;
    try {
      staging = await fs.makeStagingDir(targetDir);
      const written = new Map<string, FileStat>();
      for (const name of group.names) {
        written.set(name, await fs.copyFileAtomic(path.join(sourceDir, name), path.join(staging, name)));
      }
      await fs.replaceDir(staging, targetDir);
      // A rename keeps each file's inode, size and mtime: the stats are the installed files' now.
      for (const [name, stat] of written) this.#binaryStats.set(path.join(targetDir, name), stat);
    } catch (error) {
      if (staging !== undefined) await fs.removeDir(staging).catch(() => false);
      throw installError(
        `installing ${sourceDir} as ${targetDir} failed: ${errorMessage(error)}${readOnlyHint(error, binDir)}`,
        error,
      );
    }
    this.#log.info({ binary: targetDir }, 'installed CNI binary directory');
    return true;
  }

  /** Copies the named files of `sourceDir` into `targetDir` unless already there (same stat as written, or same
   * contents and mode); true when something was written. */
  async #installGroup(
    names: readonly string[],
    sourceDir: string,
    targetDir: string,
    listing: readonly DirEntry[],
  ): Promise<boolean> {
    const { fs } = this.#deps;
    let changed = false;
    for (const name of names) {
      await this.#removeStale(targetDir, listing, name);
      const target = path.join(targetDir, name);
      const from = path.join(sourceDir, name);
      if (await this.#isInstalled(from, target)) continue;
      let written: FileStat;
      try {
        written = await fs.copyFileAtomic(from, target);
      } catch (error) {
        throw installError(
          `copying ${from} to ${target} failed: ${errorMessage(error)}${readOnlyHint(error, targetDir)}`,
          error,
        );
      }
      this.#binaryStats.set(target, written);
      this.#log.info({ binary: target }, 'installed CNI binary');
      changed = true;
    }
    return changed;
  }

  // ---- §1.6 kubeconfig ---------------------------------------------------------------------------------------

  async #writeKubeconfig(): Promise<'ok' | 'changed'> {
    const { fs } = this.#deps;
    const config = this.#config;
    const tokenFile = path.join(config.serviceAccountDir, 'token');
    let token: string;
    try {
      token = await fs.readText(tokenFile);
    } catch (error) {
      throw installError(
        `cannot read the service account token ${tokenFile}: ${errorMessage(error)} (SERVICE_ACCOUNT_DIR)`,
        error,
      );
    }
    // What the plugin would reject on every pod (src/kube/pod-source.ts) keeps the entry out instead.
    if (token.trim() === '') {
      throw installError(`the service account token ${tokenFile} is empty (SERVICE_ACCOUNT_DIR)`);
    }
    let ca: Uint8Array | undefined;
    if (!config.skipTlsVerify) {
      try {
        ca = await fs.readBytes(config.kubeCaFile);
      } catch (error) {
        throw installError(
          `cannot read the API server CA ${config.kubeCaFile}: ${errorMessage(error)} (set KUBE_CA_FILE, or SKIP_TLS_VERIFY=true)`,
          error,
        );
      }
      if (!Buffer.from(ca).toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
        throw installError(
          `the API server CA ${config.kubeCaFile} holds no PEM certificate (set KUBE_CA_FILE, or SKIP_TLS_VERIFY=true)`,
        );
      }
    }
    const input = {
      protocol: config.kubernetesServiceProtocol,
      host: config.kubernetesServiceHost,
      port: config.kubernetesServicePort,
      ca,
      skipTlsVerify: config.skipTlsVerify,
      token,
    };
    const text = renderKubeconfig(input);
    const file = path.join(config.runDir, KUBECONFIG_FILE);
    // The plugin's own reader decides: whatever it would reject on every pod keeps the entry out instead.
    try {
      parsePluginKubeconfig(text, file);
    } catch (error) {
      throw installError(
        `the plugin could not use this kubeconfig: ${errorMessage(error)} (SERVICE_ACCOUNT_DIR, KUBE_CA_FILE, KUBERNETES_SERVICE_HOST/PORT)`,
      );
    }
    const current = await fs.stat(file);
    if (current?.mode === config.kubeconfigMode) {
      const existing = await fs.readText(file).catch(() => undefined);
      if (existing === text) return 'ok';
    }
    await writingHostFile(file, 'CNI_AGENT_RUN_DIR', () =>
      fs.writeFileAtomic(file, text, config.kubeconfigMode),
    );
    this.#log.info({ file, content: renderKubeconfig(input, true) }, 'wrote plugin kubeconfig');
    return 'changed';
  }

  // ---- §1.5 CNI config ---------------------------------------------------------------------------------------

  async #validCandidates(): Promise<string[]> {
    const { fs } = this.#deps;
    const dir = this.#config.netDir;
    const entries = await fs.readDir(dir);
    if (entries === undefined) return [];
    const names = sortNames(
      entries.filter((e) => !e.isDirectory && hasConfExtension(e.name)).map((e) => e.name),
    );
    const valid: string[] = [];
    for (const name of names) {
      const file = path.join(dir, name);
      let problem: string | undefined;
      try {
        const info = await fs.stat(file);
        problem =
          info?.isFile === true ? confFileProblem(name, await fs.readText(file)) : 'not a regular file';
      } catch (error) {
        problem = `unreadable: ${errorMessage(error)}`;
      }
      if (problem === undefined) {
        this.#clearReport(`invalid:${name}`);
        valid.push(name);
      } else {
        this.#report(`invalid:${name}`, `skipping invalid CNI config ${file}: ${problem}`, { file }, 'warn');
      }
    }
    return valid;
  }

  /** The primary file (chained) per §1.5.2, or undefined while it does not exist yet (we wait for an event). */
  async #primaryPath(): Promise<string | undefined> {
    const { fs } = this.#deps;
    const dir = this.#config.netDir;
    const name = this.#config.confName;
    if (name !== '') {
      const candidates = [name];
      if (name.endsWith('.conf')) candidates.push(`${name}list`);
      else if (name.endsWith('.conflist')) candidates.push(name.slice(0, -'list'.length));
      for (const candidate of candidates) {
        const info = await fs.stat(path.join(dir, candidate));
        if (info !== undefined) {
          await this.#reportPreemption(path.join(dir, candidate));
          return path.join(dir, candidate);
        }
      }
      this.#report(
        'waiting',
        `CNI config ${path.join(dir, name)} (CNI_CONF_NAME) does not exist yet; waiting`,
        {
          dir,
        },
        'warn',
      );
      return undefined;
    }
    const valid = await this.#validCandidates();
    const tracked = this.#tracked;
    let halfWritten = false;
    if (tracked !== undefined && path.dirname(tracked) === dir) {
      const name = path.basename(tracked);
      // Our file turned invalid (a CNI writing it in place, not atomically, is half-way through): libcni picks it
      // again once it is whole, so stay on it for a while rather than move our entry to (and convert) the next
      // valid file. One that stays broken (its CNI replaced by another) is left after the grace.
      const sortsFirst = valid[0] === undefined || sortNames([name, valid[0]])[0] === name;
      halfWritten = !valid.includes(name) && sortsFirst && (await fs.stat(tracked))?.isFile === true;
    }
    if (!halfWritten) {
      this.#trackedInvalidSince = undefined;
    } else {
      const now = this.#now();
      this.#trackedInvalidSince ??= now;
      const left = this.#halfWrittenGraceMs - (now - this.#trackedInvalidSince);
      if (left > 0 || valid[0] === undefined) {
        clearTimeout(this.#graceTimer);
        if (left > 0) this.#graceTimer = setTimeout(() => this.#markDirty('conf'), left);
        return tracked;
      }
      this.#log.warn(
        { file: tracked, seconds: this.#halfWrittenGraceMs / 1000 },
        'our CNI config stayed invalid; moving our entry to the next valid file',
      );
    }
    if (valid[0] === undefined) {
      this.#report(
        'waiting',
        `cannot find existing CNI network config in ${dir}; waiting for the primary CNI to write one (MOUNTED_CNI_NET_DIR)`,
        { dir },
        'warn',
      );
      return undefined;
    }
    const first = path.join(dir, valid[0]);
    // A .conf its owner wrote again after our conversion is the same network: converted again, nothing moves.
    if (this.#tracked !== undefined && this.#tracked !== first && convertedName(first) !== this.#tracked) {
      // Quirk §8.1 fixed: follow libcni's current choice instead of pinning the first file until restart.
      this.#log.warn(
        { previous: this.#tracked, primary: first },
        `CNI config file ${this.#tracked} preempted by ${first}; moving our entry`,
      );
    }
    return first;
  }

  /** With CNI_CONF_NAME our entry stays in the named file, as upstream's; when libcni would load another file
   * first, pods on the node get no rules, so say so (upstream's warning, §1.5.4 step 3), once per pair. */
  async #reportPreemption(named: string): Promise<void> {
    const first = (await this.#validCandidates())[0];
    const expected = first === undefined ? undefined : path.join(this.#config.netDir, first);
    if (expected === undefined || expected === named || convertedName(expected) === named) {
      this.#clearReport('preempted');
      return;
    }
    this.#report(
      'preempted',
      `CNI config file ${named} preempted by ${expected}`,
      {
        file: named,
        primary: expected,
        hint: 'the runtime uses the other file: unset CNI_CONF_NAME or remove it',
      },
      'warn',
    );
  }

  async #withdrawConfig(): Promise<'waiting'> {
    const files = await removeConfigEntries(this.#config, this.#deps.fs, this.#log, this.#tracked);
    if (files.length > 0) {
      // Our own removal is not another agent rewriting the file.
      this.#lastWritten = undefined;
      this.#log.warn(
        { files },
        'took the istio-cni entry out of the CNI config: the plugin binary or its kubeconfig is not installed',
      );
    }
    return 'waiting';
  }

  async #installConfig(): Promise<'ok' | 'changed' | 'waiting'> {
    return this.#config.chained ? this.#installChained() : this.#installStandalone();
  }

  async #installStandalone(): Promise<'ok' | 'changed'> {
    const { fs } = this.#deps;
    const file = path.join(this.#config.netDir, this.#config.confName || STANDALONE_DEFAULT_NAME);
    const text = renderStandalone(this.#entry);
    const mode = this.#config.confGroupRead ? 0o640 : 0o600;
    const info = await fs.stat(file);
    this.#tracked = file;
    if (info?.isFile === true && info.mode === mode && (await fs.readText(file)) === text) {
      this.#standaloneWritten = file;
      return 'ok';
    }
    if (info !== undefined && !info.isFile) throw installError(`${file} exists and is not a regular file`);
    if ((await fs.stat(this.#config.netDir)) === undefined) {
      throw installError(`CNI net dir ${this.#config.netDir} does not exist (MOUNTED_CNI_NET_DIR)`);
    }
    // A file found at start that is not a standalone istio-cni config is someone else's (CNI_CONF_NAME naming the
    // node's primary conflist): replacing it would take the node's pod network down, and cleanup, seeing our
    // content, would then delete it. Once this process has written the file, whatever lands in it is drift.
    if (info !== undefined && this.#standaloneWritten !== file) {
      const problem = standaloneProblem(await fs.readText(file));
      if (problem !== undefined) {
        throw installError(
          `${file} holds another config (${problem}); standalone mode will not replace it: give CNI_CONF_NAME a ` +
            `name of its own (default ${STANDALONE_DEFAULT_NAME}), or set CHAINED_CNI_PLUGIN=true to chain into it`,
        );
      }
    }
    await writingHostFile(file, 'MOUNTED_CNI_NET_DIR', () => fs.writeFileAtomic(file, text, mode));
    this.#standaloneWritten = file;
    this.#log.info({ file }, 'wrote standalone CNI config');
    return 'changed';
  }

  async #installChained(): Promise<'ok' | 'changed' | 'waiting'> {
    const { fs } = this.#deps;
    const primary = await this.#primaryPath();
    if (primary === undefined) return 'waiting';
    this.#clearReport('waiting');
    let text: string;
    let info: FileStat | undefined;
    try {
      info = await fs.stat(primary);
      if (info === undefined) return 'waiting';
      if (!info.isFile) throw installError(`CNI config ${primary} is not a regular file`);
      text = await fs.readText(primary);
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw installError(`cannot read CNI config ${primary}: ${errorMessage(error)}`, error);
    }
    let doc: JsonObject;
    try {
      doc = parseJsonObject(text, `CNI config ${primary}`);
    } catch (error) {
      // Never overwrite a file we cannot parse (another agent may be half-way through writing it).
      this.#report('unparsable', `${errorMessage(error)}; not touching it, waiting for a valid config`, {
        file: primary,
      });
      return 'waiting';
    }
    // Never merge into what the runtime would not load (an empty `plugins` list, a plugin without `type`, …): the
    // result could be a network of istio-cni alone. Wait for the owner to write a whole config.
    const problem = mergeTargetProblem(primary, doc, text, this.#config.confName !== '');
    if (problem !== undefined) {
      this.#report(
        'unparsable',
        `CNI config ${primary}: ${problem}; not touching it, waiting for a valid config`,
        {
          file: primary,
        },
      );
      return 'waiting';
    }
    this.#clearReport('unparsable');
    const destination = convertedName(primary) ?? primary;
    const existing =
      destination === primary || (await fs.stat(destination)) === undefined
        ? undefined
        : await fs.readText(destination).catch(() => '');
    // A list that holds our entry is ours: an earlier conversion (its .conf written again by its owner, as multus
    // does on every change of its delegate, or left behind by a crash between writing the list and removing the
    // .conf). Converting again replaces it, as upstream always does.
    if (existing !== undefined && !hasOurEntry(existing)) {
      // Converting would overwrite another CNI's list (an upgrade from .conf to .conflist that left both).
      this.#report(
        'conflict',
        `cannot convert ${primary} into a list: ${destination} exists and would be overwritten; the runtime loads ${path.basename(primary)} first — remove whichever of the two the primary CNI no longer maintains`,
        { file: primary, destination },
      );
      return 'waiting';
    }
    this.#clearReport('conflict');
    // A symlinked config is written through the link: replacing the link with a file would keep the owner's later
    // rewrites of the real file from the runtime (and lose the operator's layout). A converted `.conf` becomes a
    // new file beside it, and only the link goes.
    const target = destination === primary ? await resolvedPath(fs, primary) : destination;
    this.#trackedTarget = target === destination ? undefined : target;
    if (destination === primary && chainedStaleness(doc, this.#entry) === undefined) {
      await this.#dropOldTracked(primary);
      this.#tracked = primary;
      return 'ok';
    }
    const merged = insertEntry(text, this.#entry, `CNI config ${primary}`, primary.endsWith('.conflist'));
    this.#takeToken();
    if (destination === primary) {
      // The owner may rewrite the file while we merge: then our merge of the old text must not replace theirs.
      const replaced = await writingHostFile(target, 'MOUNTED_CNI_NET_DIR', () =>
        fs.replaceIfUnchanged(target, merged, info.mode, info),
      );
      if (!replaced) {
        this.#log.debug({ file: primary }, 'CNI config changed while merging; merging again');
        this.#markDirty('conf');
        return 'waiting';
      }
    } else {
      await writingHostFile(destination, 'MOUNTED_CNI_NET_DIR', () =>
        fs.writeFileAtomic(destination, merged, info.mode),
      );
      // The same race for a conversion: an owner's rewrite of its .conf meanwhile stays (and is converted again
      // over our list on the next pass, as above).
      if (!(await fs.removeIfUnchanged(primary, info))) {
        this.#log.debug({ file: primary }, 'CNI config changed while converting; converting again');
        this.#markDirty('conf');
        return 'waiting';
      }
    }
    this.#noteRepair(destination, text);
    this.#lastWritten = { file: destination, text: merged };
    await this.#dropOldTracked(destination);
    this.#tracked = destination;
    this.#deps.metrics.increment(M_REWRITES, 'Times the agent (re)wrote its entry into the CNI config.');
    this.#log.info(
      { file: destination, from: destination === primary ? undefined : primary },
      'wrote CNI config',
    );
    return 'changed';
  }

  /** After moving to a new primary, take our entry out of the old one (a runtime must not keep using it). */
  async #dropOldTracked(current: string): Promise<void> {
    const old = this.#tracked;
    if (old === undefined || old === current) return;
    try {
      await removeEntryFromFile(this.#deps.fs, old);
    } catch (error) {
      this.#log.warn(
        { file: old, ...errorFields(error) },
        'could not remove our entry from the old CNI config',
      );
    }
  }

  /** Counts repairs of a file we wrote earlier (someone else rewrote it) and warns when it looks like a fight. */
  #noteRepair(file: string, foundText: string): void {
    const last = this.#lastWritten;
    if (last === undefined || last.file !== file || last.text === foundText) return;
    const now = this.#now();
    this.#repairs.push(now);
    while (this.#repairs.length > 0 && (this.#repairs[0] ?? now) < now - FIGHT_WINDOW_MS)
      this.#repairs.shift();
    if (this.#repairs.length <= FIGHT_THRESHOLD) return;
    this.#deps.metrics.increment(
      M_FIGHTS,
      'Times a fight over the CNI config with another agent was detected.',
    );
    if (now - this.#lastFightWarning < FIGHT_WARN_EVERY_MS) return;
    this.#lastFightWarning = now;
    const others = [...this.#otherFiles]
      .filter(([, at]) => at >= now - FIGHT_WINDOW_MS)
      .map(([name]) => name);
    const hint = file.includes('cilium')
      ? ' Cilium: set cni.exclusive=false.'
      : ' Configure the other CNI agent not to own/regenerate this file (e.g. Cilium cni.exclusive=false), or pin CNI_CONF_NAME.';
    this.#log.warn(
      { file, rewrites: this.#repairs.length, windowSeconds: FIGHT_WINDOW_MS / 1000, otherFiles: others },
      `Configuration has been reconciled multiple times in a short period of time: CNI config ${file} was rewritten by another process ${this.#repairs.length} times in ${FIGHT_WINDOW_MS / 1000}s; another agent is fighting over it (repairs are throttled).${hint}`,
    );
  }
}

/** `file` with its symlinks resolved; `file` itself if it vanished meanwhile (the caller's write then fails or
 * creates it, as without a link). */
async function resolvedPath(fs: AgentFs, file: string): Promise<string> {
  return fs.realPath(file).catch(() => file);
}

/** Installs into a read-only bin dir fail on platforms whose default one is read-only (GKE's /opt, ...): say
 * which setting points elsewhere. */
function readOnlyHint(error: unknown, dir: string): string {
  const readOnly = fsCode(error) === 'EROFS' || /read-only file system/i.test(errorMessage(error));
  return readOnly
    ? ` — ${dir} is read-only on this node: set CNI_BIN_TARGET_DIRS (chart: global.platform / cni.cniBinDir) to the writable CNI bin dir of this platform`
    : '';
}

/** A directory the agent watches; `optional`: one of ours, not watched (and not waited for) while missing. */
interface WatchSpec {
  readonly dir: string;
  readonly optional?: boolean;
  readonly onChange: (name: string | undefined) => void;
}

/** Files of the binary source dir installed together: `subdir` '' for its top level. */
interface BinaryGroup {
  readonly subdir: string;
  readonly names: string[];
}

/** What an inotify failure means for the operator: ENOSPC from inotify_add_watch, EMFILE from inotify_init. */
const WATCH_LIMIT_HINTS: ReadonlyMap<string | undefined, string> = new Map([
  ['ENOSPC', ' (inotify limit reached: raise fs.inotify.max_user_watches)'],
  ['EMFILE', ' (inotify instance limit or open-file limit reached: raise fs.inotify.max_user_instances)'],
]);

/** How often removeEntryFromFile reads a config again because its owner rewrote it meanwhile. */
const REMOVE_ENTRY_ATTEMPTS = 5;

/** Removes the istio-cni entries from a chained config, atomically (through a symlink), keeping the mode. The
 * owner may rewrite the file at the same moment (both agents restarting together, istio#33971): our edit of the
 * older text does not replace its update (but for replaceIfUnchanged's check-to-rename window); the edit is made
 * again on the new text. */
export async function removeEntryFromFile(fs: AgentFs, file: string): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const info = await fs.stat(file);
    if (info?.isFile !== true) return false;
    const cleaned = removeEntry(await fs.readText(file), `CNI config ${file}`);
    if (cleaned === undefined) return false;
    if (await fs.replaceIfUnchanged(await resolvedPath(fs, file), cleaned, info.mode, info)) return true;
    if (attempt === REMOVE_ENTRY_ATTEMPTS) {
      throw installError(
        `CNI config ${file} changed ${REMOVE_ENTRY_ATTEMPTS} times while istio-cni's entry was being removed from it; left as its owner wrote it`,
      );
    }
  }
}

/** Shutdown / `uninstall` cleanup (§1.10). Order matters: the config entry first, then the kubeconfig, then the
 * binary — the first failure stops the rest, so a config never names a plugin that is gone. Returns what it
 * removed or changed. */
export async function cleanupNode(
  config: AgentConfig,
  fs: AgentFs,
  logger: Logger,
  trackedConfig?: string,
): Promise<string[]> {
  const removed = await removeConfigEntries(config, fs, logger, trackedConfig);
  const kubeconfig = path.join(config.runDir, KUBECONFIG_FILE);
  if (await fs.remove(kubeconfig)) {
    logger.info('removed plugin kubeconfig');
    removed.push(kubeconfig);
  }
  removed.push(...(await removeTempsOf(fs, config.runDir, [KUBECONFIG_FILE, LOG_SOCKET_FILE], logger)));
  for (const dir of config.binTargetDirs) {
    // The launcher first: it must never outlive the runtime it runs.
    if (await fs.remove(path.join(dir, PLUGIN_BINARY))) {
      logger.info({ dir }, 'removed istio-cni binary');
      removed.push(path.join(dir, PLUGIN_BINARY));
    }
    if (await fs.removeDir(path.join(dir, PLUGIN_RUNTIME_DIR))) {
      logger.info({ dir }, 'removed istio-cni runtime');
      removed.push(path.join(dir, PLUGIN_RUNTIME_DIR));
    }
    removed.push(...(await removeTempsOf(fs, dir, [PLUGIN_BINARY, PLUGIN_RUNTIME_DIR], logger)));
  }
  return removed;
}

/** Removes `<name>.tmp.*` of the named files from `dir`: writes a SIGKILL cut short (src/sys/fs.ts tempPathFor).
 * A running agent clears them at its next pass; after cleanup nothing else ever would, and a kubeconfig's temp holds
 * the service-account token. Returns the paths removed. */
async function removeTempsOf(
  fs: AgentFs,
  dir: string,
  names: readonly string[],
  logger: Logger,
): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of (await fs.readDir(dir)) ?? []) {
    if (!names.some((name) => entry.name.startsWith(`${name}.tmp.`))) continue;
    const file = path.join(dir, entry.name);
    if (await fs.removeDir(file)) {
      logger.info({ file }, 'removed stale temp file');
      removed.push(file);
    }
  }
  return removed;
}

/** Whether a config our cleanup could not handle may still name the plugin: its text has `"istio-cni"` in it. One we
 * cannot even read is not ours to worry about (a dangling link, say): it never blocks the cleanup. */
async function mayNamePlugin(fs: AgentFs, file: string): Promise<boolean> {
  try {
    return (await fs.readText(file)).includes(`"${PLUGIN_TYPE}"`);
  } catch {
    return false;
  }
}

/** Takes our entry out of every config in the net dir (chained) or deletes our standalone file; returns the files
 * changed. A config it cannot parse or rewrite throws when it is the tracked one or names the plugin. */
async function removeConfigEntries(
  config: AgentConfig,
  fs: AgentFs,
  logger: Logger,
  trackedConfig: string | undefined,
): Promise<string[]> {
  const changed: string[] = [];
  if (config.chained) {
    const files = new Set<string>(trackedConfig === undefined ? [] : [trackedConfig]);
    for (const entry of (await fs.readDir(config.netDir)) ?? []) {
      if (!entry.isDirectory && hasConfExtension(entry.name)) files.add(path.join(config.netDir, entry.name));
    }
    for (const file of files) {
      let removed = false;
      try {
        removed = await removeEntryFromFile(fs, file);
      } catch (error) {
        // Going on would remove the binary a config may still name (field lesson 20, istio#20238): stop, as for the
        // tracked file.
        if (file === trackedConfig || (await mayNamePlugin(fs, file))) throw error;
        logger.debug({ file, ...errorFields(error) }, 'skipping unparsable config during cleanup');
      }
      if (removed) {
        changed.push(file);
        logger.info({ file }, 'removed istio-cni entry from CNI config');
      }
    }
  } else {
    // Quirk §8.3 fixed: only the standalone file we own is deleted, never a primary config.
    const file = trackedConfig ?? path.join(config.netDir, config.confName || STANDALONE_DEFAULT_NAME);
    const info = await fs.stat(file);
    if (info?.isFile === true && standaloneProblem(await fs.readText(file)) === undefined) {
      await fs.remove(file);
      changed.push(file);
      logger.info({ file }, 'removed standalone CNI config');
    }
  }
  return changed;
}
