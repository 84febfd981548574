import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iptablesVariantFrom, podSelectors } from '../../../src/repair/selectors.ts';
import { ConfigError } from '../../../src/errors.ts';
import { DEFAULT_REPAIR } from '../../support/repair-harness.ts';
import type { RepairControllerConfig } from '../../../src/repair/controller.ts';

function config(
  repair: Partial<RepairControllerConfig['repair']>,
  nodeName = 'node-a',
): RepairControllerConfig {
  return {
    repair: { ...DEFAULT_REPAIR, ...repair },
    nativeNftables: false,
    forceIptablesBinary: '',
    nodeName,
    kubernetesServiceHost: '127.0.0.1',
    kubernetesServicePort: '1',
    serviceAccountDir: '/nonexistent',
    outboundCaptureEnv: {},
  };
}

test('selectors: REPAIR_FIELD_SELECTORS joined with spec.nodeName; label selector verbatim', () => {
  assert.deepEqual(podSelectors(config({ nodeName: 'n1' })), {
    fieldSelector: 'spec.nodeName=n1',
    labelSelector: '',
  });
  assert.deepEqual(
    podSelectors(config({ nodeName: 'n1', fieldSelectors: 'status.phase=Pending', labelSelectors: 'app=x' })),
    {
      fieldSelector: 'status.phase=Pending,spec.nodeName=n1',
      labelSelector: 'app=x',
    },
  );
});

test('selectors (quirk §8.5): empty REPAIR_NODE_NAME falls back to NODE_NAME, then to upstream spec.nodeName=', () => {
  assert.equal(
    podSelectors(config({ nodeName: '' }, 'agent-node')).fieldSelector,
    'spec.nodeName=agent-node',
  );
  assert.equal(podSelectors(config({ nodeName: '' }, '')).fieldSelector, 'spec.nodeName=');
});

test('FORCE_IPTABLES_BINARY: "", legacy, nft; anything else is a ConfigError at use', () => {
  assert.equal(iptablesVariantFrom(''), undefined);
  assert.equal(iptablesVariantFrom('legacy'), 'legacy');
  assert.equal(iptablesVariantFrom('nft'), 'nft');
  assert.throws(() => iptablesVariantFrom('nf_tables'), ConfigError);
});
