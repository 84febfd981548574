// Pure: env snapshot + explicitly passed flags → one frozen AgentConfig, or one ConfigError listing every invalid
// setting (style-anchors §D6). Nothing downstream reads the environment.
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { parseGoBool } from '../go-bool.ts';
import { SETTINGS, type Setting, type SettingKind } from './settings.ts';
import { serverUrl } from '../installer/kubeconfig.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'none';

export interface RepairConfig {
  readonly enabled: boolean;
  readonly deletePods: boolean;
  readonly labelPods: boolean;
  readonly repairPods: boolean;
  readonly brokenPodLabelKey: string;
  readonly brokenPodLabelValue: string;
  readonly nodeName: string;
  readonly sidecarAnnotation: string;
  readonly initContainerName: string;
  readonly initContainerTerminationMessage: string;
  readonly initContainerExitCode: number;
  readonly labelSelectors: string;
  readonly fieldSelectors: string;
  readonly notReadyTaintKey: string;
  /** HOST_PROC_DIR: the host's /proc, scanned for pod network namespaces by in-place repair. */
  readonly hostProcDir: string;
}

export interface AgentConfig {
  readonly netDir: string;
  readonly confName: string;
  readonly chained: boolean;
  readonly runDir: string;
  readonly kubeconfigMode: number;
  readonly confGroupRead: boolean;
  /** Resolved: KUBE_CA_FILE or <serviceAccountDir>/ca.crt. */
  readonly kubeCaFile: string;
  readonly skipTlsVerify: boolean;
  readonly monitoringPort: number;
  readonly readinessPort: number;
  /** Bind address of the health/metrics servers ("" = all interfaces). */
  readonly listenAddress: string;
  readonly binSourceDir: string;
  readonly binTargetDirs: readonly string[];
  readonly serviceAccountDir: string;
  readonly podLookupDeadlineSeconds: number | undefined;
  readonly excludeNamespaces: readonly string[];
  readonly podNamespace: string;
  readonly nativeNftables: boolean;
  readonly ambientEnabled: boolean;
  readonly enableAmbientDetectionRetry: boolean;
  readonly kubernetesServiceHost: string;
  readonly kubernetesServicePort: string;
  readonly kubernetesServiceProtocol: string;
  readonly nodeName: string;
  readonly forceIptablesBinary: string;
  readonly logLevel: LogLevel;
  /** Level written into the plugin entry (`plugin_log_level`) and applied to relayed plugin records. */
  readonly pluginLogLevel: LogLevel;
  /** Scope `repair` (the repair controller), info unless named, as Istio registers it. */
  readonly repairLogLevel: LogLevel;
  /** Why `--log_output_level` was not applied in full (the items before the invalid one were), to be logged. */
  readonly logOutputLevelError: string | undefined;
  /** Valid settings that are probably a mistake (logged as warnings at start). */
  readonly settingWarnings: readonly string[];
  readonly logAsJson: boolean;
  readonly repair: RepairConfig;
  /** ISTIO_OUTBOUND_OWNER_GROUPS, ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE and ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR from the
   * agent's environment, the ones set: repair builds a pod's rules with them (§2.8 step 2), as upstream's agent. */
  readonly outboundCaptureEnv: Readonly<Record<string, string>>;
}

/** The environment the rule engine reads on top of a pod's annotations (§2.8 step 2). */
export const OUTBOUND_CAPTURE_ENV = [
  'ISTIO_OUTBOUND_OWNER_GROUPS',
  'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE',
  'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR',
] as const;

export interface LoadInput {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Explicitly passed flags, keyed by the setting's env name. */
  readonly flags: Readonly<Record<string, string>>;
  readonly logOutputLevel?: string | undefined;
  readonly logAsJson?: string | boolean | undefined;
  /** Host name, used when KUBERNETES_NODE_NAME is empty. */
  readonly hostname?: string;
  /** `agent` requires the API server location (the kubeconfig needs it); `uninstall` does not. */
  readonly mode: 'agent' | 'uninstall';
}

const boolSchema = z.string().transform((raw, ctx) => {
  const value = parseGoBool(raw);
  if (value === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected a boolean (true/false/1/0/t/f)' });
    return z.NEVER;
  }
  return value;
});

const intSchema = z.string().transform((raw, ctx) => {
  const trimmed = raw.trim();
  if (!/^[+-]?\d+$/.test(trimmed)) {
    ctx.addIssue({ code: 'custom', message: 'expected an integer' });
    return z.NEVER;
  }
  return Number.parseInt(trimmed, 10);
});

/** Decimal (viper default: "384"), or octal written as 0600 / 0o600. */
const modeSchema = z.string().transform((raw, ctx) => {
  const trimmed = raw.trim();
  let value: number | undefined;
  if (/^0[oO]?[0-7]+$/.test(trimmed)) value = Number.parseInt(trimmed.replace(/^0[oO]?/, ''), 8);
  // "0" as upstream's viper GetInt reads it (and as "00" already was): a token file only root can read.
  else if (/^(0|[1-9]\d*)$/.test(trimmed)) value = Number.parseInt(trimmed, 10);
  if (value === undefined || value > 0o7777) {
    ctx.addIssue({ code: 'custom', message: 'expected a file mode (decimal 384 or octal 0600)' });
    return z.NEVER;
  }
  return value;
});

const listSchema = z.string().transform((raw) =>
  raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== ''),
);

const portSchema = intSchema.pipe(z.number().max(65535, 'expected a port number <= 65535'));

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'fatal', 'none'];

function normalizeLevel(raw: string): LogLevel | undefined {
  const lower = raw.trim().toLowerCase();
  if (lower === 'warning') return 'warn';
  return (LEVELS as readonly string[]).includes(lower) ? (lower as LogLevel) : undefined;
}

/** Istio's `--log_output_level`: `<level>` or `scope:level,scope:level`, as per-scope levels ('default' for bare
 * levels). Istio's override scope `all` sets every scope and ends the list (what follows it is not read), so it is
 * returned alone. An invalid item ends the list too, as in Istio's log package: the items before it stay applied and
 * `invalid` says what was wrong. */
export function parseLogOutputLevel(raw: string): { scopes: Map<string, LogLevel>; invalid?: string } {
  const scopes = new Map<string, LogLevel>();
  for (const part of raw.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const colon = item.lastIndexOf(':');
    const scope = colon === -1 ? 'default' : item.slice(0, colon).trim();
    const level = normalizeLevel(colon === -1 ? item : item.slice(colon + 1));
    // An empty scope (`:debug`) is one Istio does not register, ignored as any other such scope is.
    if (level === undefined)
      return { scopes, invalid: `invalid level in "${item}" (debug, info, warn, error, fatal, none)` };
    if (scope === 'all') return { scopes: new Map([['all', level]]) };
    scopes.set(scope, level);
  }
  return { scopes };
}

function schemaFor(setting: Setting): z.ZodType {
  // <= 0 disables the metrics server (§1.1), so only the upper bound is checked.
  if (setting.env === 'MONITORING_PORT') return portSchema;
  if (setting.env === 'READINESS_PORT') return portSchema.pipe(z.number().min(0, 'expected a port >= 0'));
  if (setting.env === 'POD_LOOKUP_DEADLINE_SECONDS') {
    return intSchema.pipe(z.number().min(1, 'expected a positive number of seconds'));
  }
  if (setting.env === 'FORCE_IPTABLES_BINARY') {
    return z.enum(['', 'legacy', 'nft'], { message: 'expected "", "legacy" or "nft"' });
  }
  if (setting.env === 'KUBERNETES_SERVICE_PROTOCOL') {
    // As upstream: empty means https, and a URL scheme is case-insensitive ("HTTPS" works there too; it is
    // written into the kubeconfig as given, as upstream writes it).
    return z
      .string()
      .transform((value) => value || 'https')
      .refine((value) => ['http', 'https'].includes(value.toLowerCase()), {
        message: 'expected "https" or "http"',
      });
  }
  switch (setting.kind) {
    case 'bool':
      return boolSchema;
    case 'int':
      return intSchema;
    case 'mode':
      return modeSchema;
    case 'list':
      return listSchema;
    case 'string':
      return z.string();
  }
}

type Values = Record<string, unknown>;

const EMPTY_MEANS_DEFAULT: ReadonlySet<SettingKind> = new Set(['bool', 'int', 'mode']);

export function loadAgentConfig(input: LoadInput): AgentConfig {
  const problems: string[] = [];
  const emptyWarnings: string[] = [];
  const values: Values = {};
  for (const setting of SETTINGS) {
    if (setting.unused) continue;
    let raw = input.flags[setting.env] ?? input.env[setting.env] ?? setting.default;
    // An env var set to "" where a boolean or number is expected: what a chart value that rendered empty gives
    // (`helm upgrade --reuse-values` across a chart version that added the key). Upstream's viper reads false/0
    // there (a blank CHAINED_CNI_PLUGIN switches to standalone mode, a blank KUBECONFIG_MODE writes mode 0000);
    // the default is what the chart meant, and a start error would take the node's CNI down. A flag is explicit:
    // an empty one stays an error, as pflag refuses it.
    if (raw === '' && input.flags[setting.env] === undefined && EMPTY_MEANS_DEFAULT.has(setting.kind)) {
      const applies = setting.default === undefined ? 'left unset' : `its default ${setting.default} applies`;
      const upstream = setting.kind === 'bool' ? 'false' : '0';
      const differs =
        setting.default === upstream ? 'as upstream reads it' : `upstream would read ${upstream}`;
      emptyWarnings.push(`${setting.env} is set but empty: ${applies} (${differs})`);
      raw = setting.default;
    }
    if (raw === undefined) continue;
    const parsed = schemaFor(setting).safeParse(raw);
    if (parsed.success) values[setting.env] = parsed.data;
    else {
      const source = input.flags[setting.env] !== undefined ? `--${setting.flag}` : setting.env;
      const message = parsed.error.issues.map((issue) => issue.message).join('; ');
      problems.push(`${source}=${JSON.stringify(raw)}: ${message}`);
    }
  }

  const { scopes, invalid } = parseLogOutputLevel(input.logOutputLevel ?? 'default:info');
  // Upstream only logs a logging-configuration failure (behaviour §1.2) and runs on with what was applied: a typo in
  // the chart's logging.level must not take the node's CNI down.
  const logOutputLevelError =
    invalid === undefined
      ? undefined
      : `--log_output_level=${JSON.stringify(input.logOutputLevel)}: ${invalid}`;
  // As Istio's log package: a level without a scope ("debug") is the `default` scope's, which the agent does not
  // log under; `cni-agent` is registered at info (istio#51518: use cni-agent:debug or all:debug).
  const logLevel = scopes.get('all') ?? scopes.get('cni-agent') ?? 'info';
  const pluginLogLevel = scopes.get('all') ?? scopes.get('cni-plugin');
  const repairLogLevel = scopes.get('all') ?? scopes.get('repair') ?? 'info';
  let logAsJson = false;
  if (typeof input.logAsJson === 'boolean') logAsJson = input.logAsJson;
  else if (input.logAsJson !== undefined) {
    const parsed = parseGoBool(input.logAsJson);
    if (parsed === undefined)
      problems.push(`--log_as_json=${JSON.stringify(input.logAsJson)}: expected a boolean`);
    else logAsJson = parsed;
  }

  const str = (env: string): string => (typeof values[env] === 'string' ? values[env] : '');
  const bool = (env: string): boolean => values[env] === true;
  const num = (env: string): number => (typeof values[env] === 'number' ? values[env] : 0);

  if (input.mode === 'agent') {
    for (const env of ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']) {
      if (str(env) === '') {
        problems.push(`${env} not set. Is this not running within a pod? Set it to the API server address.`);
      }
    }
    // The plugin kubeconfig's server URL is built from these: a value no URL can hold would fail every pod.
    const host = str('KUBERNETES_SERVICE_HOST');
    const port = str('KUBERNETES_SERVICE_PORT');
    if (port !== '' && !(/^[0-9]{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535))
      problems.push(`KUBERNETES_SERVICE_PORT=${JSON.stringify(port)}: expected a port number (1-65535)`);
    if (host !== '' && (/[\s/@?#]/.test(host) || !URL.canParse(serverUrl('https', host, '443'))))
      problems.push(`KUBERNETES_SERVICE_HOST=${JSON.stringify(host)}: expected a host name or IP address`);
  }
  // Only the agent refuses it: `uninstall` with the chart's ConfigMap of an ambient install must still clean up.
  if (input.mode === 'agent' && bool('AMBIENT_ENABLED')) {
    problems.push(
      "AMBIENT_ENABLED=true: ambient mode is not supported by this agent; set it to false (the istio-cni chart's ambient.enabled value) or keep upstream's image for ambient nodes.",
    );
  }
  if (str('MOUNTED_CNI_NET_DIR') === '') problems.push('MOUNTED_CNI_NET_DIR must not be empty.');
  if (str('CNI_AGENT_RUN_DIR') === '') problems.push('CNI_AGENT_RUN_DIR must not be empty.');
  // Written into the plugin entry: the plugin, exec'd by the runtime in the runtime's own working directory,
  // would resolve a relative one there.
  else if (!str('CNI_AGENT_RUN_DIR').startsWith('/'))
    problems.push(`CNI_AGENT_RUN_DIR=${JSON.stringify(str('CNI_AGENT_RUN_DIR'))}: expected an absolute path`);
  const confName = str('CNI_CONF_NAME');
  if (confName.includes('/') || confName === '.' || confName === '..')
    problems.push(
      `CNI_CONF_NAME=${JSON.stringify(confName)}: expected a file name in MOUNTED_CNI_NET_DIR, not a path`,
    );
  const targets = (values['CNI_BIN_TARGET_DIRS'] as string[] | undefined) ?? [];
  if (targets.length === 0) problems.push('CNI_BIN_TARGET_DIRS must name at least one directory.');

  if (problems.length > 0) {
    throw new ConfigError(`invalid settings:\n  - ${problems.join('\n  - ')}`);
  }

  const serviceAccountDir = str('SERVICE_ACCOUNT_DIR');
  const chained = bool('CHAINED_CNI_PLUGIN');
  const nodeName = str('NODE_NAME');
  const config: AgentConfig = {
    netDir: str('MOUNTED_CNI_NET_DIR'),
    confName: str('CNI_CONF_NAME'),
    chained,
    runDir: str('CNI_AGENT_RUN_DIR'),
    kubeconfigMode: num('KUBECONFIG_MODE'),
    confGroupRead: bool('CNI_CONF_GROUP_READ'),
    kubeCaFile: str('KUBE_CA_FILE') === '' ? `${serviceAccountDir}/ca.crt` : str('KUBE_CA_FILE'),
    skipTlsVerify: bool('SKIP_TLS_VERIFY'),
    monitoringPort: num('MONITORING_PORT'),
    readinessPort: num('READINESS_PORT'),
    listenAddress: str('LISTEN_ADDRESS'),
    binSourceDir: str('CNI_BIN_SOURCE_DIR'),
    binTargetDirs: Object.freeze([...targets]),
    serviceAccountDir,
    podLookupDeadlineSeconds:
      typeof values['POD_LOOKUP_DEADLINE_SECONDS'] === 'number'
        ? values['POD_LOOKUP_DEADLINE_SECONDS']
        : undefined,
    excludeNamespaces: Object.freeze([...((values['EXCLUDE_NAMESPACES'] as string[] | undefined) ?? [])]),
    podNamespace: str('POD_NAMESPACE'),
    nativeNftables: bool('NATIVE_NFTABLES'),
    ambientEnabled: bool('AMBIENT_ENABLED'),
    enableAmbientDetectionRetry: bool('ENABLE_AMBIENT_DETECTION_RETRY'),
    kubernetesServiceHost: str('KUBERNETES_SERVICE_HOST'),
    kubernetesServicePort: str('KUBERNETES_SERVICE_PORT'),
    kubernetesServiceProtocol: str('KUBERNETES_SERVICE_PROTOCOL'),
    nodeName: nodeName !== '' ? nodeName : str('KUBERNETES_NODE_NAME') || (input.hostname ?? ''),
    forceIptablesBinary: str('FORCE_IPTABLES_BINARY'),
    logLevel,
    // Quirk §8.11 replicated: the plugin scope follows the agent's level unless cni-plugin is named explicitly.
    pluginLogLevel: pluginLogLevel ?? logLevel,
    repairLogLevel,
    logOutputLevelError,
    settingWarnings: Object.freeze([...emptyWarnings, ...kubeconfigModeWarnings(num('KUBECONFIG_MODE'))]),
    logAsJson,
    outboundCaptureEnv: Object.freeze(
      Object.fromEntries(
        OUTBOUND_CAPTURE_ENV.flatMap((name) => {
          const value = input.env[name];
          return value === undefined ? [] : [[name, value]];
        }),
      ),
    ),
    repair: Object.freeze({
      enabled: bool('REPAIR_ENABLED'),
      deletePods: bool('REPAIR_DELETE_PODS'),
      labelPods: bool('REPAIR_LABEL_PODS'),
      repairPods: bool('REPAIR_REPAIR_PODS'),
      brokenPodLabelKey: str('REPAIR_BROKEN_POD_LABEL_KEY'),
      brokenPodLabelValue: str('REPAIR_BROKEN_POD_LABEL_VALUE'),
      nodeName: str('REPAIR_NODE_NAME'),
      sidecarAnnotation: str('REPAIR_SIDECAR_ANNOTATION'),
      initContainerName: str('REPAIR_INIT_CONTAINER_NAME'),
      initContainerTerminationMessage: str('REPAIR_INIT_CONTAINER_TERMINATION_MESSAGE'),
      initContainerExitCode: num('REPAIR_INIT_CONTAINER_EXIT_CODE'),
      labelSelectors: str('REPAIR_LABEL_SELECTORS'),
      fieldSelectors: str('REPAIR_FIELD_SELECTORS'),
      notReadyTaintKey: str('CNI_NOT_READY_TAINT_KEY'),
      hostProcDir: str('HOST_PROC_DIR'),
    }),
  };
  return Object.freeze(config);
}

/** A KUBECONFIG_MODE upstream would take too, but that opens the token file to other users or is a decimal value
 * meant as octal (600 is 01130, as upstream's viper reads it too). The owner bits do not matter: the plugin reads
 * the file as root. */
export function kubeconfigModeWarnings(mode: number): string[] {
  const octal = `0${mode.toString(8)}`;
  const warnings: string[] = [];
  if ((mode & 0o022) !== 0)
    warnings.push(
      `KUBECONFIG_MODE is ${octal}: group or others can write the plugin kubeconfig, which holds the token`,
    );
  if ((mode & 0o004) !== 0)
    warnings.push(
      `KUBECONFIG_MODE is ${octal}: every local user can read the token in the plugin kubeconfig`,
    );
  if ((mode & ~0o777) !== 0)
    warnings.push(
      `KUBECONFIG_MODE is ${octal}: setuid/setgid/sticky bits on the plugin kubeconfig (a decimal value meant as octal? 384 is 0600)`,
    );
  return warnings;
}
