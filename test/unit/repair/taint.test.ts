import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removeNotReadyTaint, withoutTaint } from '../../../src/repair/taint.ts';
import type { NodeTaints, Taint } from '../../../src/repair/api.ts';
import { KubeError } from '../../../src/errors.ts';
import { silentLogger } from '../../support/repair-harness.ts';

const KEY = 'cni.istio.io/not-ready';

test('withoutTaint removes every effect of the key and keeps the rest in order', () => {
  const taints: Taint[] = [
    { key: 'a', effect: 'NoSchedule' },
    { key: KEY, value: 'true', effect: 'NoSchedule' },
    { key: KEY, effect: 'NoExecute' },
    { key: 'b', effect: 'PreferNoSchedule' },
  ];
  assert.deepEqual(withoutTaint(taints, KEY), [taints[0], taints[3]]);
});

function fakeApi(node: NodeTaints, conflicts: number) {
  const patches: { rv: string; taints: readonly Taint[] }[] = [];
  let state = node;
  return {
    patches,
    api: {
      getNodeTaints: () => Promise.resolve(state),
      setNodeTaints: (_name: string, rv: string, taints: readonly Taint[]) => {
        patches.push({ rv, taints });
        if (patches.length <= conflicts) {
          state = { ...state, resourceVersion: String(Number(state.resourceVersion) + 1) };
          return Promise.reject(new KubeError('conflict', { status: 409, retryable: true }));
        }
        state = { resourceVersion: 'x', taints };
        return Promise.resolve();
      },
    },
  };
}

test('removes the taint, re-reading after a conflict; running it twice is a no-op', async () => {
  const { api, patches } = fakeApi({ resourceVersion: '1', taints: [{ key: KEY, effect: 'NoSchedule' }] }, 1);
  assert.equal(await removeNotReadyTaint('n', KEY, { api, logger: silentLogger() }), 'removed');
  assert.deepEqual(
    patches.map((p) => p.rv),
    ['1', '2'],
  );
  assert.equal(await removeNotReadyTaint('n', KEY, { api, logger: silentLogger() }), 'absent');
  assert.equal(patches.length, 2);
});

test('persistent conflicts and other errors are returned to the caller (which backs off)', async () => {
  const { api, patches } = fakeApi(
    { resourceVersion: '1', taints: [{ key: KEY, effect: 'NoSchedule' }] },
    100,
  );
  await assert.rejects(
    removeNotReadyTaint('n', KEY, { api, logger: silentLogger(), maxConflictRetries: 2 }),
    /conflict/,
  );
  assert.equal(patches.length, 3, 'the first patch and 2 retries');
  // By default 5 retries after the first conflict: 6 patches in all.
  const byDefault = fakeApi({ resourceVersion: '1', taints: [{ key: KEY, effect: 'NoSchedule' }] }, 100);
  await assert.rejects(
    removeNotReadyTaint('n', KEY, { api: byDefault.api, logger: silentLogger() }),
    /conflict/,
  );
  assert.equal(byDefault.patches.length, 6);
  // Five conflicts, then success: still within the default.
  const fiveThenOk = fakeApi({ resourceVersion: '1', taints: [{ key: KEY, effect: 'NoSchedule' }] }, 5);
  assert.equal(
    await removeNotReadyTaint('n', KEY, { api: fiveThenOk.api, logger: silentLogger() }),
    'removed',
  );
});

test('an error other than a conflict is returned at once: one read, one patch, no retry here', async () => {
  for (const status of [403, 500]) {
    let reads = 0;
    const patches: string[] = [];
    const api = {
      getNodeTaints: () => {
        reads++;
        return Promise.resolve({ resourceVersion: '1', taints: [{ key: KEY, effect: 'NoSchedule' }] });
      },
      setNodeTaints: (_name: string, rv: string) => {
        patches.push(rv);
        return Promise.reject(new KubeError(`status ${status}`, { status, retryable: status >= 500 }));
      },
    };
    await assert.rejects(
      removeNotReadyTaint('n', KEY, { api, logger: silentLogger() }),
      new RegExp(`status ${status}`),
    );
    assert.deepEqual([reads, patches], [1, ['1']], `status ${status}`);
  }
});
