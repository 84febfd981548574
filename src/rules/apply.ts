// Applies a CaptureConfig inside a pod network namespace (behaviour §2.8, §2.9.5, §2.11), with as few process
// spawns as possible because the plugin runs this for every pod:
//   1. one probe (`head` of four /proc/net files, see netns-probe.ts): legacy tables per family + local addresses;
//   2. per family one `iptables-restore --noflush` (legacy only when it already holds rules, else nft);
//   3. one `ip -force -batch -` for the ::6 address and TPROXY policy routing, when needed.
// The save/`-C` dance of upstream runs only when it can matter: when a restore fails (existing ISTIO chains from an
// earlier ADD → no-op if identical, error naming the conflict otherwise) or when legacy already has rules.
// Restore is committed per table by iptables, so a failure after a committed table is rolled back with an undo
// document: a failed apply leaves the netns as it was.
import type { Logger } from 'pino';
import type { CaptureConfig } from './capture-config.ts';
import type { Exec, ExecResult } from '../sys/ports.ts';
import type { IpFamily, Rule, TableName } from './model.ts';
import { AppError, ExecError } from '../errors.ts';
import { buildCaptureRules } from './build.ts';
import { validateCaptureConfig } from './validate.ts';
import { renderRestoreDocument } from './render-iptables.ts';
import {
  PROBE_ARGV,
  PROBE_FILES,
  decideIpv6,
  parseIpAddrOutput,
  parseNetnsProbe,
  probeFilesFromHead,
} from './netns-probe.ts';
import type { NetnsProbe } from './netns-probe.ts';
import {
  committedTables,
  holdsPlannedChains,
  parseSavedState,
  renderCheckDocument,
  renderUndoDocument,
  structuralDelta,
} from './iptables-state.ts';
import type { SavedState } from './iptables-state.ts';
import { renderNftRemoval, renderNftTransaction } from './render-nft.ts';

export type RuleBackend = 'iptables' | 'nftables';
export type IptablesVariant = 'legacy' | 'nft';

export interface RuleTarget {
  /** Network namespace path (CNI_NETNS, /proc/<pid>/ns/net, …). */
  readonly netns: string;
  readonly backend: RuleBackend;
  /** Force an iptables variant instead of detecting it (FORCE_IPTABLES_BINARY on the agent side). */
  readonly iptablesVariant?: IptablesVariant;
  /** For pods in a non-initial user namespace: that namespace's path. */
  readonly userns?: string;
  /** Start the IPv4 iptables-nft restore in parallel with the netns probe (default true). Pass false for pods
   * that already run traffic and may hold legacy rules (repair): there the speculative nft rules would be live
   * for a few milliseconds before being taken back. */
  readonly speculative?: boolean;
}

export interface ApplyOutcome {
  /** False when identical rules were already present (idempotent re-ADD). */
  readonly changed: boolean;
  readonly ipv6: boolean;
  /** The iptables variant used per family (iptables backend only). */
  readonly variants?: { readonly v4: IptablesVariant | 'plain'; readonly v6?: IptablesVariant | 'plain' };
}

export interface ApplyDeps {
  readonly exec: Exec;
  readonly logger: Logger;
  /** Reads /proc/net files (by name) as the netns at `netns` shows them, without a process: the compiled plugin's
   * probe (src/sys/thread-netns.ts). Files that cannot be read are left out. Without it the probe runs `head`. */
  readonly readProcNet?: (netns: string, names: readonly string[]) => Promise<ReadonlyMap<string, string>>;
}

const TIMEOUT_MS = 60_000;

interface Binaries {
  readonly variant: IptablesVariant | 'plain';
  readonly restore: string;
  readonly save: string;
  readonly iptables: string;
  /** Legacy iptables from 1.6.2 on: writes take `--wait=30` and the pod-scoped lock (§2.8 step 6). */
  readonly legacy: boolean;
}

function binariesFor(family: IpFamily, variant: IptablesVariant | 'plain'): Binaries {
  const base = family === 'v4' ? 'iptables' : 'ip6tables';
  const suffix = variant === 'plain' ? '' : `-${variant}`;
  return {
    variant,
    restore: `${base}${suffix}-restore`,
    save: `${base}${suffix}-save`,
    iptables: `${base}${suffix}`,
    legacy: variant === 'legacy',
  };
}

/** Whether `<bin>-save --version` output names a legacy iptables that takes `--wait` (≥ 1.6.2), as upstream's
 * DetectIptablesVersion reads it: `nf_tables` in it is the nft variant; no version at all is legacy 0.0.0. */
export function isWaitingLegacy(versionOutput: string): boolean {
  if (versionOutput.includes('nf_tables')) return false;
  const match = /v(\d+)\.(\d+)\.(\d+)/.exec(versionOutput);
  if (match === null) return false;
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return major > 1 || (major === 1 && (minor > 6 || (minor === 6 && patch >= 2)));
}

/** The plain `iptables` candidate (upstream's third): its version decides whether it writes as legacy. One more
 * spawn, only on nodes where iptables-nft is missing or unusable. */
async function plainBinaries(ns: PodNetns, family: IpFamily): Promise<Binaries> {
  const bin = binariesFor(family, 'plain');
  let output = '';
  try {
    const version = await ns.run([bin.save, '--version']);
    output = `${version.stdout}${version.stderr}`;
  } catch (error) {
    if (!(error instanceof ExecError && error.code === 'BINARY_MISSING')) throw error;
  }
  return { ...bin, legacy: isWaitingLegacy(output) };
}

/** Renders exit codes 1–4 as istio-iptables does (§2.8 step 6, §2.12): the kind first, then stderr after its
 * `<program> <version>:` prefix; which binary and family failed comes last, so the message still says so. */
function xtablesError(binary: string, family: IpFamily, result: ExecResult): ExecError {
  const kinds = [
    '',
    'xtables other problem',
    'xtables parameter problem',
    'xtables version problem',
    'xtables resource problem',
  ];
  const stderr = result.stderr.trim();
  const kind = kinds[result.exitCode];
  const message =
    kind === undefined || kind === ''
      ? `${binary} failed (${family}): exit code ${result.exitCode}: ${stderr}`
      : `${kind}: ${stderr.slice(stderr.indexOf(':') + 1).trim()} (${binary}, ${family})`;
  return new ExecError('EXEC_FAILED', message, { exitCode: result.exitCode, stderr: result.stderr });
}

class PodNetns {
  readonly #exec: Exec;
  readonly #target: RuleTarget;
  constructor(exec: Exec, target: RuleTarget) {
    this.#exec = exec;
    this.#target = target;
  }
  get netns(): string {
    return this.#target.netns;
  }
  run(argv: readonly string[], input?: string, env?: Record<string, string>): Promise<ExecResult> {
    return this.#exec.run({
      argv,
      netns: this.#target.netns,
      ...(this.#target.userns === undefined ? {} : { userns: this.#target.userns }),
      ...(input === undefined ? {} : { input }),
      ...(env === undefined ? {} : { env }),
      timeoutMs: TIMEOUT_MS,
    });
  }
  /** Runs an xtables write command with the pod-scoped lock on legacy (never the node lock). */
  xtables(bin: Binaries, command: string, args: readonly string[], input?: string): Promise<ExecResult> {
    if (!bin.legacy) return this.run([command, ...args], input);
    return this.run([command, ...args, '--wait=30'], input, { XTABLES_LOCKFILE: this.#target.netns });
  }
}

async function probeNetns(ns: PodNetns, deps: ApplyDeps): Promise<NetnsProbe> {
  if (deps.readProcNet !== undefined) {
    const files = await deps.readProcNet(ns.netns, PROBE_FILES);
    if (!files.has('fib_trie'))
      throw new ExecError('NETNS', `failed to inspect netns: cannot read ${ns.netns}'s fib_trie`);
    return parseNetnsProbe(files);
  }
  let result: ExecResult;
  try {
    result = await ns.run(PROBE_ARGV);
  } catch (error) {
    // No `head` (a minimal image): list addresses with ip and let legacy detection run iptables-legacy-save.
    if (!(error instanceof ExecError && error.code === 'BINARY_MISSING')) throw error;
    const ip = await ns.run(['ip', '-o', 'addr', 'show']);
    if (ip.exitCode !== 0) throw new ExecError('NETNS', `failed to list addresses: ${ip.stderr.trim()}`);
    return { legacyTables: { v4: ['unknown'], v6: ['unknown'] }, addresses: parseIpAddrOutput(ip.stdout) };
  }
  // head exits 1 when a file is absent (no ip6_tables module, IPv6 disabled): the sections it printed still count.
  const files = probeFilesFromHead(result.stdout);
  if (!files.has('fib_trie')) {
    throw new ExecError('NETNS', `failed to inspect netns: ${result.stderr.trim()}`, {
      exitCode: result.exitCode,
      stderr: result.stderr,
    });
  }
  return parseNetnsProbe(files);
}

/** Decides the variant for one family; returns the legacy save output when it was needed for the decision. */
async function chooseBinaries(
  ns: PodNetns,
  family: IpFamily,
  legacyTables: readonly string[],
  forced: IptablesVariant | undefined,
): Promise<{ bin: Binaries; saved?: SavedState }> {
  if (forced !== undefined) return { bin: binariesFor(family, forced) };
  if (legacyTables.length > 0) {
    const legacy = binariesFor(family, 'legacy');
    try {
      const save = await ns.run([legacy.save]);
      if (save.exitCode === 0 && /^-A /m.test(save.stdout))
        return { bin: legacy, saved: parseSavedState(save.stdout) };
    } catch (error) {
      if (!(error instanceof ExecError && error.code === 'BINARY_MISSING')) throw error;
    }
  }
  return { bin: binariesFor(family, 'nft') };
}

/** Upstream's delta check against existing ISTIO state: structure first, then `-C` of every planned rule — all
 * `-C` lines in one restore document (restore accepts them), so the check costs one spawn, not one per rule. */
async function findDelta(
  ns: PodNetns,
  bin: Binaries,
  state: SavedState,
  rules: readonly Rule[],
): Promise<string[]> {
  const problems = structuralDelta(state, rules);
  if (problems.length > 0) return problems;
  const document = renderCheckDocument(rules);
  const result = await ns.xtables(bin, bin.restore, ['--noflush'], document);
  if (result.exitCode === 0) return [];
  const line = /line:? (\d+)/.exec(result.stderr)?.[1];
  const text = line === undefined ? undefined : document.split('\n')[Number(line) - 1];
  return [text === undefined ? `rule check failed: ${result.stderr.trim()}` : `rule not present: ${text}`];
}

interface FamilyPlan {
  readonly family: IpFamily;
  readonly rules: readonly Rule[];
  readonly document: string;
  bin: Binaries;
  saved?: SavedState;
}

/** What iptables-nft prints when the kernel has no usable nf_tables (it commits nothing then). */
const NO_NF_TABLES = /Failed to initialize nft|Could not fetch rule set generation id/;

async function restore(ns: PodNetns, plan: FamilyPlan): Promise<ExecResult> {
  const plain = async () => {
    plan.bin = await plainBinaries(ns, plan.family);
    return ns.xtables(plan.bin, plan.bin.restore, ['--noflush'], plan.document);
  };
  let result: ExecResult;
  try {
    result = await ns.xtables(plan.bin, plan.bin.restore, ['--noflush'], plan.document);
  } catch (error) {
    // iptables-nft-restore missing: fall back to plain iptables-restore (upstream's third candidate).
    if (plan.bin.variant === 'nft' && error instanceof ExecError && error.code === 'BINARY_MISSING')
      return plain();
    throw error;
  }
  // Present but unusable (a kernel without nf_tables): upstream's probe rule would fail there too and it would
  // go on to plain iptables; we learn it from the restore itself instead of probing on every ADD.
  if (plan.bin.variant === 'nft' && result.exitCode !== 0 && NO_NF_TABLES.test(result.stderr)) return plain();
  return result;
}

async function undo(
  ns: PodNetns,
  plan: FamilyPlan,
  tables: readonly TableName[],
  logger: Logger,
): Promise<void> {
  if (tables.length === 0) return;
  const result = await ns.xtables(
    plan.bin,
    plan.bin.restore,
    ['--noflush'],
    renderUndoDocument(plan.rules, tables),
  );
  if (result.exitCode !== 0)
    logger.warn({ stderr: result.stderr, tables }, 'rollback of a partial restore failed');
}

/** A restore killed at its timeout has committed some prefix of its tables, which one is unknown: one save (on this
 * rare path only) tells. Every planned chain in place with its planned rule count is a whole ruleset — all of this
 * restore, or an earlier ADD's identical rules (a re-ADD's restore is no-op then, and not ours to undo) — and is
 * left. Otherwise the tables that hold a planned chain are this restore's committed prefix, and are taken back.
 * Best effort: the caller's error is what the ADD reports. */
async function takeBackKilled(ns: PodNetns, plan: FamilyPlan, error: unknown, logger: Logger): Promise<void> {
  if (!(error instanceof ExecError && error.timedOut)) return;
  try {
    const save = await ns.run([plan.bin.save]);
    if (save.exitCode !== 0) throw xtablesError(plan.bin.save, plan.family, save);
    const state = parseSavedState(save.stdout);
    // Another ISTIO chain beside a whole ruleset does not make it partial.
    const missing = structuralDelta(state, plan.rules).filter((problem) => !problem.startsWith('unexpected'));
    if (missing.length === 0) return;
    const tables = [...new Set(plan.rules.map((rule) => rule.table))].filter((table) =>
      holdsPlannedChains(
        state,
        plan.rules.filter((rule) => rule.table === table),
      ),
    );
    await undo(ns, plan, tables, logger);
  } catch (undoError) {
    logger.warn({ err: undoError }, 'rollback of a restore killed at its timeout failed');
  }
}

type Settled = { readonly result: ExecResult } | { readonly error: unknown };

function settle(promise: Promise<ExecResult>): Promise<Settled> {
  return promise.then(
    (result) => ({ result }),
    (error: unknown) => ({ error }),
  );
}

function unwrap(settled: Settled): ExecResult {
  if ('error' in settled) throw settled.error;
  return settled.result;
}

/** Takes back a speculative restore that turned out not to be wanted (or the probe failed). */
async function discard(
  ns: PodNetns,
  plan: FamilyPlan,
  started: Promise<Settled>,
  logger: Logger,
): Promise<void> {
  const settled = await started;
  if ('error' in settled) return takeBackKilled(ns, plan, settled.error, logger);
  const tables =
    settled.result.exitCode === 0
      ? [...new Set(plan.rules.map((rule) => rule.table))]
      : (committedTables(plan.document, settled.result.stderr) ?? []);
  await undo(ns, plan, tables, logger);
}

/** Applies one family; returns false when identical rules were already present. */
async function applyFamily(
  ns: PodNetns,
  plan: FamilyPlan,
  logger: Logger,
  started?: Promise<Settled>,
): Promise<boolean> {
  if (plan.saved !== undefined && holdsPlannedChains(plan.saved, plan.rules)) {
    const delta = await findDelta(ns, plan.bin, plan.saved, plan.rules);
    if (delta.length === 0) return false;
    throw conflict(plan, delta);
  }
  let result: ExecResult;
  try {
    result = started === undefined ? await restore(ns, plan) : unwrap(await started);
  } catch (error) {
    await takeBackKilled(ns, plan, error, logger);
    throw error;
  }
  if (result.exitCode === 0) return true;
  const committed = committedTables(plan.document, result.stderr) ?? [];
  await undo(ns, plan, committed, logger);
  // Existing ISTIO chains (an earlier ADD) make the `-N` lines fail: identical rules are a no-op.
  const save = await ns.run([plan.bin.save]);
  if (save.exitCode === 0) {
    const state = parseSavedState(save.stdout);
    if (holdsPlannedChains(state, plan.rules)) {
      const delta = await findDelta(ns, plan.bin, state, plan.rules);
      if (delta.length === 0) return false;
      throw conflict(plan, delta, result);
    }
  }
  throw xtablesError(plan.bin.restore, plan.family, result);
}

function conflict(plan: FamilyPlan, delta: readonly string[], result?: ExecResult): ExecError {
  return new ExecError(
    'EXEC_FAILED',
    `pod netns already has different Istio ${plan.family === 'v4' ? 'iptables' : 'ip6tables'} rules ` +
      `(reconcile is not done on the CNI path): ${delta.slice(0, 5).join('; ')}` +
      (result === undefined ? '' : `; ${plan.bin.restore}: ${result.stderr.trim()}`),
    result === undefined ? {} : { exitCode: result.exitCode, stderr: result.stderr },
  );
}

/** `ip -force -batch -` input for §2.8 step 5, per batch: `ip -batch` takes no per-line -4/-6, so IPv4 (and
 * family-neutral address lines) go in one batch and the IPv6 policy rule in an `ip -6` batch. The kernel accepts
 * duplicate policy rules, so each rule is deleted before it is added: a re-ADD leaves exactly one. */
export function routeCommands(config: CaptureConfig, ipv6: boolean): { inet: string[]; inet6: string[] } {
  const inet: string[] = [];
  const inet6: string[] = [];
  if (ipv6) inet.push('address replace ::6/128 dev lo');
  if (config.inboundInterceptionMode === 'TPROXY' && config.inboundPortsInclude !== '') {
    const rule = `fwmark ${config.inboundTProxyMark} lookup ${config.inboundTProxyRouteTable}`;
    const table = config.inboundTProxyRouteTable;
    inet.push(`rule del ${rule}`, `rule add ${rule}`, `route replace local 0.0.0.0/0 dev lo table ${table}`);
    if (ipv6)
      inet6.push(`rule del ${rule}`, `rule add ${rule}`, `route replace local ::/0 dev lo table ${table}`);
  }
  return { inet, inet6 };
}

async function runIpBatch(ns: PodNetns, family: string[], lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  let result: ExecResult;
  try {
    result = await ns.run(['ip', ...family, '-force', '-batch', '-'], `${lines.join('\n')}\n`);
  } catch (error) {
    // §2.12: every routes failure reads "failed to configure routes: …", a missing `ip` too.
    if (!(error instanceof ExecError && error.code === 'BINARY_MISSING')) throw error;
    throw new ExecError('BINARY_MISSING', `failed to configure routes: ${error.message}`, { cause: error });
  }
  if (result.exitCode === 0) return;
  // Tolerated: "File exists" (already there) and "No such file or directory" (the `rule del` before an add).
  const real = result.stderr
    .split('\n')
    .filter((line) => line !== '' && !/File exists|No such file or directory|^Command failed/.test(line));
  if (real.length > 0) {
    throw new ExecError('EXEC_FAILED', `failed to configure routes: ${real.join('; ')}`, {
      exitCode: result.exitCode,
      stderr: result.stderr,
    });
  }
}

/** What `routeCommands` added, deleted again (`-force`: lines for what is not there fail and are ignored). */
export function routeUndoCommands(config: CaptureConfig, ipv6: boolean): { inet: string[]; inet6: string[] } {
  const undoLine = (line: string) =>
    line.startsWith('rule del ') ? [] : [line.replace(/^(address|rule|route) (?:replace|add) /, '$1 del ')];
  const added = routeCommands(config, ipv6);
  return { inet: added.inet.flatMap(undoLine), inet6: added.inet6.flatMap(undoLine) };
}

/** `mayBeAbsent`: the tables may never have been created; nft then refuses the removal whole, and that is no
 * failure. */
async function removeNftTables(
  ns: PodNetns,
  transaction: string,
  logger: Logger,
  mayBeAbsent = false,
): Promise<void> {
  const removal = await settle(ns.run(['nft', '-f', '-'], renderNftRemoval(transaction)));
  if ('result' in removal && removal.result.exitCode === 0) return;
  if (mayBeAbsent && 'result' in removal && /No such file or directory/.test(removal.result.stderr)) return;
  logger.warn({ removal }, 'rollback of the nft tables failed');
}

async function runNft(ns: PodNetns, script: string): Promise<ExecResult> {
  try {
    return await ns.run(['nft', '-f', '-'], script);
  } catch (error) {
    if (error instanceof ExecError && error.code === 'BINARY_MISSING') {
      throw new ExecError(
        'BINARY_MISSING',
        `nativeNftables is enabled, but the nft binary is missing on the host filesystem (${error.message})`,
      );
    }
    throw error;
  }
}

function nftFailure(result: ExecResult): ExecError {
  return new ExecError('EXEC_FAILED', `nft transaction failed: ${result.stderr.trim()}`, {
    exitCode: result.exitCode,
    stderr: result.stderr,
  });
}

/** Adds the routes. With `rollbackLogger` (this call added the pod's rules, so the routes are its own too), a
 * failure deletes whatever part of them went in before throwing; a re-ADD leaves the earlier ADD's routes. */
async function configureRoutes(
  ns: PodNetns,
  config: CaptureConfig,
  ipv6: boolean,
  rollbackLogger: Logger | undefined,
): Promise<void> {
  const commands = routeCommands(config, ipv6);
  try {
    await runIpBatch(ns, [], commands.inet);
    await runIpBatch(ns, ['-6'], commands.inet6);
  } catch (error) {
    if (rollbackLogger === undefined) throw error;
    const undo = routeUndoCommands(config, ipv6);
    for (const [family, lines] of [
      [[], undo.inet],
      [['-6'], undo.inet6],
    ] as const) {
      if (lines.length === 0) continue;
      await ns
        .run(['ip', ...family, '-force', '-batch', '-'], `${lines.join('\n')}\n`)
        .catch((undoError: unknown) =>
          rollbackLogger.warn({ err: undoError }, 'rollback of the routes failed'),
        );
    }
    throw error;
  }
}

/** `config.enableIpv6` is ignored: IPv6 is decided by local IP detection inside the netns (§2.8). */
export async function applyCaptureRules(
  config: CaptureConfig,
  target: RuleTarget,
  deps: ApplyDeps,
): Promise<ApplyOutcome> {
  validateCaptureConfig(config);
  const ns = new PodNetns(deps.exec, target);
  // Speculation: the IPv4 document rarely depends on the probe (only through the variant — forced, or nft since
  // a fresh pod netns has no legacy tables), so the IPv4 restore starts in parallel with the probe; it is taken
  // back if the probe says otherwise. This hides one nsenter spawn from the pod's start-up.
  let speculative: { plan: FamilyPlan; started: Promise<Settled> } | undefined;
  if (target.backend === 'iptables' && target.speculative !== false) {
    // The IPv4 rules do not depend on the IPv6 decision (test/unit/rules/build.test.ts holds build.ts to that).
    const rules = buildCaptureRules({ ...config, enableIpv6: false }).rules.v4;
    const plan: FamilyPlan = {
      family: 'v4',
      rules,
      document: renderRestoreDocument(rules),
      bin: binariesFor('v4', target.iptablesVariant ?? 'nft'),
    };
    speculative = { plan, started: settle(restore(ns, plan)) };
  }
  let probe: NetnsProbe;
  let ipv6: boolean;
  try {
    probe = await probeNetns(ns, deps);
    ipv6 = decideIpv6(probe.addresses, config.dualStack);
  } catch (error) {
    if (speculative !== undefined) await discard(ns, speculative.plan, speculative.started, deps.logger);
    throw error;
  }
  const built = buildCaptureRules({ ...config, enableIpv6: ipv6 });
  for (const warning of built.warnings) deps.logger.warn(warning);

  if (target.backend === 'nftables') {
    // The tables are created by a transaction that fails when one of them exists: then this is a re-ADD, and the
    // tables are replaced (flush + add) as upstream does. Only tables this call created are taken back when the
    // routes fail; a re-ADD keeps what the earlier ADD left.
    const script = renderNftTransaction(built.rules);
    let created = true;
    const fresh = await runNft(ns, script.replace(/^add table /gm, 'create table ')).catch(
      async (error: unknown) => {
        // nft commits its transaction whole, but a kill at the timeout may come after the commit: the tables,
        // created by this call if they exist at all, are taken back (a removal of absent tables changes nothing).
        if (error instanceof ExecError && error.timedOut)
          await removeNftTables(ns, script, deps.logger, true);
        throw error;
      },
    );
    if (fresh.exitCode !== 0) {
      if (!/File exists/.test(fresh.stderr)) throw nftFailure(fresh);
      created = false;
      const replaced = await runNft(ns, script);
      if (replaced.exitCode !== 0) throw nftFailure(replaced);
    }
    try {
      await configureRoutes(ns, config, ipv6, created ? deps.logger : undefined);
    } catch (error) {
      if (created) await removeNftTables(ns, script, deps.logger);
      throw error;
    }
    return { changed: true, ipv6 };
  }

  const families: IpFamily[] = ipv6 ? ['v4', 'v6'] : ['v4'];
  const plans: FamilyPlan[] = [];
  let started: Promise<Settled> | undefined;
  // Until the apply loop below owns the speculative restore, any error (a legacy save timing out, say) must take
  // it back: it may already be committed.
  let unowned = speculative;
  try {
    for (const family of families) {
      const rules = built.rules[family];
      const chosen = await chooseBinaries(ns, family, probe.legacyTables[family], target.iptablesVariant);
      if (family === 'v4' && speculative !== undefined) {
        if (chosen.bin.variant === (target.iptablesVariant ?? 'nft') && chosen.saved === undefined) {
          plans.push(speculative.plan);
          started = speculative.started;
          continue;
        }
        unowned = undefined;
        await discard(ns, speculative.plan, speculative.started, deps.logger);
      }
      plans.push({ family, rules, document: renderRestoreDocument(rules), ...chosen });
    }
  } catch (error) {
    if (unowned !== undefined) await discard(ns, unowned.plan, unowned.started, deps.logger);
    throw error;
  }
  let changed = false;
  const applied: FamilyPlan[] = [];
  try {
    for (const plan of plans) {
      if (await applyFamily(ns, plan, deps.logger, plan.family === 'v4' ? started : undefined)) {
        changed = true;
        applied.push(plan);
      }
    }
    // Routes are this call's own only when every family's rules were (a re-ADD that adds IPv6 to an existing IPv4
    // pod must not take the earlier ADD's IPv4 routes with it).
    await configureRoutes(ns, config, ipv6, applied.length === plans.length ? deps.logger : undefined);
  } catch (error) {
    // All or nothing: a later family's failure removes what this call added for the earlier ones.
    for (const plan of applied)
      await undo(ns, plan, [...new Set(plan.rules.map((rule) => rule.table))], deps.logger);
    throw error;
  }
  const v4 = plans[0]?.bin.variant ?? 'nft';
  const v6 = plans[1]?.bin.variant;
  return { changed, ipv6, variants: v6 === undefined ? { v4 } : { v4, v6 } };
}

/** For CNI CHECK: the planned rules are all present (same delta check as a re-ADD); throws naming what differs. */
export async function checkCaptureRules(
  config: CaptureConfig,
  target: RuleTarget,
  deps: ApplyDeps,
): Promise<void> {
  validateCaptureConfig(config);
  if (target.backend === 'nftables') return;
  const ns = new PodNetns(deps.exec, target);
  const probe = await probeNetns(ns, deps);
  const ipv6 = decideIpv6(probe.addresses, config.dualStack);
  const built = buildCaptureRules({ ...config, enableIpv6: ipv6 });
  for (const family of ipv6 ? (['v4', 'v6'] as const) : (['v4'] as const)) {
    const rules = built.rules[family];
    const chosen = await chooseBinaries(ns, family, probe.legacyTables[family], target.iptablesVariant);
    let bin = chosen.bin;
    let state = chosen.saved;
    if (state === undefined) {
      let save = await ns.run([bin.save]);
      // As for ADD: no usable nf_tables means the rules were written with plain iptables.
      if (bin.variant === 'nft' && save.exitCode !== 0 && NO_NF_TABLES.test(save.stderr)) {
        bin = await plainBinaries(ns, family);
        save = await ns.run([bin.save]);
      }
      state = parseSavedState(save.stdout);
    }
    const delta = await findDelta(ns, bin, state, rules);
    if (delta.length > 0) {
      throw new AppError(
        'RULES_INVALID',
        `istio ${family} rules are not as expected: ${delta.slice(0, 5).join('; ')}`,
      );
    }
  }
}
