import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { kubeconfigModeWarnings, loadAgentConfig, parseLogOutputLevel } from '../../../src/config/load.ts';
import { buildPluginEntry } from '../../../src/installer/conflist.ts';
import { parseGoBool } from '../../../src/go-bool.ts';
import { SETTINGS } from '../../../src/config/settings.ts';

const required = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

/** The configuration an `uninstall` run gets with this --log_output_level. */
const withLogLevels = (logOutputLevel: string) =>
  loadAgentConfig({ env: {}, flags: {}, logOutputLevel, mode: 'uninstall' });

test('settings table: unique env and flag names, flag = kebab of env, contract paths present', () => {
  const envs = SETTINGS.map((s) => s.env);
  assert.equal(new Set(envs).size, envs.length);
  for (const s of SETTINGS) assert.equal(s.flag, s.env.toLowerCase().replaceAll('_', '-'));
  const byEnv = new Map(SETTINGS.map((s) => [s.env, s]));
  assert.equal(byEnv.get('CNI_BIN_SOURCE_DIR')?.default, '/opt/cni/bin');
  assert.equal(byEnv.get('CNI_BIN_TARGET_DIRS')?.default, '/host/opt/cni/bin');
  assert.equal(byEnv.get('SERVICE_ACCOUNT_DIR')?.default, '/var/run/secrets/kubernetes.io/serviceaccount');
  assert.equal(byEnv.get('READINESS_PORT')?.default, '8000');
  assert.equal(byEnv.get('MONITORING_PORT')?.default, '15014');
  assert.equal(byEnv.get('KUBECONFIG_MODE')?.default, '384');
});

test("every setting in the behaviour spec's §1.1 table has its flag and default here", () => {
  const spec = readFileSync(
    path.resolve(import.meta.dirname, '../../../../shared/spec/istio-cni-behavior.md'),
    'utf8',
  );
  const rows = [...spec.matchAll(/^\| `--([a-z0-9_-]+)` \| `([A-Z0-9_]+)` \| (.*?) \| .*\|$/gm)];
  assert.ok(rows.length >= 25, `only ${rows.length} rows read from the spec`);
  for (const [, flag, env, text = ''] of rows) {
    const setting = SETTINGS.find((candidate) => candidate.env === env);
    assert.ok(setting !== undefined, `${env} is not a setting`);
    assert.equal(setting.flag, flag, env);
    // The first backticked value is the default; `""` is empty; a mode gives its decimal form as we store it.
    const expected = /\(decimal (\d+)\)/.exec(text)?.[1] ?? /`([^`]*)`/.exec(text)?.[1]?.replace(/^""$/, '');
    assert.equal(setting.default, expected, env);
  }
});

test('defaults match upstream', () => {
  const config = loadAgentConfig({ env: required, flags: {}, mode: 'agent' });
  assert.equal(config.netDir, '/host/etc/cni/net.d');
  assert.equal(config.chained, true);
  assert.equal(config.runDir, '/var/run/istio-cni');
  assert.equal(config.kubeconfigMode, 0o600);
  assert.equal(config.kubeCaFile, '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
  assert.equal(config.repair.enabled, true);
  assert.equal(config.repair.initContainerExitCode, 126);
  assert.equal(config.repair.brokenPodLabelKey, 'cni.istio.io/uninitialized');
  assert.deepEqual(config.excludeNamespaces, []);
  assert.equal(config.podLookupDeadlineSeconds, undefined);
  assert.equal(config.repair.notReadyTaintKey, '');
  assert.equal(config.kubernetesServiceProtocol, 'https');
  assert.equal(config.pluginLogLevel, 'info');
  // Env-only and plain-env settings, which the §1.1 table test does not parse.
  assert.equal(config.listenAddress, '', 'all interfaces, as the kubelet probes the pod IP');
  assert.equal(config.repair.hostProcDir, '/host/proc');
  assert.equal(config.forceIptablesBinary, '');
  assert.equal(config.confGroupRead, false);
  assert.equal(config.repair.labelPods, false);
  assert.equal(config.repair.deletePods, false);
  assert.equal(config.nativeNftables, false);
  assert.equal(config.enableAmbientDetectionRetry, false);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.repair));
});

test('settings reach their fields: repair label mode, group-read conf, the exit-code filter, /proc, owner groups, node name order', () => {
  const config = loadAgentConfig({
    env: {
      ...required,
      REPAIR_LABEL_PODS: 'true',
      CNI_CONF_GROUP_READ: 'true',
      REPAIR_INIT_CONTAINER_EXIT_CODE: '0',
      HOST_PROC_DIR: '/hostproc',
      ENABLE_AMBIENT_DETECTION_RETRY: 'true',
      LISTEN_ADDRESS: '10.0.0.5',
      ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '1001,1002',
    },
    flags: {},
    mode: 'agent',
    hostname: 'host-a',
  });
  assert.equal(config.repair.labelPods, true);
  assert.equal(config.confGroupRead, true);
  assert.equal(config.repair.initContainerExitCode, 0);
  assert.equal(config.repair.hostProcDir, '/hostproc');
  assert.equal(config.enableAmbientDetectionRetry, true);
  assert.equal(config.listenAddress, '10.0.0.5');
  assert.deepEqual(config.outboundCaptureEnv, { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '1001,1002' });
  // NODE_NAME, then KUBERNETES_NODE_NAME, then the host name.
  const node = (env: Record<string, string>) =>
    loadAgentConfig({ env, flags: {}, mode: 'uninstall', hostname: 'host-a' }).nodeName;
  assert.equal(node({ NODE_NAME: 'a', KUBERNETES_NODE_NAME: 'b' }), 'a');
  assert.equal(node({ KUBERNETES_NODE_NAME: 'b' }), 'b');
  assert.equal(node({}), 'host-a');
});

test('settings that would break every pod on the node are start errors: no bin target, an empty net dir, a lookup deadline below 1 s', () => {
  const load = (env: Record<string, string>) => () => loadAgentConfig({ env, flags: {}, mode: 'uninstall' });
  assert.throws(load({ CNI_BIN_TARGET_DIRS: ',' }), /CNI_BIN_TARGET_DIRS must name at least one directory/);
  assert.throws(load({ MOUNTED_CNI_NET_DIR: '' }), /MOUNTED_CNI_NET_DIR must not be empty/);
  assert.throws(load({ POD_LOOKUP_DEADLINE_SECONDS: '0' }), /POD_LOOKUP_DEADLINE_SECONDS/);
  assert.equal(
    loadAgentConfig({ env: { POD_LOOKUP_DEADLINE_SECONDS: '1' }, flags: {}, mode: 'uninstall' })
      .podLookupDeadlineSeconds,
    1,
  );
});

test('AMBIENT_ENABLED=true stops the agent but not `uninstall`, which must clean up whatever the ConfigMap says', () => {
  assert.throws(
    () => loadAgentConfig({ env: { ...required, AMBIENT_ENABLED: 'true' }, flags: {}, mode: 'agent' }),
    /AMBIENT_ENABLED=true: ambient mode is not supported by this agent; set it to false \(the istio-cni chart's ambient.enabled value\)/,
  );
  assert.equal(
    loadAgentConfig({ env: { AMBIENT_ENABLED: 'true' }, flags: {}, mode: 'uninstall' }).ambientEnabled,
    true,
  );
});

test('flag > env > default; empty env counts as set; Go bools; octal and decimal modes; lists trimmed', () => {
  const config = loadAgentConfig({
    env: {
      ...required,
      MOUNTED_CNI_NET_DIR: '/env/net',
      CNI_CONF_NAME: 'from-env.conflist',
      KUBE_CA_FILE: '',
      CHAINED_CNI_PLUGIN: 'F',
      SKIP_TLS_VERIFY: 'T',
      KUBECONFIG_MODE: '0640',
      EXCLUDE_NAMESPACES: 'from-env',
      NODE_NAME: 'node-from-env',
      POD_LOOKUP_DEADLINE_SECONDS: '7',
      CNI_NOT_READY_TAINT_KEY: 'cni.istio.io/not-ready',
    },
    // EXCLUDE_NAMESPACES and NODE_NAME are env-only upstream; contract.md makes every setting a flag too.
    flags: {
      MOUNTED_CNI_NET_DIR: '/flag/net',
      EXCLUDE_NAMESPACES: ' kube-system, ,istio-system ',
      NODE_NAME: 'node-from-flag',
    },
    logOutputLevel: 'default:warn,cni-plugin:debug',
    mode: 'agent',
  });
  assert.equal(config.netDir, '/flag/net');
  assert.equal(config.confName, 'from-env.conflist');
  assert.equal(config.kubeCaFile, '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
  assert.equal(config.chained, false);
  assert.equal(config.skipTlsVerify, true);
  assert.equal(config.kubeconfigMode, 0o640);
  assert.deepEqual(config.excludeNamespaces, ['kube-system', 'istio-system']);
  assert.equal(config.nodeName, 'node-from-flag');
  assert.equal(config.podLookupDeadlineSeconds, 7);
  assert.equal(config.repair.notReadyTaintKey, 'cni.istio.io/not-ready');
  // default:warn is not the agent's scope (cni-agent keeps Istio's info).
  assert.equal(config.logLevel, 'info');
  assert.equal(config.pluginLogLevel, 'debug');
  const empty = loadAgentConfig({ env: { ...required, CNI_CONF_NAME: '' }, flags: {}, mode: 'agent' });
  assert.equal(empty.confName, '');
});

test('KUBERNETES_SERVICE_PROTOCOL: empty means https and the case does not matter, as upstream; another scheme is refused', () => {
  const protocol = (value: string) =>
    loadAgentConfig({ env: { KUBERNETES_SERVICE_PROTOCOL: value }, flags: {}, mode: 'uninstall' })
      .kubernetesServiceProtocol;
  assert.equal(protocol(''), 'https');
  assert.equal(protocol('HTTPS'), 'HTTPS');
  assert.equal(protocol('Http'), 'Http');
  assert.throws(() => protocol('ftp'), /KUBERNETES_SERVICE_PROTOCOL="ftp": expected "https" or "http"/);
});

test('one error lists every invalid setting with the fix', () => {
  assert.throws(
    () =>
      loadAgentConfig({
        env: {
          MONITORING_PORT: 'abc',
          REPAIR_ENABLED: 'yes',
          KUBECONFIG_MODE: '0999',
          FORCE_IPTABLES_BINARY: 'x',
        },
        flags: { READINESS_PORT: '70000' },
        logAsJson: 'maybe',
        mode: 'agent',
      }),
    (error: Error) => {
      for (const part of [
        'MONITORING_PORT="abc"',
        'REPAIR_ENABLED="yes"',
        'KUBECONFIG_MODE="0999"',
        'FORCE_IPTABLES_BINARY="x"',
        '--readiness-port="70000"',
        '--log_as_json="maybe"',
        'KUBERNETES_SERVICE_HOST not set. Is this not running within a pod?',
        'KUBERNETES_SERVICE_PORT not set. Is this not running within a pod?',
      ]) {
        assert.ok(error.message.includes(part), `missing ${part} in ${error.message}`);
      }
      return true;
    },
  );
});

test('paths the plugin or the net dir would misread are start errors: a relative run dir, a conf name with a path, a port past 65535', () => {
  const load = (env: Record<string, string>) => () => loadAgentConfig({ env, flags: {}, mode: 'uninstall' });
  assert.throws(load({ CNI_AGENT_RUN_DIR: 'run' }), /CNI_AGENT_RUN_DIR="run": expected an absolute path/);
  for (const name of ['../escaped.conf', 'a/b.conf', '..', '.']) {
    assert.throws(
      load({ CNI_CONF_NAME: name }),
      new RegExp(`CNI_CONF_NAME=${JSON.stringify(name).replace(/\./g, '\\.')}: expected a file name`),
    );
  }
  assert.throws(
    load({ MONITORING_PORT: '70000' }),
    /MONITORING_PORT="70000": expected a port number <= 65535/,
  );
  assert.equal(
    loadAgentConfig({ env: { MONITORING_PORT: '-1' }, flags: {}, mode: 'uninstall' }).monitoringPort,
    -1,
  );
  assert.equal(
    loadAgentConfig({ env: { CNI_CONF_NAME: '10-x.conflist' }, flags: {}, mode: 'uninstall' }).confName,
    '10-x.conflist',
  );
});

test('an API server address no URL can hold is a start error; IPv4, IPv6 and DNS names are taken', () => {
  for (const [host, port] of [
    ['10.96.0.1', '443'],
    ['fd00::1', '6443'],
    ['kubernetes.default.svc', '1'],
  ]) {
    const config = loadAgentConfig({
      env: { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port },
      flags: {},
      mode: 'agent',
    });
    assert.equal(config.kubernetesServiceHost, host);
  }
  for (const [host, port, message] of [
    ['10.96.0.1', '443 ', 'KUBERNETES_SERVICE_PORT="443 ": expected a port number (1-65535)'],
    ['10.96.0.1', 'https', 'KUBERNETES_SERVICE_PORT="https": expected a port number (1-65535)'],
    ['10.96.0.1', '65536', 'KUBERNETES_SERVICE_PORT="65536": expected a port number (1-65535)'],
    ['10.96.0.1', '0', 'KUBERNETES_SERVICE_PORT="0": expected a port number (1-65535)'],
    ['api server', '443', 'KUBERNETES_SERVICE_HOST="api server": expected a host name or IP address'],
    [
      'https://10.0.0.1',
      '443',
      'KUBERNETES_SERVICE_HOST="https://10.0.0.1": expected a host name or IP address',
    ],
  ]) {
    assert.throws(
      () =>
        loadAgentConfig({
          env: { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port },
          flags: {},
          mode: 'agent',
        }),
      (error: Error) => error.message.includes(message ?? ''),
      `${host} ${port}`,
    );
  }
});

test("the agent's ISTIO_OUTBOUND_* environment is kept for repair's rules, only the names set", () => {
  const config = loadAgentConfig({
    env: {
      ...required,
      ISTIO_OUTBOUND_OWNER_GROUPS: 'java,1001',
      ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.6/32',
      HOME: '/root',
    },
    flags: {},
    mode: 'agent',
  });
  assert.deepEqual(config.outboundCaptureEnv, {
    ISTIO_OUTBOUND_OWNER_GROUPS: 'java,1001',
    ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.6/32',
  });
});

test('an empty boolean or number in the env takes its default with a warning naming it (a chart value that rendered empty), where viper would read false/0', () => {
  const config = loadAgentConfig({
    env: {
      CHAINED_CNI_PLUGIN: '',
      KUBECONFIG_MODE: '',
      MONITORING_PORT: '',
      REPAIR_ENABLED: '',
      NATIVE_NFTABLES: '',
      POD_LOOKUP_DEADLINE_SECONDS: '',
    },
    flags: {},
    mode: 'uninstall',
  });
  assert.equal(config.chained, true);
  assert.equal(config.kubeconfigMode, 0o600);
  assert.equal(config.monitoringPort, 15014);
  assert.equal(config.repair.enabled, true);
  assert.equal(config.nativeNftables, false);
  assert.equal(config.podLookupDeadlineSeconds, undefined);
  assert.deepEqual(config.settingWarnings, [
    'CHAINED_CNI_PLUGIN is set but empty: its default true applies (upstream would read false)',
    'KUBECONFIG_MODE is set but empty: its default 384 applies (upstream would read 0)',
    'MONITORING_PORT is set but empty: its default 15014 applies (upstream would read 0)',
    'REPAIR_ENABLED is set but empty: its default true applies (upstream would read false)',
    'POD_LOOKUP_DEADLINE_SECONDS is set but empty: left unset (upstream would read 0)',
    'NATIVE_NFTABLES is set but empty: its default false applies (as upstream reads it)',
  ]);
  // Whitespace is no empty value: it stays an error, as a typo would.
  assert.throws(
    () => loadAgentConfig({ env: { CHAINED_CNI_PLUGIN: ' ' }, flags: {}, mode: 'uninstall' }),
    /CHAINED_CNI_PLUGIN=" ": expected a boolean/,
  );
  // An empty string setting is a value, not a default: no warning.
  const confName = loadAgentConfig({ env: { CNI_CONF_NAME: '' }, flags: {}, mode: 'uninstall' });
  assert.deepEqual(confName.settingWarnings, []);
});

test('uninstall mode does not need the API server; ambient is rejected', () => {
  assert.doesNotThrow(() => loadAgentConfig({ env: {}, flags: {}, mode: 'uninstall' }));
  assert.throws(
    () => loadAgentConfig({ env: { ...required, AMBIENT_ENABLED: 'true' }, flags: {}, mode: 'agent' }),
    /ambient mode is not supported/,
  );
});

test('Go ParseBool and Istio log levels', () => {
  for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(parseGoBool(t), true);
  for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(parseGoBool(f), false);
  assert.equal(parseGoBool('yes'), undefined);
  assert.deepEqual(parseLogOutputLevel('debug'), { scopes: new Map([['default', 'debug']]) });
  assert.deepEqual(parseLogOutputLevel('default:info,cni-agent:error'), {
    scopes: new Map([
      ['default', 'info'],
      ['cni-agent', 'error'],
    ]),
  });
  // As Istio's log package: an invalid item ends the list; the ones before it stay applied.
  assert.deepEqual(parseLogOutputLevel('cni-agent:debug,default:loud,cni-plugin:debug'), {
    scopes: new Map([['cni-agent', 'debug']]),
    invalid: 'invalid level in "default:loud" (debug, info, warn, error, fatal, none)',
  });
  // Istio's override scope: sets every scope, and what follows it is not read.
  assert.deepEqual(parseLogOutputLevel('cni-agent:debug,all:warn,cni-plugin:debug'), {
    scopes: new Map([['all', 'warn']]),
  });
});

test('an invalid --log_output_level does not stop the agent (upstream only logs it): the items before it apply', () => {
  const config = loadAgentConfig({
    env: required,
    flags: {},
    logOutputLevel: 'cni-plugin:debug,cni-agent:trace,repair:debug',
    mode: 'agent',
  });
  assert.equal(config.pluginLogLevel, 'debug');
  assert.equal(config.logLevel, 'info');
  assert.equal(config.repairLogLevel, 'info');
  assert.equal(
    config.logOutputLevelError,
    '--log_output_level="cni-plugin:debug,cni-agent:trace,repair:debug": invalid level in "cni-agent:trace" (debug, info, warn, error, fatal, none)',
  );
  assert.equal(withLogLevels('cni-agent:debug').logOutputLevelError, undefined);
});

test('--log_output_level all:<level> and fatal reach the agent and the plugin entry as Istio levels', () => {
  const all = withLogLevels('default:info,all:debug');
  assert.equal(all.logLevel, 'debug');
  assert.equal(all.pluginLogLevel, 'debug');
  const fatal = withLogLevels('cni-agent:fatal');
  assert.equal(fatal.logLevel, 'fatal');
  assert.equal(buildPluginEntry(fatal)['plugin_log_level'], 'fatal');
});

test('a level without a scope is the default scope only, as in Istio: the agent and the plugin entry stay at info', () => {
  for (const logOutputLevel of ['debug', 'default:debug', 'warn', 'cni:debug']) {
    const config = withLogLevels(logOutputLevel);
    assert.equal(config.logLevel, 'info', logOutputLevel);
    assert.equal(buildPluginEntry(config)['plugin_log_level'], 'info', logOutputLevel);
  }
  // The repair controller's scope is its own, as in Istio.
  const repair = withLogLevels('cni-agent:error,repair:debug');
  assert.equal(repair.logLevel, 'error');
  assert.equal(repair.repairLogLevel, 'debug');
  assert.equal(withLogLevels('all:warn').repairLogLevel, 'warn');
  const agentOnly = withLogLevels('debug,cni-agent:debug');
  assert.equal(agentOnly.logLevel, 'debug');
  assert.equal(agentOnly.pluginLogLevel, 'debug');
});

test('KUBECONFIG_MODE values that are valid but a likely mistake are warned about, the default is not', () => {
  assert.deepEqual(loadAgentConfig({ env: {}, flags: {}, mode: 'uninstall' }).settingWarnings, []);
  assert.deepEqual(kubeconfigModeWarnings(0o640), []);
  assert.deepEqual(kubeconfigModeWarnings(0o400), []);
  // Decimal 600, meant as octal: 01130.
  const decimal600 = loadAgentConfig({
    env: { KUBECONFIG_MODE: '600' },
    flags: {},
    mode: 'uninstall',
  }).settingWarnings;
  assert.equal(decimal600.length, 2);
  assert.match(decimal600[0] ?? '', /KUBECONFIG_MODE is 01130: group or others can write/);
  assert.match(decimal600[1] ?? '', /a decimal value meant as octal\? 384 is 0600/);
  assert.deepEqual(kubeconfigModeWarnings(0o644), [
    'KUBECONFIG_MODE is 0644: every local user can read the token in the plugin kubeconfig',
  ]);
});

test('KUBECONFIG_MODE: decimal or octal, 0 in either spelling, nothing past 0o7777', () => {
  const mode = (value: string) =>
    loadAgentConfig({ env: { KUBECONFIG_MODE: value }, flags: {}, mode: 'uninstall' }).kubeconfigMode;
  assert.equal(mode('384'), 0o600);
  assert.equal(mode('0600'), 0o600);
  assert.equal(mode('0o640'), 0o640);
  assert.equal(mode('0'), 0);
  assert.equal(mode('00'), 0);
  assert.equal(mode('4095'), 0o7777);
  for (const value of ['4096', '010000', '-1', '0x180', '06o0']) {
    assert.throws(() => mode(value), /KUBECONFIG_MODE=.*expected a file mode/, value);
  }
});

test('READINESS_PORT: 0 (any free port) to 65535; a negative one is a start error naming it, while a negative MONITORING_PORT is kept (it disables /metrics)', () => {
  const ports = (env: Record<string, string>) => {
    const config = loadAgentConfig({ env, flags: {}, mode: 'uninstall' });
    return [config.readinessPort, config.monitoringPort];
  };
  assert.deepEqual(ports({ READINESS_PORT: '0', MONITORING_PORT: '-15014' }), [0, -15014]);
  assert.deepEqual(ports({ READINESS_PORT: '65535', MONITORING_PORT: '65535' }), [65535, 65535]);
  assert.throws(() => ports({ READINESS_PORT: '-1' }), /READINESS_PORT="-1": expected a port >= 0/);
  assert.throws(
    () => ports({ READINESS_PORT: '65536' }),
    /READINESS_PORT="65536": expected a port number <= 65535/,
  );
});

test('an empty --monitoring-port or --readiness-port flag is a start error naming the flag, as pflag refuses an empty int', () => {
  assert.throws(
    () =>
      loadAgentConfig({
        env: { MONITORING_PORT: '15014', READINESS_PORT: '8000' },
        flags: { MONITORING_PORT: '', READINESS_PORT: '' },
        mode: 'uninstall',
      }),
    (error: Error) =>
      error.message.includes('--monitoring-port="": expected an integer') &&
      error.message.includes('--readiness-port="": expected an integer'),
  );
});

test('--log_output_level: a scope Istio does not register (cni) is ignored without an error, as Istio does; the agent, plugin and repair stay at info', () => {
  const config = withLogLevels('default:info,cni:debug');
  assert.equal(config.logOutputLevelError, undefined);
  assert.equal(config.logLevel, 'info');
  assert.equal(config.pluginLogLevel, 'info');
  assert.equal(config.repairLogLevel, 'info');
  // What follows the unknown scope is still read; an empty scope is one more unknown scope.
  assert.equal(withLogLevels('cni:debug,cni-agent:warn').logLevel, 'warn');
  const emptyScope = withLogLevels(':debug,cni-agent:debug');
  assert.equal(emptyScope.logOutputLevelError, undefined);
  assert.equal(emptyScope.logLevel, 'debug');
});

test('LOG_LEVEL (env or --log-level) is registered but unused, as upstream: any value is taken and sets no level', () => {
  const config = loadAgentConfig({
    env: { LOG_LEVEL: 'debug' },
    flags: {},
    mode: 'uninstall',
  });
  assert.equal(config.logLevel, 'info');
  assert.equal(config.pluginLogLevel, 'info');
  assert.equal(config.repairLogLevel, 'info');
  assert.equal(config.logOutputLevelError, undefined);
  const bogus = loadAgentConfig({ env: {}, flags: { LOG_LEVEL: 'bogus' }, mode: 'uninstall' });
  assert.equal(bogus.logLevel, 'info');
  assert.equal(bogus.logOutputLevelError, undefined);
});
