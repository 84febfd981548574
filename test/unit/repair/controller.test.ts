import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iptablesVariantFrom, podSelectors, startRepairController } from '../../../src/repair/controller.ts';
import { ConfigError } from '../../../src/errors.ts';
import { DEFAULT_REPAIR, RecordingMetrics, silentLogger } from '../../support/repair-harness.ts';
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
    kubernetesServiceProtocol: 'https',
    serviceAccountDir: '/nonexistent',
    kubeCaFile: '/nonexistent/ca.crt',
    skipTlsVerify: false,
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

test('disabled without a taint key: nothing starts, no client is built', async () => {
  let built = false;
  const handle = startRepairController(config({ enabled: false }), {
    logger: silentLogger(),
    metrics: new RecordingMetrics(),
    signal: new AbortController().signal,
    client: () => {
      built = true;
      throw new Error('unexpected');
    },
  });
  await handle.stop();
  assert.equal(built, false);
});

test('a client that cannot be built is logged, never thrown (the install keeps going)', async () => {
  const handle = startRepairController(config({}), {
    logger: silentLogger(),
    metrics: new RecordingMetrics(),
    signal: new AbortController().signal,
    client: () => {
      throw new Error('no token');
    },
  });
  await handle.stop();
  assert.equal(handle.reconciler, undefined);
});
