// Fakes for the plugin's handlers: a recording Exec, a manual clock, a scripted pod source and a recording
// applyCaptureRules, plus an in-memory logger.
import type { PluginDeps, PodSourceHandle } from '../../src/plugin/handlers.ts';
import type { ApplyOutcome, RuleTarget } from '../../src/rules/apply.ts';
import type { CaptureConfig } from '../../src/rules/capture-config.ts';
import type { Clock, Exec, ExecRequest } from '../../src/sys/ports.ts';
import { createPluginLogging } from '../../src/log/plugin-logger.ts';
import type { PluginLogLevel } from '../../src/plugin/config.ts';
import type { NetnsUserns } from '../../src/sys/netns-owner.ts';

export class RecordingExec implements Exec {
  readonly requests: ExecRequest[] = [];
  run(request: ExecRequest) {
    this.requests.push(request);
    return Promise.resolve({ exitCode: 0, stdout: '', stderr: '' });
  }
}

/** Time advances only through sleep(). */
export class FakeClock implements Clock {
  time = 1_000_000;
  readonly sleeps: number[] = [];
  now(): number {
    return this.time;
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.time += ms;
    return Promise.resolve();
  }
}

/** Answers getPod from a script: each entry is a pod object or an error to throw; the last entry repeats. */
export class ScriptedPodSource implements PodSourceHandle {
  readonly calls: string[] = [];
  closed = 0;
  readonly #script: readonly unknown[];
  constructor(script: readonly unknown[]) {
    this.#script = script;
  }
  getPod(namespace: string, name: string): Promise<unknown> {
    const entry = this.#script[Math.min(this.calls.length, this.#script.length - 1)];
    this.calls.push(`${namespace}/${name}`);
    return entry instanceof Error ? Promise.reject(entry) : Promise.resolve(entry);
  }
  /** Namespaces answered by getNamespace (labels), or an error for all. */
  namespaces: Record<string, Record<string, string>> | Error = {};
  /** Errors the next getNamespace calls reject with, in order, before `namespaces` answers. */
  namespaceFailures: Error[] = [];
  getNamespace(name: string): Promise<unknown> {
    this.calls.push(`namespace ${name}`);
    const failure = this.namespaceFailures.shift();
    if (failure !== undefined) return Promise.reject(failure);
    if (this.namespaces instanceof Error) return Promise.reject(this.namespaces);
    return Promise.resolve({ metadata: { name, labels: this.namespaces[name] ?? {} } });
  }
  close(): void {
    this.closed += 1;
  }
}

export interface FakePluginDeps extends PluginDeps {
  readonly applied: { config: CaptureConfig; target: RuleTarget }[];
  readonly checked: { config: CaptureConfig; target: RuleTarget }[];
  readonly opened: string[];
  readonly logLines: string[];
  readonly levels: PluginLogLevel[];
  readonly forwardingDirs: string[];
  readonly events: { socket: string; body: unknown }[];
  /** The netns paths whose owning user namespace was asked for. */
  readonly usernsQueries: string[];
  readonly clock: FakeClock;
  readonly exec: RecordingExec;
}

export function fakePluginDeps(
  options: {
    source?: ScriptedPodSource | Error;
    env?: Record<string, string | undefined>;
    applyResult?: ApplyOutcome | Error;
    /** What checkCaptureRules rejects with (it resolves by default). */
    checkResult?: Error;
    eventResult?: Error;
    /** What netnsUserns answers (default: the plugin's own user namespace). */
    userns?: NetnsUserns;
  } = {},
): FakePluginDeps {
  const logLines: string[] = [];
  const logging = createPluginLogging((line) => logLines.push(line));
  const applied: { config: CaptureConfig; target: RuleTarget }[] = [];
  const checked: { config: CaptureConfig; target: RuleTarget }[] = [];
  const opened: string[] = [];
  const levels: PluginLogLevel[] = [];
  const forwardingDirs: string[] = [];
  const events: { socket: string; body: unknown }[] = [];
  const usernsQueries: string[] = [];
  return {
    events,
    usernsQueries,
    netnsUserns: (netns) => {
      usernsQueries.push(netns);
      return Promise.resolve(options.userns ?? { kind: 'same' });
    },
    postCniEvent: (socket, body) => {
      events.push({ socket, body: JSON.parse(body) as unknown });
      return options.eventResult === undefined ? Promise.resolve() : Promise.reject(options.eventResult);
    },
    env: options.env ?? {},
    clock: new FakeClock(),
    exec: new RecordingExec(),
    applied,
    checked,
    opened,
    logLines,
    levels,
    forwardingDirs,
    logging: {
      logger: logging.logger,
      setLevel: (level) => {
        levels.push(level);
        logging.setLevel(level);
      },
      configureForwarding: (dir) => {
        forwardingDirs.push(dir);
      },
    },
    openPodSource: (path) => {
      opened.push(path);
      const source = options.source ?? new ScriptedPodSource([new Error('no pod source configured')]);
      return source instanceof Error ? Promise.reject(source) : Promise.resolve(source);
    },
    applyCaptureRules: (config, target) => {
      applied.push({ config, target });
      const result = options.applyResult ?? { changed: true, ipv6: false };
      return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
    },
    checkCaptureRules: (config, target) => {
      checked.push({ config, target });
      return options.checkResult === undefined ? Promise.resolve() : Promise.reject(options.checkResult);
    },
  };
}
