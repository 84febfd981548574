// Port of upstream's TestIPTablesRuleGeneration (plugin_dryrun_test.go) from the plugin's side: a pod manifest as
// the API returns it → podInfoFromManifest → captureConfigFromPod → rule builder → restore document, compared byte
// for byte with upstream's cni/pkg/plugin/testdata goldens. This pins the plugin's parameter derivation (§2.7)
// against upstream's observable output, not against our own reading of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { captureConfigFromPod, podInfoFromManifest } from '../../../src/plugin/redirect.ts';
import { buildCaptureRules } from '../../../src/rules/build.ts';
import { renderRestoreDocument } from '../../../src/rules/render-iptables.ts';

const GOLDENS = fileURLToPath(
  new URL('../../../../shared/conformance/istio-plugin-goldens/', import.meta.url),
);

interface Scenario {
  readonly golden: string;
  readonly annotations?: Record<string, string>;
  readonly env?: Record<string, string>;
  readonly securityContext?: Record<string, number>;
}

const SCENARIOS: Record<string, Scenario> = {
  basic: { golden: 'basic' },
  'include-exclude-ip': {
    golden: 'include-exclude-ip',
    annotations: {
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '127.0.0.0/8',
      'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.0.0.0/8',
    },
  },
  'include-exclude-ports': {
    golden: 'include-exclude-ports',
    annotations: {
      'traffic.sidecar.istio.io/includeInboundPorts': '1111,2222',
      'traffic.sidecar.istio.io/excludeInboundPorts': '3333,4444',
      'traffic.sidecar.istio.io/excludeOutboundPorts': '5555,6666',
    },
  },
  tproxy: { golden: 'tproxy', annotations: { 'sidecar.istio.io/interceptionMode': 'TPROXY' } },
  DNS: { golden: 'dns', env: { ISTIO_META_DNS_CAPTURE: 'true' } },
  'invalid-drop': { golden: 'invalid-drop', env: { INVALID_DROP: 'true' } },
  'custom-uid': { golden: 'custom-uid', securityContext: { runAsUser: 1000670000, runAsGroup: 1000670001 } },
  'custom-uid-zero': { golden: 'basic', securityContext: { runAsUser: 0 } },
  'custom-uid-tproxy': {
    golden: 'custom-uid-tproxy',
    annotations: { 'sidecar.istio.io/interceptionMode': 'TPROXY' },
    securityContext: { runAsUser: 1000670000, runAsGroup: 1000670001 },
  },
};

function manifest(scenario: Scenario): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'test',
      namespace: 'testNS',
      annotations: { 'sidecar.istio.io/status': '{"containers":["istio-proxy"]}', ...scenario.annotations },
    },
    spec: {
      containers: [
        { name: 'test', image: 'app' },
        {
          name: 'istio-proxy',
          image: 'proxyv2',
          env: Object.entries(scenario.env ?? {}).map(([name, value]) => ({ name, value })),
          ...(scenario.securityContext === undefined ? {} : { securityContext: scenario.securityContext }),
        },
        { name: 'istio-validate', image: 'proxyv2' },
      ],
    },
  };
}

for (const [name, scenario] of Object.entries(SCENARIOS)) {
  test(`plugin dry-run golden: ${name}`, () => {
    const config = captureConfigFromPod(podInfoFromManifest(manifest(scenario)), {});
    const document = renderRestoreDocument(buildCaptureRules(config).rules.v4);
    assert.equal(document, readFileSync(`${GOLDENS}${scenario.golden}.txt.golden`, 'utf8'));
  });
}
