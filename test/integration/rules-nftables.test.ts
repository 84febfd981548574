// Rule engine against the kernel (root): native nftables mode, each scenario applied twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerCaptureScenarios, withNumericGroups } from '../support/rules-scenarios.ts';

registerCaptureScenarios('nftables');

test('every nftables golden is a transaction the kernel accepts (nft -c in a scratch netns)', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const { createPodPair, runIn } = await import('../support/netns.ts');
  const dir = fileURLToPath(new URL('../unit/rules/testdata/', import.meta.url));
  const pair = await createPodPair({ prefix: 'ib' });
  try {
    for (const name of readdirSync(dir).filter((file) => file.endsWith('.nft.golden'))) {
      const result = await runIn(pair.pod.path, ['nft', '-c', '-f', '-'], {
        input: withNumericGroups(readFileSync(dir + name, 'utf8')),
      });
      assert.equal(result.exitCode, 0, `${name}: ${result.stderr}`);
    }
  } finally {
    await pair.destroy();
  }
});
