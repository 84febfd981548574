import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkQueue } from '../../../src/repair/queue.ts';

test('de-duplicates keys and processes each once', async () => {
  const seen: string[] = [];
  const queue = createWorkQueue({ process: (key) => (seen.push(key), Promise.resolve()), onError: () => {} });
  queue.add('a');
  queue.add('b');
  queue.add('a');
  await queue.idle();
  assert.deepEqual(seen, ['a', 'b']);
  await queue.shutDown();
});

test('a key added while it is processed runs again afterwards, never concurrently', async () => {
  let active = 0;
  let maxActive = 0;
  const seen: string[] = [];
  let release: (() => void) | undefined;
  const first = new Promise<void>((resolve) => (release = resolve));
  let started: (() => void) | undefined;
  const firstStarted = new Promise<void>((resolve) => (started = resolve));
  const queue = createWorkQueue({
    process: async (key) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      seen.push(key);
      started?.();
      if (seen.length === 1) await first;
      active -= 1;
    },
    onError: () => {},
  });
  queue.add('a');
  await firstStarted;
  queue.add('a');
  release?.();
  await queue.idle();
  assert.deepEqual(seen, ['a', 'a']);
  assert.equal(maxActive, 1);
  await queue.shutDown();
});

test('failures are retried with back-off and dropped after 5 attempts', async () => {
  let calls = 0;
  const errors: { attempt: number; final: boolean }[] = [];
  const queue = createWorkQueue({
    process: () => {
      calls += 1;
      return Promise.reject(new Error('boom'));
    },
    onError: (_key, _error, attempt, final) => errors.push({ attempt, final }),
    baseDelayMs: 1,
  });
  queue.add('k');
  await queue.idle();
  assert.equal(calls, 5);
  assert.deepEqual(
    errors.map((e) => e.final),
    [false, false, false, false, true],
  );
  assert.deepEqual(
    errors.map((e) => e.attempt),
    [1, 2, 3, 4, 5],
  );
  await queue.shutDown();
});

test('success after failures resets the attempt count: a later run of failures gets all 5 attempts again', async () => {
  const outcomes = ['fail', 'fail', 'fail', 'ok', 'fail', 'fail', 'fail', 'fail', 'fail'];
  let calls = 0;
  const attempts: number[] = [];
  const queue = createWorkQueue({
    process: () => (outcomes[calls++] === 'ok' ? Promise.resolve() : Promise.reject(new Error('boom'))),
    onError: (_key, _error, attempt) => attempts.push(attempt),
    baseDelayMs: 1,
  });
  queue.add('k');
  await queue.idle();
  assert.equal(calls, 4);
  queue.add('k');
  await queue.idle();
  assert.equal(calls, 9);
  assert.deepEqual(attempts, [1, 2, 3, 1, 2, 3, 4, 5]);
  await queue.shutDown();
});

test('defaults as client-go: the first retry after 5 ms, doubling, dropped after 5 attempts', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  let calls = 0;
  const finals: boolean[] = [];
  const queue = createWorkQueue({
    process: () => {
      calls += 1;
      return Promise.reject(new Error('boom'));
    },
    onError: (_key, _error, _attempt, final) => finals.push(final),
  });
  queue.add('k');
  await settle();
  for (const delay of [5, 10, 20, 40]) {
    const before = calls;
    t.mock.timers.tick(delay - 1);
    await settle();
    assert.equal(calls, before, `not before ${delay} ms`);
    t.mock.timers.tick(1);
    await settle();
    assert.equal(calls, before + 1, `at ${delay} ms`);
  }
  assert.deepEqual(finals, [false, false, false, false, true]);
  await queue.shutDown();
});

test('a fresh add of a key in back-off runs it at once; shutDown cancels a pending retry', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  let calls = 0;
  const queue = createWorkQueue({
    process: () => {
      calls += 1;
      return Promise.reject(new Error('boom'));
    },
    onError: () => {},
    baseDelayMs: 60_000,
  });
  queue.add('k');
  await settle();
  assert.equal(calls, 1);
  queue.add('k'); // an informer event for it: no waiting out the minute
  await settle();
  assert.equal(calls, 2);
  await queue.shutDown();
  let idle = false;
  void queue.idle().then(() => (idle = true));
  await settle();
  assert.equal(idle, true, 'no retry timer left behind');
  t.mock.timers.tick(10 * 60_000);
  await settle();
  assert.equal(calls, 2);
});

test('shutDown drops pending work and waits for the key in progress', async () => {
  const seen: string[] = [];
  let release: (() => void) | undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started: (() => void) | undefined;
  const aStarted = new Promise<void>((resolve) => (started = resolve));
  const queue = createWorkQueue({
    process: async (key) => {
      seen.push(key);
      started?.();
      await gate;
    },
    onError: () => {},
  });
  queue.add('a');
  queue.add('b');
  await aStarted;
  let stopped = false;
  const stopping = queue.shutDown().then(() => (stopped = true));
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(stopped, false, 'shutDown waits for the key in progress');
  release?.();
  await stopping;
  queue.add('c');
  await queue.idle();
  assert.deepEqual(seen, ['a']);
});

test(
  'fresh keys are not rate-limited, only retries (client-go: Add vs AddRateLimited)',
  { timeout: 10_000 },
  async (t) => {
    // Mocked timers: no time passes unless ticked, so a key held back by the bucket would never run (and no
    // real timer keeps the process alive if it fails).
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const seen: string[] = [];
    // One token per 1000 s: a bucket in front of fresh keys would hold the second key for that long.
    const queue = createWorkQueue({
      process: (key) => (seen.push(key), Promise.resolve()),
      onError: () => {},
      ratePerSecond: 0.001,
      burst: 1,
    });
    for (const key of ['a', 'b', 'c']) queue.add(key);
    await queue.idle();
    assert.deepEqual(seen, ['a', 'b', 'c']);
    await queue.shutDown();
  },
);

test('retries wait for the token bucket once the burst is spent', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  let calls = 0;
  const queue = createWorkQueue({
    process: () => {
      calls += 1;
      return Promise.reject(new Error('boom'));
    },
    onError: () => {},
    baseDelayMs: 1,
    ratePerSecond: 0.001,
    burst: 1,
  });
  queue.add('k');
  await settle();
  assert.equal(calls, 1);
  // The first retry takes the one token: only its 1 ms back-off.
  t.mock.timers.tick(1);
  await settle();
  assert.equal(calls, 2);
  // The second retry's back-off is 2 ms, but the next token comes only after 1000 s.
  t.mock.timers.tick(10);
  await settle();
  assert.equal(calls, 2);
  t.mock.timers.tick(1_000_000);
  await settle();
  assert.equal(calls, 3);
  await queue.shutDown();
});

test('a failure that asks for a wait (Retry-After) is retried no sooner, and no later than maxDelayMs', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  const asked = new Map([
    ['a', 2000],
    ['b', 3_600_000],
  ]);
  const calls = new Map<string, number>();
  const queue = createWorkQueue({
    process: (key) => {
      calls.set(key, (calls.get(key) ?? 0) + 1);
      return Promise.reject(Object.assign(new Error('429'), { key }));
    },
    onError: () => {},
    baseDelayMs: 5,
    maxDelayMs: 10_000,
    retryAfterMs: (error) => asked.get((error as { key: string }).key),
  });
  queue.add('a');
  queue.add('b');
  await settle();
  assert.deepEqual([calls.get('a'), calls.get('b')], [1, 1]);
  // The 5 ms back-off alone would have retried both by now.
  t.mock.timers.tick(1999);
  await settle();
  assert.deepEqual([calls.get('a'), calls.get('b')], [1, 1]);
  t.mock.timers.tick(1);
  await settle();
  assert.equal(calls.get('a'), 2);
  // An hour asked for is capped at maxDelayMs.
  t.mock.timers.tick(8000);
  await settle();
  assert.equal(calls.get('b'), 2);
  await queue.shutDown();
});
