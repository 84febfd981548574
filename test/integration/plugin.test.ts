// The BUILT plugin (dist/istio-cni) as the runtime runs it: a child process with CNI_* env and the netconf on stdin,
// against a real network namespace and a local HTTPS API server (TLS + bearer token). Asserts exit codes, that
// stdout holds only the CNI JSON, and the rules inside the namespace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startKubeApiServer } from '../support/kube-api-server.ts';
import { authorizerFor } from '../support/rbac.ts';
import type { KubeApiServer, KubeObject } from '../support/kube-api-server.ts';
import { createPodPair, natRuleLines, runIn } from '../support/netns.ts';
import { REPO_ROOT, distExecutable, runPlugin } from '../support/dist.ts';
import type { ProcessRun } from '../support/dist.ts';
import type { PodPair } from '../support/netns.ts';
import { VERSION } from '../../src/version.ts';

type PluginRun = ProcessRun;

let api: KubeApiServer;
let pair: PodPair;
let runDir: string;
let kubeconfig: string;

function writeKubeconfig(
  token: string,
  tls: { caPem?: string; insecure?: boolean; server?: string } = {},
): void {
  const ca = Buffer.from(tls.caPem ?? api.caPem).toString('base64');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'clusters:',
      '- cluster:',
      tls.insecure === true ? '    insecure-skip-tls-verify: true' : `    certificate-authority-data: ${ca}`,
      `    server: ${tls.server ?? api.url}`,
      '  name: local',
      'contexts:',
      '- context:',
      '    cluster: local',
      '    user: istio-cni',
      '  name: istio-cni-context',
      'current-context: istio-cni-context',
      'kind: Config',
      'users:',
      '- name: istio-cni',
      '  user:',
      `    token: ${token}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
}

function sidecarPod(name: string, annotations: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      annotations: { 'sidecar.istio.io/status': '{"containers":["istio-proxy"]}', ...annotations },
    },
    spec: {
      containers: [
        { name: 'app', image: 'app' },
        {
          name: 'istio-proxy',
          image: 'proxy',
          args: ['proxy', 'sidecar'],
          securityContext: { runAsUser: 1337 },
        },
      ],
    },
  };
}

function netconf(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'istio-cni',
    cni_agent_run_dir: runDir,
    exclude_namespaces: ['kube-system'],
    pod_namespace: 'istio-system',
    prevResult: {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', sandbox: pair.pod.path }],
      ips: [{ interface: 0, address: `${pair.pod.ip}/24` }],
    },
    ...extra,
  });
}

function env(command: string, podName: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: `ia${podName.replace(/[^a-z0-9]/g, '')}`,
    CNI_NETNS: pair.pod.path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${podName};K8S_POD_INFRA_CONTAINER_ID=x`,
    ...extra,
  };
}

function assertOnlyJson(result: PluginRun): Record<string, unknown> {
  // The whole of stdout is exactly one JSON document: no log line ever leaks there.
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

const natRules = (): Promise<string> => natRuleLines(pair.pod.path);

before(async () => {
  api = await startKubeApiServer({ authorize: authorizerFor('base') });
  pair = await createPodPair({ prefix: 'ia' });
  runDir = mkdtempSync(path.join(os.tmpdir(), `ia-run-`));
  kubeconfig = path.join(runDir, 'istio-cni-kubeconfig');
  writeKubeconfig(api.token);
});

after(async () => {
  await pair?.destroy();
  await api?.close();
  if (runDir !== undefined) rmSync(runDir, { recursive: true, force: true });
});

test('VERSION', async () => {
  const result = await runPlugin({ CNI_COMMAND: 'VERSION' }, '');
  assert.equal(result.exitCode, 0);
  assert.equal(
    result.stdout,
    '{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n',
  );
});

test('a runtime that stops reading stdout: exit 1 and one line on stderr, no crash dump', async () => {
  const child = spawn(distExecutable('istio-cni'), [], { env: { CNI_COMMAND: 'VERSION' } });
  // Closed before the plugin (milliseconds from its first instruction) can write its answer: EPIPE.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(exitCode, 1);
  assert.equal(stderr, 'istio-cni: cannot write the result to stdout: Error: EPIPE: broken pipe, write\n');
});

test('sidecar pod: ADD programs the netns, passes prevResult through; a second ADD changes nothing', async () => {
  api.upsertPod(sidecarPod('app-1'));
  const first = await runPlugin(env('ADD', 'app-1'), netconf());
  assert.equal(first.exitCode, 0, first.stdout + first.stderr);
  const output = assertOnlyJson(first);
  assert.deepEqual(output, {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'eth0', sandbox: pair.pod.path }],
    ips: [{ interface: 0, address: `${pair.pod.ip}/24` }],
  });
  const rules = await natRules();
  assert.match(rules, /-A OUTPUT -j ISTIO_OUTPUT/);
  assert.match(rules, /-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
  assert.match(rules, /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);

  const podGets = api.requests.filter((request) => request.path === '/api/v1/namespaces/default/pods/app-1');
  assert.equal(podGets.length, 1);
  assert.equal(podGets[0]?.headers['user-agent'], `istio-cni/${VERSION}`);

  const second = await runPlugin(env('ADD', 'app-1'), netconf());
  assert.equal(second.exitCode, 0, second.stdout);
  assert.equal(second.stdout, first.stdout);
  assert.equal(await natRules(), rules);
});

/** upstream's plugin_test.go netconf, as it spells it ("cniversion" in the prevResult, the old `kubernetes` block). */
function upstreamFixture(version: string, prevVersion: string): string {
  return JSON.stringify({
    cniVersion: version,
    name: 'istio-plugin-sample-test',
    type: 'sample',
    capabilities: { testCapability: false },
    ipam: { type: 'testIPAM' },
    dns: { nameservers: ['testNameServer'], domain: 'testDomain' },
    prevResult: {
      cniversion: prevVersion,
      interfaces: [{ name: 'eth0', sandbox: '/tmp' }],
      ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }],
      routes: [],
    },
    log_level: 'debug',
    kubernetes: { kubeconfig: 'testK8sConfig', exclude_namespaces: ['testExcludeNS'] },
  });
}

test("upstream's own test netconf: passed through as types100 prints it; under 0.1.0 it fails as upstream's TestCmdAddInvalidVersion expects", async () => {
  const plain = env('ADD', 'fixture', { CNI_ARGS: '' });
  const add = await runPlugin(plain, upstreamFixture('1.0.0', '1.0.0'));
  assert.equal(add.exitCode, 0, add.stdout + add.stderr);
  assert.equal(
    add.stdout,
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        interfaces: [{ name: 'eth0', sandbox: '/tmp' }],
        ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }],
      },
      null,
      4,
    ),
  );
  const old = await runPlugin(plain, upstreamFixture('0.1.0', '0.2.0'));
  assert.equal(old.exitCode, 1);
  assert.deepEqual(assertOnlyJson(old), {
    code: 999,
    msg: 'cannot convert: no valid IP addresses',
    details: 'CONFIG_INVALID',
  });
});

test('CHECK after the meshed ADD succeeds with no output', async () => {
  const check = await runPlugin(env('CHECK', 'app-1'), netconf());
  assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  assert.equal(check.stdout, '');
});

test('CHECK fails (999, CNI error on stdout) on a netns without the rules and after a flush; a re-ADD restores', async () => {
  // The peer netns never had any rules.
  const fresh = await runPlugin(env('CHECK', 'app-1', { CNI_NETNS: pair.peer.path }), netconf());
  assert.equal(fresh.exitCode, 1, fresh.stdout);
  const freshError = assertOnlyJson(fresh);
  assert.equal(freshError['code'], 999);
  assert.equal(freshError['details'], 'RULES_INVALID');
  assert.match(String(freshError['msg']), /not as expected/);

  const before = await natRules();
  for (const argv of [
    ['iptables-nft', '-t', 'nat', '-F'],
    ['iptables-nft', '-t', 'nat', '-X'],
  ]) {
    const flushed = await runIn(pair.pod.path, argv);
    assert.equal(flushed.exitCode, 0, flushed.stderr);
  }
  assert.equal(await natRules(), '');
  const check = await runPlugin(env('CHECK', 'app-1'), netconf());
  assert.equal(check.exitCode, 1, check.stdout);
  const error = assertOnlyJson(check);
  assert.equal(error['code'], 999);
  assert.match(String(error['msg']), /not as expected/);
  assert.match(check.stderr, /CHECK failed/);

  const readd = await runPlugin(env('ADD', 'app-1'), netconf());
  assert.equal(readd.exitCode, 0, readd.stdout);
  assert.equal(await natRules(), before);
  const again = await runPlugin(env('CHECK', 'app-1'), netconf());
  assert.equal(again.exitCode, 0, again.stdout);
});

test('DEL succeeds twice, also when the netns is gone', async () => {
  for (const extra of [{}, {}, { CNI_NETNS: '/var/run/netns/ia-gone-000' }, { CNI_NETNS: '' }]) {
    const result = await runPlugin(env('DEL', 'app-1', extra), netconf());
    assert.equal(result.exitCode, 0, result.stdout);
    assert.equal(result.stdout, '');
  }
});

test('pod missing from the API → code 11 within the configured deadline; no rules for it', async () => {
  const started = Date.now();
  // In the peer netns, which holds no rules of an earlier ADD: after the failed ADD it still holds none.
  const result = await runPlugin(
    env('ADD', 'ghost', { CNI_NETNS: pair.peer.path }),
    netconf({ pod_lookup_deadline_seconds: 1 }),
  );
  assert.equal(await natRuleLines(pair.peer.path), '');
  assert.equal(result.exitCode, 1);
  const error = assertOnlyJson(result);
  assert.equal(error['code'], 11);
  assert.equal(error['msg'], 'pods "ghost" not found');
  assert.ok(Date.now() - started < 5000);
});

test('kubeconfig problems → 999 at once, no retries: a rejected token (401, one request); a token with a newline or a server no URL holds (no request, the file named)', async () => {
  const invalid = `^failed to createNewK8sClient: invalid kubeconfig ${kubeconfig.replaceAll('/', '\\/')}: `;
  for (const [token, server, message, requests] of [
    [
      'wrong-token',
      api.url,
      /^Unauthorized \(401: the API server rejected the token in the plugin kubeconfig/,
      1,
    ],
    ['"abc\\ndef"', api.url, new RegExp(`${invalid}users\\[0\\]\\.user\\.token holds a control`), 0],
    [
      api.token,
      'https://127.0.0.1:port',
      new RegExp(`${invalid}server "https://127\\.0\\.0\\.1:port" is not a valid URL`),
      0,
    ],
  ] as const) {
    writeKubeconfig(token, { server });
    try {
      api.upsertPod(sidecarPod('app-2'));
      const before = api.requests.length;
      const result = await runPlugin(env('ADD', 'app-2'), netconf());
      assert.equal(result.exitCode, 1);
      const error = assertOnlyJson(result);
      assert.equal(error['code'], 999);
      assert.match(String(error['msg']), message);
      assert.equal(api.requests.length - before, requests);
    } finally {
      writeKubeconfig(api.token);
    }
  }
});

test('missing kubeconfig: non-Kubernetes and excluded-namespace pods still pass; a meshed pod fails 999', async () => {
  rmSync(kubeconfig);
  try {
    const plain = await runPlugin(env('ADD', 'x', { CNI_ARGS: '' }), netconf());
    assert.equal(plain.exitCode, 0, plain.stdout);
    const excluded = await runPlugin(
      env('ADD', 'x', { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns' }),
      netconf(),
    );
    assert.equal(excluded.exitCode, 0, excluded.stdout);
    const meshed = await runPlugin(env('ADD', 'app-1'), netconf());
    assert.equal(meshed.exitCode, 1);
    const error = assertOnlyJson(meshed);
    assert.equal(error['code'], 999);
    assert.match(String(error['msg']), /^failed to createNewK8sClient: cannot read kubeconfig/);
  } finally {
    writeKubeconfig(api.token);
  }
});

test('bad input: garbage stdin → 6, unknown version → 1, missing env → 4; stdout is only the error', async () => {
  const garbage = await runPlugin(env('ADD', 'app-1'), 'not json');
  assert.equal(garbage.exitCode, 1);
  assert.equal(assertOnlyJson(garbage)['code'], 6);
  const version = await runPlugin(env('ADD', 'app-1'), netconf({ cniVersion: '9.9.9' }));
  assert.equal(assertOnlyJson(version)['code'], 1);
  const missing = await runPlugin({ CNI_COMMAND: 'ADD' }, netconf());
  assert.equal(assertOnlyJson(missing)['code'], 4);
});

test("CNI_NETNS naming the plugin's own netns → 8 (skel's check), unless CNI_NETNS_OVERRIDE; a BOM → 6", async () => {
  // /proc/self/ns/net, resolved by the plugin process, is its own network namespace.
  const own = await runPlugin(env('ADD', 'plain-own', { CNI_NETNS: '/proc/self/ns/net' }), netconf());
  assert.equal(own.exitCode, 1, own.stderr);
  const error = assertOnlyJson(own);
  assert.equal(error['code'], 8);
  assert.match(String(error['msg']), /netns from CNI_NETNS should not be the same/);

  api.upsertPod({
    metadata: { name: 'plain-own', namespace: 'default' },
    spec: { containers: [{ name: 'app' }] },
  });
  const overridden = await runPlugin(
    env('ADD', 'plain-own', { CNI_NETNS: '/proc/self/ns/net', CNI_NETNS_OVERRIDE: '1' }),
    netconf(),
  );
  assert.equal(overridden.exitCode, 0, overridden.stdout + overridden.stderr);

  // Go's decoder rejects a byte-order mark; so does ours (it stays in the decoded text).
  const bom = await runPlugin(env('ADD', 'app-1'), `\uFEFF${netconf()}`);
  assert.equal(bom.exitCode, 1);
  assert.equal(assertOnlyJson(bom)['code'], 6);
});

test('logs are forwarded to <run dir>/log.sock when it exists, also to an agent that never answers', async () => {
  const bodies: string[] = [];
  let received: () => void = () => undefined;
  const socket = path.join(runDir, 'log.sock');
  // Never answers: the plugin writes its records and goes (waiting would hold up the pod's sandbox, and after the
  // 1 s timeout the records would go to the rolling file as well).
  const server: Server = createServer((req) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      bodies.push(`${req.method ?? ''} ${req.url ?? ''} ${body}`);
      received();
    });
  });
  const request = new Promise<void>((resolve) => (received = resolve));
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  rmSync(path.join(runDir, 'istio-cni.log'), { force: true });
  try {
    const result = await runPlugin(
      env('ADD', 'x', { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns' }),
      netconf(),
    );
    assert.equal(result.exitCode, 0);
    await request;
    assert.equal(bodies.length, 1);
    // The agent took them: no host file write.
    assert.equal(existsSync(path.join(runDir, 'istio-cni.log')), false);
    const [method, url, ...rest] = (bodies[0] ?? '').split(' ');
    assert.equal(`${method} ${url}`, 'POST /log');
    const records = (JSON.parse(rest.join(' ')) as string[]).map(
      (line) => JSON.parse(line) as Record<string, string>,
    );
    assert.ok(records.some((record) => record['msg']?.includes('excluded namespace kube-system')));
    for (const record of records) {
      assert.match(record['time'] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.equal(record['level'], 'info');
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(socket, { force: true });
  }
});

test('records no agent takes (no log.sock, or a stale one left by a dead agent) go to <run dir>/istio-cni.log', async () => {
  const logFile = path.join(runDir, 'istio-cni.log');
  const excludedAdd = () =>
    runPlugin(env('ADD', 'x', { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns' }), netconf());
  const fileRecords = () =>
    readFileSync(logFile, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, string>);
  rmSync(logFile, { force: true });
  assert.equal((await excludedAdd()).exitCode, 0);
  assert.deepEqual(
    fileRecords().map((record) => [record['level'], record['scope'], record['msg']]),
    [['info', 'cni-plugin', 'skipping: excluded namespace kube-system']],
  );

  // A socket file nobody accepts on (ECONNREFUSED): made by linking a listening socket, then closing it.
  const socket = path.join(runDir, 'log.sock');
  const live = path.join(runDir, 'live.sock');
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(live, resolve));
  linkSync(live, socket);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  try {
    assert.equal((await excludedAdd()).exitCode, 0);
    assert.equal(fileRecords().length, 2); // appended
  } finally {
    rmSync(socket, { force: true });
  }
});

test('plugin_log_level sets the level of the whole process: warn and none drop the info record everywhere', async () => {
  const logFile = path.join(runDir, 'istio-cni.log');
  const excludedAdd = async (level?: string) => {
    rmSync(logFile, { force: true });
    const extra = level === undefined ? {} : { plugin_log_level: level };
    const result = await runPlugin(
      env('ADD', 'x', { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns' }),
      netconf(extra),
    );
    assert.equal(result.exitCode, 0);
    const levelsIn = (text: string) =>
      text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as { level: string }).level);
    return {
      stderr: levelsIn(result.stderr),
      file: existsSync(logFile) ? levelsIn(readFileSync(logFile, 'utf8')) : [],
    };
  };
  assert.deepEqual(await excludedAdd(), { stderr: ['info'], file: ['info'] });
  assert.deepEqual(await excludedAdd('DEBUG'), { stderr: ['info'], file: ['info'] });
  assert.deepEqual(await excludedAdd('warn'), { stderr: [], file: [] });
  assert.deepEqual(await excludedAdd('none'), { stderr: [], file: [] });
});

test('meshed pod whose netns is gone → ADD fails (999) naming the problem, nothing else on stdout', async () => {
  api.upsertPod(sidecarPod('app-3'));
  const result = await runPlugin(env('ADD', 'app-3', { CNI_NETNS: '/var/run/netns/ia-gone-000' }), netconf());
  assert.equal(result.exitCode, 1);
  const error = assertOnlyJson(result);
  assert.equal(error['code'], 999);
  // Upstream's wording (§2.12), so searches for it in pod events still match.
  assert.match(String(error['msg']), /^failed to open netns "\/var\/run\/netns\/ia-gone-000": /);
});

test('TLS: insecure-skip-tls-verify works; a CA that does not sign the server fails 999 without retries', async () => {
  api.upsertPod(sidecarPod('app-4', { 'sidecar.istio.io/inject': 'false' }));
  try {
    writeKubeconfig(api.token, { insecure: true });
    const insecure = await runPlugin(env('ADD', 'app-4'), netconf());
    assert.equal(insecure.exitCode, 0, insecure.stdout);

    const foreignCa = readFileSync(
      path.join(REPO_ROOT, '../shared/conformance/istio-install-testdata/kube-ca.crt'),
      'utf8',
    );
    writeKubeconfig(api.token, { caPem: foreignCa });
    const before = api.requests.length;
    const started = Date.now();
    const wrongCa = await runPlugin(env('ADD', 'app-4'), netconf());
    assert.equal(wrongCa.exitCode, 1);
    assert.equal(assertOnlyJson(wrongCa)['code'], 999);
    assert.ok(Date.now() - started < 5000);
    assert.equal(api.requests.length, before);
  } finally {
    writeKubeconfig(api.token);
  }
});

test('TLS: a server certificate that does not name the server address fails 999 without retries', async () => {
  const misnamed = await startKubeApiServer({ subjectAltNames: ['DNS:elsewhere.example'] });
  try {
    misnamed.upsertPod(sidecarPod('app-5', { 'sidecar.istio.io/inject': 'false' }));
    writeKubeconfig(misnamed.token, { caPem: misnamed.caPem, server: misnamed.url });
    const result = await runPlugin(env('ADD', 'app-5'), netconf());
    assert.equal(result.exitCode, 1);
    const error = assertOnlyJson(result);
    assert.equal(error['code'], 999);
    assert.match(String(error['msg']), /ALTNAME|altname|does not match/i);
    assert.equal(misnamed.requests.length, 0);
  } finally {
    writeKubeconfig(api.token);
    await misnamed.close();
  }
});

test('an IPv6 API server address (IPv6-only clusters) is reached, and its certificate must name it', async () => {
  const v6 = await startKubeApiServer({ host: '::1' });
  try {
    assert.match(v6.url, /^https:\/\/\[::1\]:\d+$/);
    v6.upsertPod(sidecarPod('app-8', { 'sidecar.istio.io/inject': 'false' }));
    writeKubeconfig(v6.token, { caPem: v6.caPem, server: v6.url });
    const result = await runPlugin(env('ADD', 'app-8'), netconf());
    assert.equal(result.exitCode, 0, result.stdout);
    assert.match(result.stderr, /skipping: .*inject/);
    assert.equal(v6.requests.length, 1);
  } finally {
    writeKubeconfig(api.token);
    await v6.close();
  }
  const misnamed = await startKubeApiServer({ host: '::1', subjectAltNames: ['IP:::2'] });
  try {
    misnamed.upsertPod(sidecarPod('app-8', { 'sidecar.istio.io/inject': 'false' }));
    writeKubeconfig(misnamed.token, { caPem: misnamed.caPem, server: misnamed.url });
    const result = await runPlugin(env('ADD', 'app-8'), netconf());
    assert.equal(assertOnlyJson(result)['code'], 999);
    assert.equal(misnamed.requests.length, 0);
  } finally {
    writeKubeconfig(api.token);
    await misnamed.close();
  }
});

test('API faults: a 500 and a dropped connection are retried, then the pod is read', async () => {
  api.upsertPod(sidecarPod('app-6', { 'sidecar.istio.io/inject': 'false' }));
  api.injectFault({ status: 500, times: 1 });
  api.injectFault({ drop: true, times: 1 });
  const before = api.requests.length;
  const result = await runPlugin(env('ADD', 'app-6'), netconf());
  assert.equal(result.exitCode, 0, result.stdout);
  assert.match(result.stderr, /pod lookup attempt 1 failed.*500/);
  assert.match(result.stderr, /pod lookup attempt 2 failed/);
  assert.match(result.stderr, /skipping: .*inject/);
  assert.ok(api.requests.length - before >= 2);
});

test("a 429's Retry-After is honoured: the next attempt waits the server's second, not the 200 ms back-off", async () => {
  api.upsertPod(sidecarPod('app-8', { 'sidecar.istio.io/inject': 'false' }));
  api.injectFault({ status: 429, times: 1 });
  const result = await runPlugin(env('ADD', 'app-8'), netconf());
  assert.equal(result.exitCode, 0, result.stdout);
  assert.match(result.stderr, /pod lookup attempt 1 failed, retrying in 1000 ms/);
  assert.match(result.stderr, /skipping: .*inject/);
});

test('a pod larger than one buffer (sent chunked, as the real API server does) is read whole', async () => {
  // The opt-out sits after 20 kB of annotations: a truncated body would not parse (code 11), a misread one not skip.
  api.upsertPod(
    sidecarPod('app-7', { 'example.com/filler': 'x'.repeat(20_000), 'sidecar.istio.io/inject': 'false' }),
  );
  const result = await runPlugin(env('ADD', 'app-7'), netconf());
  assert.equal(result.exitCode, 0, result.stdout);
  assert.match(result.stderr, /skipping: .*inject/);
});

test('huge stdin: a 3 MiB netconf still works; above the 4 MiB limit → code 5, nothing else on stdout', async () => {
  const big = await runPlugin(
    env('ADD', 'x', { CNI_ARGS: '' }),
    netconf({ padding: 'x'.repeat(3 * 1024 * 1024) }),
  );
  assert.equal(big.exitCode, 0, big.stdout.slice(0, 200));
  const huge = await runPlugin(
    env('ADD', 'x', { CNI_ARGS: '' }),
    netconf({ padding: 'x'.repeat(5 * 1024 * 1024) }),
  );
  assert.equal(huge.exitCode, 1);
  const error = assertOnlyJson(huge);
  assert.equal(error['code'], 5);
  assert.match(String(error['msg']), /larger than 4194304 bytes/);
});

test("ambient (upstream chart's RBAC, which grants namespaces): the pod and its namespace are read, the add event goes to pluginevent.sock, no rules added to the netns", async () => {
  const ambientApi = await startKubeApiServer();
  ambientApi.upsertNamespace({
    metadata: { name: 'default', labels: { 'istio.io/dataplane-mode': 'ambient' } },
  });
  ambientApi.upsertPod({
    metadata: { name: 'amb', namespace: 'default' },
    spec: { containers: [{ name: 'app', image: 'app' }] },
  });
  const events: { url: string; contentType: string | undefined; body: string }[] = [];
  const eventSocket = path.join(runDir, 'pluginevent.sock');
  const agent: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      events.push({
        url: `${req.method ?? ''} ${req.url ?? ''}`,
        contentType: req.headers['content-type'],
        body,
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => agent.listen(eventSocket, resolve));
  writeKubeconfig(ambientApi.token, { caPem: ambientApi.caPem, server: ambientApi.url });
  // The netns is shared with the file's other tests (earlier ADDs leave their rules): the ambient ADD adds none.
  const rulesBefore = await natRules();
  try {
    const result = await runPlugin(
      env('ADD', 'amb'),
      netconf({
        ambient_enabled: true,
        enablement_selectors: [
          { podSelector: {}, namespaceSelector: { matchLabels: { 'istio.io/dataplane-mode': 'ambient' } } },
        ],
      }),
    );
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    assert.equal(assertOnlyJson(result)['cniVersion'], '1.0.0');
    const reads = ambientApi.requests.map((r) => [r.method, r.path, r.headers['accept'], r.status]);
    assert.deepEqual([...reads].sort(), [
      ['GET', '/api/v1/namespaces/default', 'application/json', 200],
      ['GET', '/api/v1/namespaces/default/pods/amb', 'application/json', 200],
    ]);
    assert.equal(events.length, 1);
    assert.deepEqual(
      { url: events[0]?.url, contentType: events[0]?.contentType },
      { url: 'POST /cmdadd', contentType: 'application/json' },
    );
    assert.deepEqual(JSON.parse(events[0]?.body ?? ''), {
      Netns: pair.pod.path,
      PodName: 'amb',
      PodNamespace: 'default',
      IPs: [
        {
          Interface: 0,
          Address: { IP: pair.pod.ip, Mask: Buffer.from([255, 255, 255, 0]).toString('base64') },
          Gateway: null,
        },
      ],
    });
    assert.equal(await natRules(), rulesBefore);
  } finally {
    writeKubeconfig(api.token);
    await new Promise<void>((resolve) => agent.close(() => resolve()));
    rmSync(eventSocket, { force: true });
    await ambientApi.close();
  }
});
