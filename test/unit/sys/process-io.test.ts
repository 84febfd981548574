// realProcessIO over a stand-in for Bun's file API: stdout carries only what is written to it, every write is
// flushed at once, a stdout failure is one stderr line and a false `drained`, stdin is read whole with a limit.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_STDIN_BYTES, bunFiles, realProcessIO } from '../../../src/sys/process-io.ts';

type SinkResult = number | Promise<number>;

/** A file sink that records its calls; `write`/`flush` answer with what the test sets. */
class FakeSink {
  readonly calls: string[] = [];
  onWrite: (chunk: string) => SinkResult = (chunk) => chunk.length;
  onFlush: () => SinkResult = () => 0;
  write(chunk: string): SinkResult {
    this.calls.push(`write ${chunk}`);
    return this.onWrite(chunk);
  }
  flush(): SinkResult {
    this.calls.push('flush');
    return this.onFlush();
  }
}

interface Stat {
  readonly ino: number;
  readonly dev: number;
}

/** `endless`: after `stdin`, the stream goes on giving 64 KiB chunks (a runaway writer) until cancelled. */
function fakeBun(options: { stdin?: Uint8Array[]; endless?: boolean; stats?: Record<string, Stat> } = {}) {
  const stdout = new FakeSink();
  const stderr = new FakeSink();
  let cancelled = false;
  const chunks = [...(options.stdin ?? [])];
  const noFile = () => {
    throw new Error('not used');
  };
  const file = (sink: FakeSink | undefined, path = '') => ({
    stream: () =>
      new ReadableStream<Uint8Array>({
        pull(controller) {
          const chunk = chunks.shift();
          if (chunk !== undefined) controller.enqueue(chunk);
          else if (options.endless === true) controller.enqueue(new Uint8Array(65536));
          else controller.close();
        },
        cancel() {
          cancelled = true;
        },
      }),
    writer: () => sink ?? noFile(),
    stat: () => {
      const stat = options.stats?.[path];
      return stat === undefined ? Promise.reject(new Error(`ENOENT: ${path}`)) : Promise.resolve(stat);
    },
    text: noFile,
  });
  const bun = {
    stdin: file(undefined),
    stdout: file(stdout),
    stderr: file(stderr),
    file: (path: string) => file(undefined, path),
  };
  (globalThis as { Bun?: unknown }).Bun = bun;
  return { stdout, stderr, cancelled: () => cancelled };
}

afterEach(() => {
  delete (globalThis as { Bun?: unknown }).Bun;
});

const text = (calls: readonly string[]) => calls.filter((c) => c.startsWith('write ')).map((c) => c.slice(6));

test('without Bun there is no process IO: a clear error, not a silent fallback', () => {
  assert.throws(() => bunFiles(), /bun-compiled dist\/istio-cni/);
});

test('stdout gets only what writeStdout writes, stderr only writeStderr; every write is flushed at once', async () => {
  const bun = fakeBun();
  const io = realProcessIO();
  io.writeStderr('log line\n');
  io.writeStdout('{"cniVersion":"1.0.0"}');
  io.writeStderr('another\n');
  assert.deepEqual(bun.stdout.calls, ['write {"cniVersion":"1.0.0"}', 'flush']);
  assert.deepEqual(bun.stderr.calls, ['write log line\n', 'flush', 'write another\n', 'flush']);
  assert.equal(await io.drained(), true);
});

test('a stdout the pipe fails (asynchronously or at once): one line on stderr, never on stdout, and drained is false', async () => {
  for (const failure of ['async', 'sync'] as const) {
    const bun = fakeBun();
    const epipe = new Error('EPIPE');
    bun.stdout.onFlush = () => {
      if (failure === 'sync') throw epipe;
      return Promise.reject(epipe);
    };
    const io = realProcessIO();
    io.writeStdout('first');
    io.writeStdout('second');
    assert.equal(await io.drained(), false, failure);
    assert.deepEqual(text(bun.stdout.calls), ['first', 'second'], failure);
    assert.deepEqual(
      text(bun.stderr.calls),
      ['istio-cni: cannot write the result to stdout: Error: EPIPE\n'],
      failure,
    );
  }
});

test('drained waits for every pending write, later ones included', async () => {
  const bun = fakeBun();
  let releaseFirst: () => void = () => undefined;
  bun.stdout.onFlush = () => new Promise<number>((resolve) => (releaseFirst = () => resolve(0)));
  let rejectLate: (error: Error) => void = () => undefined;
  const io = realProcessIO();
  io.writeStdout('a');
  bun.stdout.onFlush = () => new Promise<number>((_resolve, reject) => (rejectLate = reject));
  io.writeStdout('b');
  let settled = false;
  const drained = io.drained().finally(() => (settled = true));
  releaseFirst();
  // One macrotask turn lets every microtask run: a drained that awaited only the first write resolves in it.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false);
  rejectLate(new Error('EPIPE'));
  assert.equal(await drained, false);
});

test('stdin: chunks joined, a BOM kept (JSON.parse then rejects it, as Go does), a limit of 4 MiB', async () => {
  const encoder = new TextEncoder();
  fakeBun({ stdin: [encoder.encode('\uFEFF{"a":'), encoder.encode('1}')] });
  assert.equal(await realProcessIO().readStdin(), '\uFEFF{"a":1}');

  assert.equal(MAX_STDIN_BYTES, 4 * 1024 * 1024);
  fakeBun({ stdin: [new Uint8Array(MAX_STDIN_BYTES - 1).fill(32), encoder.encode('1')] });
  assert.equal((await realProcessIO().readStdin()).length, MAX_STDIN_BYTES);

  const over = fakeBun({ endless: true });
  await assert.rejects(realProcessIO().readStdin(), /stdin is larger than 4194304 bytes/);
  assert.equal(over.cancelled(), true);
});

test('isOwnNetns compares inode and device of /proc/self/ns/net; a netns that cannot be stat-ed is not own', async () => {
  const self = { ino: 4026531840, dev: 4 };
  fakeBun({
    stats: {
      '/proc/self/ns/net': self,
      '/proc/1/ns/net': { ...self },
      '/var/run/netns/other-dev': { ino: self.ino, dev: 5 },
      '/var/run/netns/pod': { ino: 4026532999, dev: 4 },
    },
  });
  const io = realProcessIO();
  assert.equal(await io.isOwnNetns('/proc/1/ns/net'), true);
  assert.equal(await io.isOwnNetns('/var/run/netns/other-dev'), false);
  assert.equal(await io.isOwnNetns('/var/run/netns/pod'), false);
  assert.equal(await io.isOwnNetns('/var/run/netns/gone'), false);
});

test('env is a frozen snapshot of the environment at start', () => {
  fakeBun();
  const name = 'IA_PROCESS_IO_TEST';
  process.env[name] = 'before';
  try {
    const io = realProcessIO();
    process.env[name] = 'after';
    assert.equal(io.env[name], 'before');
    assert.equal(Object.isFrozen(io.env), true);
  } finally {
    delete process.env[name];
  }
});
