import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createPodEventRecorder } from '../../../src/repair/event-recorder.ts';
import type { PodRef } from '../../../src/repair/api.ts';

const pod = (name: string): PodRef => ({
  namespace: 'default',
  name,
  uid: `uid-${name}`,
  resourceVersion: '1',
});

function capturing() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { lines, logger };
}

test('events are written one at a time, in the order recorded; a refused one is logged and the rest still go', async () => {
  const written: string[] = [];
  let inFlight = 0;
  const { lines, logger } = capturing();
  const recorder = createPodEventRecorder({
    async recordPodEvent(ref, reason) {
      inFlight += 1;
      assert.equal(inFlight, 1, 'one request at a time');
      await new Promise((resolve) => setImmediate(resolve));
      inFlight -= 1;
      if (ref.name === 'b') throw new Error('events is forbidden');
      written.push(`${ref.name} ${reason}`);
    },
  });
  for (const name of ['a', 'b', 'c']) recorder.record(pod(name), 'DeleteBrokenPod', 'deleted', logger);
  await recorder.idle();
  assert.deepEqual(written, ['a DeleteBrokenPod', 'c DeleteBrokenPod']);
  assert.deepEqual(
    lines.map((line) => [line['msg'], line['err'], line['reason']]),
    [['failed to record event', 'events is forbidden', 'DeleteBrokenPod']],
  );
  // Idle again, and a later event starts a new sender.
  await recorder.idle();
  recorder.record(pod('d'), 'DeleteBrokenPod', 'deleted', logger);
  await recorder.idle();
  assert.deepEqual(written.at(-1), 'd DeleteBrokenPod');
});

test('a full queue drops events with one warning per burst, and takes them again once there is room', async () => {
  const written: string[] = [];
  let release: () => void = () => undefined;
  const blocked = new Promise<void>((resolve) => (release = resolve));
  const { lines, logger } = capturing();
  const recorder = createPodEventRecorder(
    {
      async recordPodEvent(ref) {
        await blocked;
        written.push(ref.name);
      },
    },
    2,
  );
  // 'a' is taken off the queue at once (in flight); 'b' and 'c' fill it; 'd' and 'e' are dropped.
  for (const name of ['a', 'b', 'c', 'd', 'e'])
    recorder.record(pod(name), 'LabelBrokenPod', 'labeled', logger);
  assert.deepEqual(
    lines.map((line) => line['msg']),
    ['event queue full; dropping events'],
  );
  release();
  await recorder.idle();
  assert.deepEqual(written, ['a', 'b', 'c']);
  recorder.record(pod('f'), 'LabelBrokenPod', 'labeled', logger);
  await recorder.idle();
  assert.deepEqual(written, ['a', 'b', 'c', 'f']);
});

test('each burst of drops gets its own warning (an accepted event ends a burst)', async () => {
  let release: () => void = () => undefined;
  let blocked = new Promise<void>((resolve) => (release = resolve));
  const { lines, logger } = capturing();
  const recorder = createPodEventRecorder({ recordPodEvent: () => blocked }, 1);
  const burst = (names: string[]) => {
    for (const name of names) recorder.record(pod(name), 'LabelBrokenPod', 'labeled', logger);
  };
  burst(['a', 'b', 'c', 'd']); // a in flight, b queued, c and d dropped: one warning
  release();
  await recorder.idle();
  blocked = new Promise<void>((resolve) => (release = resolve));
  burst(['e', 'f', 'g']); // e in flight, f queued, g dropped: a second burst, a second warning
  release();
  await recorder.idle();
  assert.deepEqual(
    lines.map((line) => line['msg']),
    ['event queue full; dropping events', 'event queue full; dropping events'],
  );
});
