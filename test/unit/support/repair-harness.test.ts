// The repair tests' waiting helpers end with a message instead of hanging until the runner's limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingMetrics } from '../../support/repair-harness.ts';

test('RecordingMetrics.waitFor resolves on the increment that reaches the count, and rejects at its deadline naming the counter and its value', async () => {
  const metrics = new RecordingMetrics();
  const reached = metrics.waitFor('repairs_total', { result: 'success' }, 2);
  metrics.increment('repairs_total', '', { result: 'success' });
  metrics.increment('repairs_total', '', { result: 'success' });
  await reached;
  await assert.rejects(
    metrics.waitFor('repairs_total', { result: 'success' }, 3, 20),
    /timed out after 20 ms waiting for repairs_total\{result=success\} >= 3 \(it is 2\)/,
  );
});
