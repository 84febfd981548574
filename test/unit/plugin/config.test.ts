// The plugin's netconf extension (behaviour §2.3): defaults, Go-like null and key handling, type errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePluginConfig } from '../../../src/plugin/config.ts';

const DEFAULTS = {
  cniVersion: '1.0.0',
  name: 'k8s-pod-network',
  prevResult: undefined,
  pluginLogLevel: undefined,
  cniAgentRunDir: '',
  ambientEnabled: false,
  enablementSelectors: [],
  excludeNamespaces: [],
  podNamespace: '',
  nativeNftables: false,
  enableAmbientDetectionRetry: false,
  podLookupDeadlineSeconds: undefined,
};

test('every Istio key absent or null takes its §2.3 default', () => {
  assert.deepEqual(parsePluginConfig({ name: 'k8s-pod-network' }, '1.0.0'), DEFAULTS);
  assert.deepEqual(
    parsePluginConfig(
      {
        name: 'k8s-pod-network',
        plugin_log_level: null,
        cni_agent_run_dir: null,
        ambient_enabled: null,
        enablement_selectors: null,
        exclude_namespaces: null,
        pod_namespace: null,
        native_nftables: null,
        enable_ambient_detection_retry: null,
        pod_lookup_deadline_seconds: null,
      },
      '1.0.0',
    ),
    DEFAULTS,
  );
});

test('values are read under any key case, the last spelling winning; the config version is the one given', () => {
  const config = parsePluginConfig(
    {
      Name: 'k8s-pod-network',
      POD_NAMESPACE: 'first',
      pod_namespace: 'istio-system',
      Exclude_Namespaces: ['kube-system'],
      CNI_AGENT_RUN_DIR: '/var/run/istio-cni',
      Ambient_Enabled: true,
      native_nftables: true,
      enable_ambient_detection_retry: true,
      enablement_selectors: [{}],
      pod_lookup_deadline_seconds: 2.5,
      prevResult: { cniVersion: '0.3.1' },
      cniVersion: '0.3.1',
    },
    '0.4.0',
  );
  assert.deepEqual(config, {
    cniVersion: '0.4.0',
    name: 'k8s-pod-network',
    prevResult: { cniVersion: '0.3.1' },
    pluginLogLevel: undefined,
    cniAgentRunDir: '/var/run/istio-cni',
    ambientEnabled: true,
    enablementSelectors: [{}],
    excludeNamespaces: ['kube-system'],
    podNamespace: 'istio-system',
    nativeNftables: true,
    enableAmbientDetectionRetry: true,
    podLookupDeadlineSeconds: 2.5,
  });
});

test('plugin_log_level: the six levels are overrides, anything else is none', () => {
  for (const level of ['debug', 'info', 'warn', 'error', 'fatal', 'none']) {
    assert.equal(
      parsePluginConfig({ name: 'n', plugin_log_level: level }, '1.0.0').pluginLogLevel,
      level,
      level,
    );
  }
  for (const level of ['', 'verbose', 'trace']) {
    assert.equal(
      parsePluginConfig({ name: 'n', plugin_log_level: level }, '1.0.0').pluginLogLevel,
      undefined,
      level,
    );
  }
});

test('a key of the wrong type fails, naming the key; the deadline must be positive', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ pod_namespace: 1 }, 'pod_namespace'],
    [{ cni_agent_run_dir: true }, 'cni_agent_run_dir'],
    [{ plugin_log_level: 3 }, 'plugin_log_level'],
    [{ ambient_enabled: 'true' }, 'ambient_enabled'],
    [{ native_nftables: 1 }, 'native_nftables'],
    [{ exclude_namespaces: 'kube-system' }, 'exclude_namespaces'],
    [{ exclude_namespaces: ['kube-system', 7] }, 'exclude_namespaces.1'],
    [{ enablement_selectors: {} }, 'enablement_selectors'],
    [{ pod_lookup_deadline_seconds: 0 }, 'pod_lookup_deadline_seconds'],
    [{ pod_lookup_deadline_seconds: -5 }, 'pod_lookup_deadline_seconds'],
    [{ pod_lookup_deadline_seconds: '5' }, 'pod_lookup_deadline_seconds'],
  ];
  for (const [extra, key] of cases) {
    assert.throws(
      () => parsePluginConfig({ name: 'n', ...extra }, '1.0.0'),
      (error: unknown) =>
        error instanceof Error && error.message.startsWith(`failed to parse network configuration: ${key}: `),
      JSON.stringify(extra),
    );
  }
  assert.throws(
    () => parsePluginConfig({}, '1.0.0'),
    /^Error: failed to parse network configuration: name: /,
  );
});
