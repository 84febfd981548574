// The real agent process (`node bin/install-cni.ts`) against temp dirs standing in for net.d, the bin dir, the
// run dir and the SA dir.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import {
  CALICO,
  NODE_AGENT,
  agentEnv,
  hasIstio,
  httpGet,
  makeTree,
  msgIs,
  read,
  startAgent,
  until,
  type Tree,
} from './agent-harness.ts';

const trees: Tree[] = [];
after(() => {
  for (const tree of trees) tree.remove();
});
function tree(): Tree {
  const t = makeTree();
  trees.push(t);
  return t;
}

function postLog(socketPath: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/log', method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('install, endpoints, plugin log relay, drift repair, SIGTERM cleanup', async () => {
  const t = tree();
  const conflist = `${t.net}/10-calico.conflist`;
  writeFileSync(conflist, CALICO, { mode: 0o644 });
  const agent = startAgent(NODE_AGENT, agentEnv(t, { MONITORING_PORT: '0' }));
  try {
    const health = await agent.waitForLog(msgIs('health server listening'));
    await agent.waitForLog(msgIs('CNI plugin installed; ready'));
    const port = health['port'] as number;
    assert.equal((await httpGet(port, '/healthz')).status, 200);
    assert.equal((await httpGet(port, '/readyz')).status, 200);
    assert.equal((await httpGet(port, '/readyz?verbose=1')).status, 200);
    assert.match(String(health['time']), /\.\d{6}Z$/, 'Istio time: microseconds');
    assert.ok(hasIstio(conflist));
    assert.equal(statSync(conflist).mode & 0o777, 0o644);
    assert.equal(statSync(`${t.run}/istio-cni-kubeconfig`).mode & 0o777, 0o600);
    assert.match(read(`${t.run}/istio-cni-kubeconfig`), /token: foo\n/);
    assert.equal(statSync(`${t.run}/log.sock`).mode & 0o777, 0o600);

    const record = (fields: Record<string, unknown>): string => JSON.stringify(JSON.stringify(fields));
    const status = await postLog(
      `${t.run}/log.sock`,
      `[${record({ level: 'info', time: new Date().toISOString(), msg: '  relayed from plugin  ', pod: 'p1', add_outcome: 'redirected' })},${record({ level: 'info', msg: 'no time' })}]`,
    );
    assert.equal(status, 200);
    const relayed = await agent.waitForLog(msgIs('relayed from plugin'));
    assert.equal(relayed['scope'], 'cni-plugin');
    assert.equal(relayed['msg'], 'relayed from plugin');
    assert.equal(relayed['pod'], 'p1');
    assert.equal(agent.logs.some(msgIs('no time')), false);
    assert.equal(await postLog(`${t.run}/log.sock`, 'not json'), 200);
    // Over 1 MiB is not a plugin: refused (413, or the connection closed while the client still sends) and never
    // buffered; the sink keeps serving, and a label that is no ADD outcome never becomes a metric series.
    const oversized = `[${record({ level: 'info', time: new Date().toISOString(), msg: 'x'.repeat(2 * 1024 * 1024) })}]`;
    const refused = await postLog(`${t.run}/log.sock`, oversized).catch(
      (error: NodeJS.ErrnoException) => error.code,
    );
    assert.ok(refused === 413 || refused === 'EPIPE' || refused === 'ECONNRESET', String(refused));
    const after = `[${record({ level: 'info', time: new Date().toISOString(), msg: 'still relayed', add_outcome: 'made-up' })}]`;
    assert.equal(await postLog(`${t.run}/log.sock`, after), 200);
    await agent.waitForLog(msgIs('still relayed'));

    // Another agent rewrites the file without our entry: it comes back.
    writeFileSync(`${conflist}.tmp.other`, CALICO);
    renameSync(`${conflist}.tmp.other`, conflist);
    await until(t.net, () => hasIstio(conflist));
    assert.equal(readdirSync(t.net).filter((name) => name.includes('.tmp')).length, 0);
  } finally {
    assert.equal(await agent.stop('SIGTERM'), 0);
  }

  assert.equal(hasIstio(conflist), false, 'entry removed, file kept');
  assert.deepEqual(JSON.parse(read(conflist)), JSON.parse(CALICO));
  assert.equal(existsSync(`${t.bin}/istio-cni`), false);
  assert.equal(existsSync(`${t.run}/istio-cni-kubeconfig`), false);
});

test('metrics endpoint serves install counters and ready gauge', async () => {
  const t = tree();
  writeFileSync(`${t.net}/10-calico.conflist`, CALICO);
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  const metricsPort = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const agent = startAgent(NODE_AGENT, agentEnv(t, { MONITORING_PORT: String(metricsPort) }));
  try {
    await agent.waitForLog(msgIs('metrics server listening'));
    await agent.waitForLog(msgIs('CNI plugin installed; ready'));
    const { status, body } = await httpGet(metricsPort, '/metrics');
    assert.equal(status, 200);
    assert.match(body, /istio_cni_installs_total\{result="SUCCESS"\} 1/);
    assert.match(body, /istio_cni_install_ready 1/);
    // The Go client's process metrics, as upstream's /metrics has them.
    const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(body)?.[1]);
    assert.ok(rss > 1024 * 1024, body);
    assert.match(body, /^# TYPE process_cpu_seconds_total counter$/m);
    assert.match(body, /^process_open_fds \d+$/m);
    assert.match(body, /^process_start_time_seconds \d+/m);
  } finally {
    assert.equal(await agent.stop('SIGINT'), 0);
  }
});

test('start before any CNI config exists: not ready, nothing written, then installs; uninstall cleans up', async () => {
  const t = tree();
  const agent = startAgent(NODE_AGENT, agentEnv(t));
  try {
    const health = await agent.waitForLog(msgIs('health server listening'));
    await agent.waitForLog(msgIs('waiting for the primary CNI'));
    const port = health['port'] as number;
    const notReady = await httpGet(port, '/readyz');
    assert.equal(notReady.status, 503);
    assert.equal(notReady.body, 'Service Unavailable\n');
    assert.deepEqual(readdirSync(t.net), []);
    writeFileSync(`${t.net}/05-calico.conflist`, CALICO);
    const ready = await agent.waitForLog(msgIs('CNI plugin installed; ready'));
    assert.equal((await httpGet(port, '/readyz')).status, 200);
    // And back: a config we may not touch (half-written by its owner) makes the node not ready until it is whole.
    writeFileSync(`${t.net}/05-calico.conflist`, '{"name": "k8s-pod-network", "plugins": [');
    await agent.waitForLog((line) => /05-calico\.conflist.*not touching it/.test(String(line['msg'])));
    assert.equal((await httpGet(port, '/readyz')).status, 503);
    writeFileSync(`${t.net}/05-calico.conflist`, CALICO);
    await agent.waitForLog((line) => line !== ready && line['msg'] === 'CNI plugin installed; ready');
    assert.equal((await httpGet(port, '/readyz')).status, 200);
  } finally {
    agent.child.kill('SIGKILL');
    await agent.exit();
  }
  assert.ok(hasIstio(`${t.net}/05-calico.conflist`));
  execFileSync(NODE_AGENT[0]!, [NODE_AGENT[1]!, 'uninstall'], { env: agentEnv(t), stdio: 'ignore' });
  assert.equal(hasIstio(`${t.net}/05-calico.conflist`), false);
  assert.equal(existsSync(`${t.bin}/istio-cni`), false);
});

test('uninstall on a read-only bin dir where nothing was installed: exit 0, no failure (EROFS is not "there"), says it found nothing', () => {
  const t = tree();
  writeFileSync(`${t.net}/10-calico.conflist`, CALICO);
  // A read-only mount of the bin dir in a mount namespace of its own, as an immutable OS mounts /opt/cni/bin.
  const output = execFileSync(
    'unshare',
    [
      '--mount',
      'sh',
      '-c',
      'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"',
      t.bin,
      ...NODE_AGENT,
      'uninstall',
    ],
    { env: agentEnv(t), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  assert.doesNotMatch(output, /failed|EROFS/);
  // Nothing there: said, not silently "done" (the same message a wrong path gets).
  assert.match(output, /uninstall found nothing of istio-cni to remove/);
  assert.equal(readFileSync(`${t.net}/10-calico.conflist`, 'utf8'), CALICO);
});

test('an unknown command, or a flag before `rules`, is an error that says so in one line, not the help', () => {
  const t = tree();
  for (const [args, message] of [
    [['bogus'], 'install-cni: unknown command "bogus"'],
    [
      ['--log_as_json', 'rules'],
      'install-cni: `rules` must come first: install-cni rules [istio-iptables flags]',
    ],
  ] as const) {
    const run = spawnSync(NODE_AGENT[0]!, [NODE_AGENT[1]!, ...args], { env: agentEnv(t), encoding: 'utf8' });
    assert.equal(run.status, 1, args.join(' '));
    assert.equal(run.stderr, `${message}\n(install-cni --help lists every setting and command)\n`);
    assert.equal(run.stdout, '');
  }
});

test('invalid settings and a busy READINESS_PORT: exit 1 with the fix, nothing written', async () => {
  const t = tree();
  writeFileSync(`${t.net}/10-calico.conflist`, CALICO);
  const bad = startAgent(NODE_AGENT, agentEnv(t, { MONITORING_PORT: 'x', CHAINED_CNI_PLUGIN: 'maybe' }));
  assert.equal(await bad.exit(), 1);
  assert.match(bad.stderr(), /MONITORING_PORT="x"/);
  assert.match(bad.stderr(), /CHAINED_CNI_PLUGIN="maybe"/);

  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const address = busy.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  try {
    const agent = startAgent(NODE_AGENT, agentEnv(t, { READINESS_PORT: String(port) }));
    assert.equal(await agent.exit(), 1);
    assert.ok(agent.logs.some(msgIs('set READINESS_PORT')));
  } finally {
    await new Promise<void>((resolve) => busy.close(() => resolve()));
  }
  assert.equal(hasIstio(`${t.net}/10-calico.conflist`), false);
  assert.equal(existsSync(`${t.bin}/istio-cni`), false);
});

test('a second SIGTERM while the agent shuts down is handled, not fatal: cleanup completes in order, exit 0', async () => {
  const t = tree();
  const conflist = `${t.net}/10-calico.conflist`;
  writeFileSync(conflist, CALICO);
  const agent = startAgent(NODE_AGENT, agentEnv(t), undefined, `${t.root}/agent-stdout`);
  await agent.waitForLog(msgIs('CNI plugin installed; ready'));
  // The second signal must reach a process that is shutting down, however loaded the machine (sent when its
  // "shutting down" line arrived, it once came after the exit). With its stdout held full, the agent can clean up
  // but not exit: its pending log writes keep it alive until we read again. The entry leaving the conflist shows the
  // first SIGTERM was handled, so the second is not merged into it; a signal pending when we read again is handled
  // on the agent's next return from the kernel, before its loop can end. (run-agent.test.ts holds the cleanup
  // itself between two signals.)
  agent.holdStdout();
  try {
    agent.child.kill('SIGTERM');
    await until(t.net, () => !hasIstio(conflist));
    agent.child.kill('SIGTERM');
  } finally {
    agent.releaseStdout();
  }
  assert.equal(await agent.exit(), 0);
  assert.equal(hasIstio(conflist), false);
  assert.equal(existsSync(`${t.bin}/istio-cni`), false);
  const order = agent.logs.map((l) => String(l.msg));
  const entryRemoved = order.findIndex((m) => m.includes('removed istio-cni entry'));
  const binaryRemoved = order.findIndex((m) => m.includes('removed istio-cni binary'));
  assert.ok(entryRemoved >= 0 && binaryRemoved > entryRemoved, order.join('\n'));
  assert.ok(
    order.some((m) => m.startsWith('cleanup already in progress')),
    'the second SIGTERM was seen',
  );
});
