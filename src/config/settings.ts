// The ONE table of agent settings (behaviour §1.1 + contract.md paths + ours). Single source for the commander
// options (bin/install-cni.ts), the config loader (src/config/load.ts), the docs and the manifest drift tests.
// `flag` is the long option name without the leading `--`; `env` the variable; `default` the raw string value
// used when neither is given (undefined = unset: no default, e.g. a required or optional value). Flag > env >
// default; an env var set to "" counts as set (viper AllowEmptyEnv).

export type SettingKind = 'string' | 'bool' | 'int' | 'list' | 'mode';

export interface Setting {
  readonly env: string;
  /** Long flag name without `--`. */
  readonly flag: string;
  readonly default: string | undefined;
  readonly description: string;
  readonly kind: SettingKind;
  /** Accepted for compatibility; has no effect (upstream: registered but unused, or ambient-only). */
  readonly unused?: true;
}

function s(
  env: string,
  kind: SettingKind,
  defaultValue: string | undefined,
  description: string,
  extra: { unused?: true } = {},
): Setting {
  return Object.freeze({
    env,
    flag: env.toLowerCase().replaceAll('_', '-'),
    default: defaultValue,
    description,
    kind,
    ...extra,
  });
}

const unused = { unused: true } as const;

export const SETTINGS: readonly Setting[] = Object.freeze([
  // Upstream registered settings (flag + env).
  s(
    'MOUNTED_CNI_NET_DIR',
    'string',
    '/host/etc/cni/net.d',
    'Directory scanned and written for CNI network configs.',
  ),
  s(
    'CNI_CONF_NAME',
    'string',
    '',
    'Force the primary CNI config file name (chained) or the standalone file name.',
  ),
  s(
    'CHAINED_CNI_PLUGIN',
    'bool',
    'true',
    'Insert the plugin into the primary conflist (true) or write a standalone file.',
  ),
  s(
    'ISTIO_OWNED_CNI_CONFIG',
    'bool',
    'false',
    'Write a separate Istio-owned conflist: needs ambient, which this agent does not run, so accepted and inactive.',
  ),
  s(
    'ISTIO_OWNED_CNI_CONFIG_FILENAME',
    'string',
    '',
    'Name of the Istio-owned conflist; accepted, inactive (see ISTIO_OWNED_CNI_CONFIG).',
  ),
  s('CNI_AGENT_RUN_DIR', 'string', '/var/run/istio-cni', 'Directory for the plugin kubeconfig and log.sock.'),
  s(
    'KUBECONFIG_MODE',
    'mode',
    '384',
    'File mode of the plugin kubeconfig (decimal, or octal with a leading 0/0o).',
  ),
  s(
    'CNI_CONF_GROUP_READ',
    'bool',
    'false',
    'Files Istio creates (standalone, Istio-owned) get mode 0640, not 0600.',
  ),
  s(
    'KUBE_CA_FILE',
    'string',
    '',
    'CA embedded into the plugin kubeconfig ("" = <service account dir>/ca.crt).',
  ),
  s(
    'SKIP_TLS_VERIFY',
    'bool',
    'false',
    'Plugin kubeconfig uses insecure-skip-tls-verify instead of CA data.',
  ),
  s('MONITORING_PORT', 'int', '15014', 'Prometheus /metrics port; <= 0 disables.'),
  s(
    'ZTUNNEL_UDS_ADDRESS',
    'string',
    '/var/run/ztunnel/ztunnel.sock',
    'Ambient only (not supported).',
    unused,
  ),
  s('AMBIENT_ENABLED', 'bool', 'false', 'Ambient mode (not supported by this agent: must stay false).'),
  s('ENABLE_AMBIENT_DETECTION_RETRY', 'bool', 'false', 'Passed to the plugin config.'),
  s('REPAIR_ENABLED', 'bool', 'true', 'Run the repair controller.'),
  s('REPAIR_DELETE_PODS', 'bool', 'false', 'Repair mode: delete broken pods.'),
  s('REPAIR_LABEL_PODS', 'bool', 'false', 'Repair mode: label broken pods.'),
  s('REPAIR_BROKEN_POD_LABEL_KEY', 'string', 'cni.istio.io/uninitialized', 'Label key for broken pods.'),
  s('REPAIR_BROKEN_POD_LABEL_VALUE', 'string', 'true', 'Label value for broken pods.'),
  s('REPAIR_NODE_NAME', 'string', '', 'Node filter of the repair controller.'),
  s(
    'REPAIR_SIDECAR_ANNOTATION',
    'string',
    'sidecar.istio.io/status',
    'Only pods with this annotation are repaired.',
  ),
  s(
    'REPAIR_INIT_CONTAINER_NAME',
    'string',
    'istio-validation',
    'Init container inspected by the repair controller.',
  ),
  s('REPAIR_INIT_CONTAINER_TERMINATION_MESSAGE', 'string', '', 'Optional termination message filter.'),
  s('REPAIR_INIT_CONTAINER_EXIT_CODE', 'int', '126', 'Exit code filter (0 = any).'),
  s('REPAIR_LABEL_SELECTORS', 'string', '', 'Extra pod list label selector.'),
  s('REPAIR_FIELD_SELECTORS', 'string', '', 'Extra pod list field selector.'),
  s('CNI_NETWORK_CONFIG', 'string', '', 'Registered but unused upstream (legacy template).', unused),
  s('CNI_NETWORK_CONFIG_FILE', 'string', '', 'Registered but unused upstream.', unused),
  s('LOG_LEVEL', 'string', 'warn', 'Registered but unused upstream (use --log_output_level).', unused),
  // Paths upstream hard-codes (contract.md).
  s('CNI_BIN_SOURCE_DIR', 'string', '/opt/cni/bin', 'Directory whose files are installed as CNI binaries.'),
  s('CNI_BIN_TARGET_DIRS', 'list', '/host/opt/cni/bin', 'Comma list of host CNI binary directories.'),
  s(
    'SERVICE_ACCOUNT_DIR',
    'string',
    '/var/run/secrets/kubernetes.io/serviceaccount',
    'Service account dir (token, ca.crt) used for the plugin kubeconfig.',
  ),
  s('READINESS_PORT', 'int', '8000', 'Port of /healthz and /readyz (0 = any free port).'),
  s(
    'HOST_PROC_DIR',
    'string',
    '/host/proc',
    "The host's /proc as mounted in the agent; the repair controller scans it for pod network namespaces.",
  ),
  // Ours.
  s('LISTEN_ADDRESS', 'string', '', 'Address the health and metrics servers bind ("" = all interfaces).'),
  s(
    'POD_LOOKUP_DEADLINE_SECONDS',
    'int',
    undefined,
    'Plugin pod lookup deadline; unset = the plugin entry gets no extra field.',
  ),
  s('CNI_NOT_READY_TAINT_KEY', 'string', '', 'Node taint removed once the plugin is installed ("" = off).'),
  // Keys upstream reads from the environment only; a flag too here, as contract.md wants of every setting.
  s('REPAIR_REPAIR_PODS', 'bool', 'false', 'Repair mode: re-program rules in running pods.'),
  s('EXCLUDE_NAMESPACES', 'list', '', 'Comma list of namespaces the plugin skips.'),
  s('POD_NAMESPACE', 'string', '', "The agent's own namespace (plugin pod_namespace)."),
  s('AMBIENT_ENABLEMENT_SELECTOR', 'string', '', 'Ambient only (not supported).', unused),
  s('AMBIENT_DNS_CAPTURE', 'bool', 'false', 'Ambient only (not supported).', unused),
  s('AMBIENT_IPV6', 'bool', 'false', 'Ambient only (not supported).', unused),
  s('AMBIENT_DISABLE_SAFE_UPGRADE', 'bool', 'false', 'Ambient only (not supported).', unused),
  s('AMBIENT_RECONCILE_POD_RULES_ON_STARTUP', 'bool', 'false', 'Ambient only (not supported).', unused),
  s('NATIVE_NFTABLES', 'bool', 'false', 'Plugin native_nftables; repair uses nft.'),
  // Upstream plain env lookups (a flag too here, as above).
  s('KUBERNETES_SERVICE_HOST', 'string', undefined, 'API server host for the plugin kubeconfig (required).'),
  s('KUBERNETES_SERVICE_PORT', 'string', undefined, 'API server port for the plugin kubeconfig (required).'),
  s('KUBERNETES_SERVICE_PROTOCOL', 'string', 'https', 'API server scheme for the plugin kubeconfig.'),
  s('KUBERNETES_NODE_NAME', 'string', '', 'This node when NODE_NAME is empty (then the host name).'),
  s('FORCE_IPTABLES_BINARY', 'string', '', 'legacy or nft for agent-side iptables (repair).'),
  s('NODE_NAME', 'string', '', 'This node (repair, taint removal).'),
  s('POD_NAME', 'string', '', 'This agent pod.'),
]);

/** Istio's standard logging flags (not env vars). `--log_output_level` and `--log_as_json` are honoured; the rest
 * are accepted and ignored. */
export const LOG_FLAGS = Object.freeze([
  {
    flag: 'log_output_level',
    default: 'default:info',
    description: 'Scope levels: <level> or scope:level,...',
  },
  { flag: 'log_as_json', default: 'false', description: 'JSON logs (true) or text lines (false).' },
  { flag: 'log_target', default: 'stdout', description: 'Accepted, ignored (always stdout).' },
  { flag: 'log_caller', default: '', description: 'Accepted, ignored.' },
  { flag: 'log_stacktrace_level', default: 'default:none', description: 'Accepted, ignored.' },
  { flag: 'log_rotate', default: '', description: 'Accepted, ignored.' },
  { flag: 'log_rotate_max_age', default: '30', description: 'Accepted, ignored.' },
  { flag: 'log_rotate_max_backups', default: '1000', description: 'Accepted, ignored.' },
  { flag: 'log_rotate_max_size', default: '104857600', description: 'Accepted, ignored.' },
  { flag: 'ctrlz_port', default: '9876', description: 'Accepted, ignored (no ControlZ).' },
  { flag: 'ctrlz_address', default: 'localhost', description: 'Accepted, ignored (no ControlZ).' },
] as const);
