// Ports: the small interfaces through which logic reaches the host (style-anchors §D3). Type-only; real
// implementations live beside this file (src/sys/*) or in src/kube/*, fakes in test/support/*.

export interface ExecRequest {
  /** argv[0] is the binary (looked up on PATH unless absolute). Never a shell string. */
  readonly argv: readonly string[];
  /** Written to the child's stdin (e.g. an iptables-restore document). */
  readonly input?: string;
  /** Extra environment for the child (merged over a minimal inherited env). */
  readonly env?: Readonly<Record<string, string>>;
  /** Run inside this network namespace (path such as /var/run/netns/cni-…): the agent wraps the command with
   * nsenter --net=; the plugin enters it with setns on the spawning thread (src/sys/bun-spawn-exec.ts). */
  readonly netns?: string;
  /** For user-namespaced pods: also enter this user namespace (nsenter --user=). */
  readonly userns?: string;
  readonly timeoutMs?: number;
}

export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a host command. Resolves with the exit code (non-zero is not an exception); rejects only when the
 * binary cannot be started (ExecError code BINARY_MISSING). */
export interface Exec {
  run(request: ExecRequest): Promise<ExecResult>;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export type MetricLabels = Readonly<Record<string, string>>;

/** Prometheus-style metrics sink (the agent serves them as text on MONITORING_PORT /metrics). */
export interface Metrics {
  /** Adds `by` (default 1) to a counter. */
  increment(name: string, help: string, labels?: MetricLabels, by?: number): void;
  setGauge(name: string, help: string, value: number, labels?: MetricLabels): void;
  /** Records one observation of a histogram (seconds, unless the name says otherwise). */
  observe(name: string, help: string, value: number, labels?: MetricLabels): void;
}
