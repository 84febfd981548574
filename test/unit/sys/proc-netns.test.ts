import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, rename, rm, stat as statPath, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  findPodNetns,
  ipv6Hex,
  localIpv4FromFibTrie,
  pinNetns,
  startTimeFromStat,
} from '../../../src/sys/proc-netns.ts';
import { AppError, ExecError } from '../../../src/errors.ts';

function fibTrie(ips: string[]): string {
  return [
    'Main:',
    '  +-- 0.0.0.0/0 3 0 5',
    ...ips.flatMap((ip) => [`     |-- ${ip}`, '        /32 host LOCAL']),
    '',
  ].join('\n');
}

function stat(pid: number, start: number): string {
  // comm with spaces and parentheses, as the kernel allows.
  const rest = Array.from({ length: 19 }, (_, i) => (i === 18 ? String(start) : '0'));
  return `${pid} (sleep (x) y) S ${rest.join(' ')} 0 0\n`;
}

interface FakeProc {
  pid: number;
  netns?: string;
  ips?: string[];
  ipv6?: string[];
  start?: number;
}

/** The host's init: its netns is the one that must never be chosen. */
const HOST: FakeProc = { pid: 1, netns: '100', ips: ['192.168.0.1'], start: 1 };

async function procTree(
  procs: FakeProc[],
): Promise<{ root: string; [Symbol.asyncDispose](): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'if-proc-'));
  await mkdir(join(root, 'self'));
  for (const p of procs) {
    const dir = join(root, String(p.pid));
    await mkdir(join(dir, 'ns'), { recursive: true });
    if (p.netns !== undefined) await symlink(`net:[${p.netns}]`, join(dir, 'ns', 'net'));
    if (p.ips !== undefined || p.ipv6 !== undefined) {
      await mkdir(join(dir, 'net'));
      await writeFile(join(dir, 'net', 'fib_trie'), fibTrie(p.ips ?? []));
      await writeFile(
        join(dir, 'net', 'if_inet6'),
        (p.ipv6 ?? []).map((ip) => `${ipv6Hex(ip)} 02 40 00 80 eth0\n`).join(''),
      );
    }
    if (p.start !== undefined) await writeFile(join(dir, 'stat'), stat(p.pid, p.start));
  }
  return { root, [Symbol.asyncDispose]: () => rm(root, { recursive: true, force: true }) };
}

test('parsers: fib_trie LOCAL leaves, IPv6 expansion, stat start time', () => {
  assert.deepEqual([...localIpv4FromFibTrie(fibTrie(['10.1.2.3', '127.0.0.1']))], ['10.1.2.3', '127.0.0.1']);
  assert.deepEqual(
    [
      ...localIpv4FromFibTrie(
        '     |-- 10.1.2.255\n        /32 link BROADCAST\n     |-- 10.1.2.0\n        /24 link UNICAST\n',
      ),
    ],
    [],
  );
  assert.equal(ipv6Hex('fd00::2'), 'fd000000000000000000000000000002');
  assert.equal(ipv6Hex('::1'), '00000000000000000000000000000001');
  assert.equal(ipv6Hex('fe80::fc:ff:fe00:1'), 'fe8000000000000000fc00fffe000001');
  assert.equal(ipv6Hex('::ffff:10.0.0.1'), '00000000000000000000ffff0a000001');
  assert.equal(startTimeFromStat(stat(7, 4242)), 4242n);
  assert.equal(startTimeFromStat('garbage'), undefined);
});

test('smallest start time in the matching netns wins; other netns and vanished entries are skipped', async () => {
  await using tree = await procTree([
    { pid: 1, netns: '100', ips: ['192.168.0.1'], start: 1 },
    { pid: 20, netns: '200', ips: ['10.0.0.5'], start: 900 },
    { pid: 21, netns: '200', ips: ['10.0.0.5'], start: 500 },
    { pid: 22, netns: '200', ips: ['10.0.0.5'], start: 700 },
    { pid: 30 }, // vanished: no ns/net
    { pid: 31, netns: '300' }, // vanished between readlink and reading net/
  ]);
  const skipped: number[] = [];
  const found = await findPodNetns({
    procRoot: tree.root,
    podIp: '10.0.0.5',
    onSkip: (pid) => skipped.push(pid),
  });
  assert.deepEqual(found, { pid: 21, netnsPath: `${tree.root}/21/ns/net`, netnsId: 'net:[200]' });
  assert.deepEqual(skipped.sort(), [30, 31]);
  // The host netns (pid 1's) is never chosen.
  await assert.rejects(
    findPodNetns({ procRoot: tree.root, podIp: '192.168.0.1' }),
    /failed to find network namespace/,
  );
});

test('a process whose stat is unreadable is used only when nothing else matches', async () => {
  await using tree = await procTree([
    HOST,
    { pid: 5, netns: '200', ips: ['10.0.0.5'] },
    { pid: 6, netns: '200', ips: ['10.0.0.5'], start: 99 },
  ]);
  assert.equal((await findPodNetns({ procRoot: tree.root, podIp: '10.0.0.5' })).pid, 6);
  await using only = await procTree([HOST, { pid: 5, netns: '200', ips: ['10.0.0.5'] }]);
  assert.equal((await findPodNetns({ procRoot: only.root, podIp: '10.0.0.5' })).pid, 5);
});

test('IPv6 pod IPs match if_inet6', async () => {
  await using tree = await procTree([
    { pid: 1, netns: '100', ips: [], ipv6: ['fd00::1'], start: 1 },
    { pid: 2, netns: '200', ips: [], ipv6: ['fd00::5'], start: 2 },
  ]);
  assert.equal((await findPodNetns({ procRoot: tree.root, podIp: 'fd00::5' })).pid, 2);
});

test('errors: unparsable IP, no match, IP in several netns, missing proc root', async () => {
  await using tree = await procTree([
    HOST,
    { pid: 2, netns: '200', ips: ['10.0.0.5'], start: 2 },
    { pid: 3, netns: '300', ips: ['10.0.0.5'], start: 3 },
  ]);
  const netnsError = (pattern: RegExp) => (error: unknown) =>
    error instanceof AppError && error.code === 'NETNS' && pattern.test(error.message);
  await assert.rejects(
    findPodNetns({ procRoot: tree.root, podIp: '' }),
    netnsError(/failed to parse pod IP/),
  );
  await assert.rejects(
    findPodNetns({ procRoot: tree.root, podIp: '10.0.0.9' }),
    netnsError(/failed to find network namespace/),
  );
  await assert.rejects(
    findPodNetns({ procRoot: tree.root, podIp: '10.0.0.5' }),
    netnsError(/found in 2 network namespaces/),
  );
  await assert.rejects(
    findPodNetns({ procRoot: join(tree.root, 'missing'), podIp: '10.0.0.5' }),
    netnsError(/failed to read/),
  );
});

test("an unreadable host netns (pid 1's, a sandboxed init) is reported, and the lookup goes on", async () => {
  await using tree = await procTree([{ pid: 5, netns: '200', ips: ['10.0.0.5'], start: 5 }]);
  const skipped: [number, string][] = [];
  const found = await findPodNetns({
    procRoot: tree.root,
    podIp: '10.0.0.5',
    onSkip: (pid, reason) => skipped.push([pid, reason]),
  });
  assert.equal(found.pid, 5);
  assert.equal(skipped.length, 1);
  assert.equal(skipped[0]?.[0], 1);
  assert.match(skipped[0]?.[1] ?? '', /ns\/net unreadable .*: the host netns cannot be ruled out by id$/);
});

test('a netns is still found when some of its processes vanished mid-scan: its other processes are read', async () => {
  // Several processes of the pod's netns exit between readlink(ns/net) and reading net/ (whatever order readdir
  // lists them in, some come before the one still there).
  const vanished = [20, 21, 22, 23, 24, 25, 26, 27].map((pid) => ({ pid, netns: '200' }));
  await using tree = await procTree([
    HOST,
    ...vanished,
    { pid: 30, netns: '200', ips: ['10.0.0.5'], start: 30 },
  ]);
  const found = await findPodNetns({ procRoot: tree.root, podIp: '10.0.0.5' });
  assert.deepEqual(found, { pid: 30, netnsPath: `${tree.root}/30/ns/net`, netnsId: 'net:[200]' });
});

test('a pinned netns stays the scanned one after the path it was found at names another (PID reused)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'if-pin-'));
  try {
    // Stands in for /host/proc/<pid>/ns/net: a link to our own netns, re-pointed once pinned.
    const scanned = join(dir, 'ns-net');
    await symlink('/proc/self/ns/net', scanned);
    const netnsId = `net:[${(await statPath('/proc/self/ns/net')).ino}]`;
    const pinned = await pinNetns({ pid: 1, netnsPath: scanned, netnsId });
    try {
      await symlink(join(dir, 'gone'), join(dir, 'next'));
      await rename(join(dir, 'next'), scanned);
      assert.equal(`net:[${(await statPath(pinned.path)).ino}]`, netnsId);
    } finally {
      await pinned.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a netns that is no longer the scanned one is refused, and the descriptor opened to check it is closed', async () => {
  const before = (await readdir('/proc/self/fd')).length;
  await assert.rejects(
    pinNetns({ pid: 1, netnsPath: '/proc/self/ns/net', netnsId: 'net:[1]' }),
    (error: unknown) =>
      error instanceof ExecError && error.code === 'NETNS' && /not the net:\[1\] found/.test(error.message),
  );
  assert.equal((await readdir('/proc/self/fd')).length, before);
});
