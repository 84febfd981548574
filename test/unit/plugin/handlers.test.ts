import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dispatch } from '../../../src/cni/dispatch.ts';
import { createHandlers } from '../../../src/plugin/handlers.ts';
import { DEFAULT_LOOKUP_POLICY, lookupPod } from '../../../src/plugin/pod-lookup.ts';
import { AppError, ExecError, KubeError } from '../../../src/errors.ts';
import { systemClock } from '../../../src/sys/process-io.ts';
import { cniEnv, fakeProcessIO } from '../../support/fake-process-io.ts';
import { ScriptedPodSource, fakePluginDeps } from '../../support/fake-plugin-deps.ts';
import type { FakePluginDeps } from '../../support/fake-plugin-deps.ts';

const RUN_DIR = '/var/run/istio-cni';

function netconf(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'istio-cni',
    cni_agent_run_dir: RUN_DIR,
    exclude_namespaces: ['istio-system', 'kube-system'],
    pod_namespace: 'istio-system',
    plugin_log_level: 'debug',
    prevResult: {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/ia-test' }],
      ips: [{ interface: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' }],
    },
    ...extra,
  });
}

/** The netconf with every key upper-cased but the prevResult's version, spelt as upstream's fixtures spell it. */
function recased(conf: string): string {
  const upper = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(upper);
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key === 'cniVersion' ? 'cniversion' : key.toUpperCase(),
        upper(item),
      ]),
    );
  };
  return JSON.stringify(upper(JSON.parse(conf)));
}

function pod(
  options: {
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    containers?: unknown[];
    init?: unknown[];
  } = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'app-1',
      namespace: 'default',
      labels: options.labels ?? {},
      annotations: options.annotations ?? { 'sidecar.istio.io/status': '{"containers":["istio-proxy"]}' },
    },
    spec: {
      initContainers: options.init ?? [],
      containers: options.containers ?? [
        { name: 'app' },
        {
          name: 'istio-proxy',
          args: ['proxy', 'sidecar'],
          securityContext: { runAsUser: 1337, runAsGroup: 1337 },
        },
      ],
    },
  };
}

async function add(deps: FakePluginDeps, stdin = netconf(), env = cniEnv('ADD')) {
  const io = fakeProcessIO(env, stdin);
  const exitCode = await dispatch(io, createHandlers(deps), 'about');
  const stdout = io.stdout.join('');
  return { exitCode, stdout, json: JSON.parse(stdout) as Record<string, unknown> };
}

// types100 prints every level's keys sorted (src/cni/result.ts).
const EXPECTED_OUTPUT = JSON.stringify(
  {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/ia-test' }],
    ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }],
  },
  null,
  4,
);

test('sidecar pod: looked up once, rules applied with upstream defaults, prevResult passed through', async () => {
  const source = new ScriptedPodSource([pod()]);
  const deps = fakePluginDeps({ source });
  const result = await add(deps);
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, EXPECTED_OUTPUT);
  assert.deepEqual(deps.opened, [`${RUN_DIR}/istio-cni-kubeconfig`]);
  assert.deepEqual(source.calls, ['default/app-1']);
  assert.equal(source.closed, 1);
  assert.equal(deps.applied.length, 1);
  const applied = deps.applied[0];
  assert.deepEqual(applied?.target, { netns: '/var/run/netns/ia-test', backend: 'iptables' });
  assert.equal(applied?.config.inboundPortsInclude, '*');
  assert.equal(applied?.config.inboundPortsExclude, '15020,15021,15090');
  assert.deepEqual(deps.levels, ['debug']);
  assert.deepEqual(deps.forwardingDirs, [RUN_DIR]);
});

test('ADD twice gives the same output and the same rules (idempotent)', async () => {
  const deps = fakePluginDeps({ source: new ScriptedPodSource([pod()]) });
  const first = await add(deps);
  const second = await add(deps);
  assert.equal(first.exitCode, 0);
  assert.equal(second.exitCode, 0);
  assert.equal(first.stdout, EXPECTED_OUTPUT);
  assert.equal(second.stdout, first.stdout);
  assert.equal(deps.applied.length, 2);
  assert.deepEqual(deps.applied[1], deps.applied[0]);
});

test('native_nftables selects the nftables backend', async () => {
  const deps = fakePluginDeps({ source: new ScriptedPodSource([pod()]) });
  await add(deps, netconf({ native_nftables: true }));
  assert.equal(deps.applied[0]?.target.backend, 'nftables');
});

test('no prevResult → empty result of the config version', async () => {
  const deps = fakePluginDeps({ source: new ScriptedPodSource([pod()]) });
  const result = await add(deps, netconf({ prevResult: undefined, cniVersion: '0.3.1' }));
  assert.deepEqual(result.json, { cniVersion: '0.3.1', dns: {} });
});

for (const [label, env, conf, forwarded] of [
  [
    'the agent pod itself',
    cniEnv('ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=istio-system;K8S_POD_NAME=istio-cni-node-x7k2p' }),
    netconf(),
    // §2.5: logging is set up after the self-detection; the agent being created is not there to take records.
    [],
  ],
  ['a non-Kubernetes invocation', cniEnv('ADD', { CNI_ARGS: '' }), netconf(), [RUN_DIR]],
  [
    'an excluded namespace',
    cniEnv('ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns' }),
    netconf(),
    [RUN_DIR],
  ],
  [
    'keys spelt in another case (Go decodes them ignoring case), an excluded namespace',
    cniEnv('ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns' }),
    recased(netconf()),
    [RUN_DIR],
  ],
] as const) {
  test(`${label}: pass-through without reading the kubeconfig (quirk §8.8 fixed)`, async () => {
    const deps = fakePluginDeps({ source: new Error('kubeconfig missing') });
    const result = await add(deps, conf, env);
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, EXPECTED_OUTPUT);
    assert.deepEqual(deps.opened, []);
    assert.deepEqual(deps.applied, []);
    assert.deepEqual(deps.forwardingDirs, forwarded);
  });
}

test('bad CNI_ARGS fail before logging is set up (no forwarding), as upstream', async () => {
  const deps = fakePluginDeps({ source: new ScriptedPodSource([pod()]) });
  const result = await add(deps, netconf(), cniEnv('ADD', { CNI_ARGS: 'K8S_POD_NAME' }));
  assert.equal(result.json['code'], 999);
  assert.match(String(result.json['msg']), /^failed to load args: /);
  assert.deepEqual(deps.forwardingDirs, []);
});

test('istio-cni-node- prefix in another namespace is not the agent', async () => {
  const deps = fakePluginDeps({ source: new ScriptedPodSource([pod({ containers: [{ name: 'c' }] })]) });
  await add(
    deps,
    netconf(),
    cniEnv('ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=istio-cni-node-x' }),
  );
  assert.equal(deps.opened.length, 1);
});

const skips: [string, ReturnType<typeof pod>][] = [
  ['istio-init container', pod({ init: [{ name: 'istio-init' }] })],
  [
    'DISABLE_ENVOY',
    pod({ containers: [{ name: 'istio-proxy', env: [{ name: 'DISABLE_ENVOY', value: 'true' }] }] }),
  ],
  ['no istio-proxy', pod({ containers: [{ name: 'app' }] })],
  ['router proxy', pod({ containers: [{ name: 'istio-proxy', args: ['proxy', 'router'] }] })],
  [
    'inject=false annotation',
    pod({ annotations: { 'sidecar.istio.io/inject': 'false', 'sidecar.istio.io/status': '{}' } }),
  ],
  [
    'inject label false overrides annotation true',
    pod({
      annotations: { 'sidecar.istio.io/inject': 'true', 'sidecar.istio.io/status': '{}' },
      labels: { 'sidecar.istio.io/inject': 'false' },
    }),
  ],
  ['no status annotation', pod({ annotations: {} })],
];
for (const [label, manifest] of skips) {
  test(`skip: ${label} → success, no rules`, async () => {
    const deps = fakePluginDeps({ source: new ScriptedPodSource([manifest]) });
    const result = await add(deps);
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, EXPECTED_OUTPUT);
    assert.deepEqual(deps.applied, []);
  });
}

test('DISABLE_ENVOY that is not true (false, unparseable) → programmed', async () => {
  for (const value of ['false', '0', 'nah']) {
    const deps = fakePluginDeps({
      source: new ScriptedPodSource([
        pod({ containers: [{ name: 'istio-proxy', env: [{ name: 'DISABLE_ENVOY', value }] }] }),
      ]),
    });
    await add(deps);
    assert.equal(deps.applied.length, 1, value);
  }
});

test('inject label true overrides annotation false → programmed; unparseable values ignored', async () => {
  const deps = fakePluginDeps({
    source: new ScriptedPodSource([
      pod({
        annotations: { 'sidecar.istio.io/inject': 'false', 'sidecar.istio.io/status': '{}' },
        labels: { 'sidecar.istio.io/inject': 'true' },
      }),
    ]),
  });
  await add(deps);
  assert.equal(deps.applied.length, 1);
  const garbage = fakePluginDeps({
    source: new ScriptedPodSource([
      pod({ annotations: { 'sidecar.istio.io/inject': 'nah', 'sidecar.istio.io/status': '{}' } }),
    ]),
  });
  await add(garbage);
  assert.equal(garbage.applied.length, 1);
});

test('pod not in the API yet (404) is retried with backoff, then programmed', async () => {
  const notFound = new KubeError('pods "app-1" not found', { status: 404, retryable: true });
  const source = new ScriptedPodSource([notFound, notFound, pod()]);
  const deps = fakePluginDeps({ source });
  const result = await add(deps);
  assert.equal(result.exitCode, 0);
  assert.equal(source.calls.length, 3);
  assert.deepEqual(deps.clock.sleeps, [200, 400]);
  assert.equal(deps.applied.length, 1);
});

test("a 429's Retry-After sets the wait (never past the deadline); a shorter one keeps the back-off", async () => {
  const throttled = (ms: number) =>
    new KubeError('Too many requests', { status: 429, retryable: true, retryAfterMs: ms });
  const source = new ScriptedPodSource([throttled(3000), throttled(50), pod()]);
  const deps = fakePluginDeps({ source });
  assert.equal((await add(deps)).exitCode, 0);
  assert.deepEqual(deps.clock.sleeps, [3000, 400]);
  // Asked to come back after the deadline: no waiting for nothing, code 11 at once.
  const tooLate = fakePluginDeps({ source: new ScriptedPodSource([throttled(60_000), pod()]) });
  const result = await add(tooLate, netconf({ pod_lookup_deadline_seconds: 2 }));
  assert.equal(result.json['code'], 11);
  assert.deepEqual(tooLate.clock.sleeps, []);
});

test('API keeps failing with 500 → backoff, then code 11 at the deadline (fail closed, retry later)', async () => {
  const source = new ScriptedPodSource([
    new KubeError('etcdserver: request timed out', { status: 500, retryable: true }),
  ]);
  const deps = fakePluginDeps({ source });
  const result = await add(deps);
  assert.equal(result.exitCode, 1);
  assert.equal(result.json['code'], 11);
  assert.equal(result.json['msg'], 'etcdserver: request timed out');
  // Doubling from 200 ms, capped at 2 s, until the 15 s deadline.
  assert.deepEqual(deps.clock.sleeps, [200, 400, 800, 1600, 2000, 2000, 2000, 2000, 2000, 2000]);
  assert.deepEqual(deps.applied, []);
});

test('a request that never answers is cut at the lookup deadline: one attempt, a retryable error (code 11 at the ADD)', async () => {
  let calls = 0;
  const hanging = {
    getPod: (_namespace: string, _name: string, signal?: AbortSignal) => {
      calls += 1;
      // As the real transports: only the signal ends the request.
      return new Promise<unknown>((_resolve, reject) =>
        signal?.addEventListener('abort', () =>
          reject(new KubeError('context deadline exceeded', { retryable: true })),
        ),
      );
    },
  };
  // The plugin's own clock, read with sub-millisecond precision (the port does not promise whole milliseconds).
  const realClock = { ...systemClock, now: () => performance.now() };
  const policy = { ...DEFAULT_LOOKUP_POLICY, deadlineMs: 50 };
  await assert.rejects(
    lookupPod(hanging, 'default', 'app-1', policy, realClock, () => undefined),
    (error: unknown) => error instanceof KubeError && error.retryable,
  );
  assert.equal(calls, 1);
});

test('CHECK records carry no add_outcome on any path, a skip included (the agent counts ADDs only)', async () => {
  const unmeshed = fakePluginDeps({
    source: new ScriptedPodSource([pod({ containers: [{ name: 'app' }] })]),
  });
  assert.equal((await check(unmeshed)).exitCode, 0);
  assert.ok(unmeshed.logLines.length > 0);
  assert.ok(
    unmeshed.logLines.every((line) => !line.includes('add_outcome')),
    unmeshed.logLines.join('\n'),
  );
});

test('pod_lookup_deadline_seconds bounds the lookup', async () => {
  const source = new ScriptedPodSource([new KubeError('timeout', { retryable: true })]);
  const deps = fakePluginDeps({ source });
  await add(deps, netconf({ pod_lookup_deadline_seconds: 1 }));
  assert.equal(
    deps.clock.sleeps.reduce((sum, ms) => sum + ms, 0),
    1000,
  );
});

test('401 is not retried → code 999', async () => {
  const source = new ScriptedPodSource([new KubeError('Unauthorized', { status: 401, retryable: false })]);
  const deps = fakePluginDeps({ source });
  const result = await add(deps);
  assert.equal(result.json['code'], 999);
  assert.equal(result.json['msg'], 'Unauthorized');
  assert.equal(source.calls.length, 1);
});

test('a lookup error no transport raised (a request that cannot be built) is not retried → 999', async () => {
  const source = new ScriptedPodSource([new TypeError('Invalid URL')]);
  const deps = fakePluginDeps({ source });
  const result = await add(deps);
  assert.equal(result.json['code'], 999);
  assert.equal(result.json['msg'], 'Invalid URL');
  assert.equal(source.calls.length, 1);
  assert.deepEqual(deps.clock.sleeps, []);
});

test('missing/corrupt kubeconfig → 999 "failed to createNewK8sClient"', async () => {
  const deps = fakePluginDeps({ source: new Error('invalid kubeconfig: users[0].user.token is missing') });
  const result = await add(deps);
  assert.equal(result.json['code'], 999);
  assert.equal(
    result.json['msg'],
    'failed to createNewK8sClient: invalid kubeconfig: users[0].user.token is missing',
  );
});

test('bad CNI_ARGS → 999 "failed to load args"', async () => {
  const deps = fakePluginDeps();
  const result = await add(deps, netconf(), cniEnv('ADD', { CNI_ARGS: 'K8S_POD_NAME=a;OOPS=1' }));
  assert.equal(result.json['code'], 999);
  assert.equal(result.json['msg'], 'failed to load args: ARGS: unknown args ["OOPS=1"]');
  assert.deepEqual(deps.opened, []);
  assert.deepEqual(deps.applied, []);
});

test('wrong field types → 999 "failed to parse network configuration"', async () => {
  const deps = fakePluginDeps();
  const result = await add(deps, netconf({ exclude_namespaces: 'kube-system', native_nftables: 'yes' }));
  assert.equal(result.json['code'], 999);
  assert.match(
    String(result.json['msg']),
    /^failed to parse network configuration: exclude_namespaces: .*native_nftables/,
  );
});

test('malformed prevResult → 999 "could not parse prevResult"', async () => {
  const deps = fakePluginDeps();
  const result = await add(deps, netconf({ prevResult: { ips: [{ address: 'nope' }] } }));
  assert.equal(result.json['code'], 999);
  assert.match(String(result.json['msg']), /^could not parse prevResult: prevResult\.ips\[0\]\.address/);
  assert.deepEqual(deps.opened, []);
  assert.deepEqual(deps.applied, []);
});

const INVALID_ANNOTATIONS: readonly [string, string, RegExp][] = [
  [
    'traffic.sidecar.istio.io/excludeOutboundPorts',
    '80,http',
    /^annotation value error for value excludeOutboundPorts; annotationFound = true: portList "80,http" invalid/,
  ],
  [
    'traffic.sidecar.istio.io/includeOutboundIPRanges',
    '10.0.0.0/33',
    /^annotation value error for value includeIPCidrs; annotationFound = true: IPRanges invalid: failed parsing cidr '10\.0\.0\.0\/33'/,
  ],
  [
    'traffic.sidecar.istio.io/excludeInterfaces',
    'eth0/1',
    /^annotation value error for value excludeInterfaces; annotationFound = true: interface name "eth0\/1" contains invalid characters/,
  ],
];

for (const [key, value, message] of INVALID_ANNOTATIONS) {
  test(`invalid ${key}=${value} → 999 naming it, nothing applied`, async () => {
    const deps = fakePluginDeps({
      source: new ScriptedPodSource([
        pod({ annotations: { 'sidecar.istio.io/status': '{}', [key]: value } }),
      ]),
    });
    const result = await add(deps);
    assert.equal(result.exitCode, 1);
    assert.equal(result.json['code'], 999);
    assert.match(String(result.json['msg']), message);
    assert.deepEqual(deps.applied, []);
  });
}

test('invalid annotation → 999 with upstream message, no rules', async () => {
  const deps = fakePluginDeps({
    source: new ScriptedPodSource([
      pod({ annotations: { 'sidecar.istio.io/status': '{}', 'sidecar.istio.io/interceptionMode': 'NONE' } }),
    ]),
  });
  const result = await add(deps);
  assert.equal(result.json['code'], 999);
  assert.equal(
    result.json['msg'],
    'annotation value error for value redirectMode; annotationFound = true: interceptionMode invalid: NONE',
  );
  assert.deepEqual(deps.applied, []);
});

test('a non-pod answer from the API → 999 naming the field', async () => {
  const deps = fakePluginDeps({ source: new ScriptedPodSource([{ kind: 'Status' }]) });
  const result = await add(deps);
  assert.equal(result.json['code'], 999);
  assert.match(String(result.json['msg']), /invalid pod object/);
});

test('rule engine failure fails the ADD', async () => {
  const deps = fakePluginDeps({
    source: new ScriptedPodSource([pod()]),
    applyResult: new ExecError('EXEC_FAILED', 'xtables parameter problem: x'),
  });
  const result = await add(deps);
  assert.equal(result.json['code'], 999);
  assert.equal(result.json['msg'], 'xtables parameter problem: x');
});

test('env ISTIO_OUTBOUND_* reaches the capture config', async () => {
  const deps = fakePluginDeps({
    source: new ScriptedPodSource([pod()]),
    env: { ISTIO_OUTBOUND_OWNER_GROUPS: '1,2' },
  });
  await add(deps);
  assert.equal(deps.applied[0]?.config.ownerGroupsInclude, '1,2');
});

test('logs go to the logger (stderr), never stdout', async () => {
  const deps = fakePluginDeps({ source: new ScriptedPodSource([pod()]) });
  const result = await add(deps);
  assert.equal(result.stdout, EXPECTED_OUTPUT);
  const records = deps.logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.ok(
    records.some((record) =>
      String(record['msg']).startsWith('============= Start iptables configuration for app-1'),
    ),
  );
  assert.ok(
    records.every((record) => typeof record['time'] === 'string' && record['scope'] === 'cni-plugin'),
  );
});

test('DEL succeeds with no side effects, even without a netns', async () => {
  const deps = fakePluginDeps({ source: new Error('must not be used') });
  for (const env of [cniEnv('DEL', { CNI_NETNS: '' }), cniEnv('DEL')]) {
    const io = fakeProcessIO(env, netconf());
    assert.equal(await dispatch(io, createHandlers(deps), 'about'), 0);
    assert.equal(io.stdout.join(''), '');
  }
  assert.deepEqual(deps.opened, []);
});

async function check(deps: FakePluginDeps, stdin = netconf(), env = cniEnv('CHECK')) {
  const io = fakeProcessIO(env, stdin);
  const exitCode = await dispatch(io, createHandlers(deps), 'about');
  return { exitCode, stdout: io.stdout.join('') };
}

test('CHECK of a meshed pod verifies the rules with the ADD parameters, applies nothing, prints nothing', async () => {
  const source = new ScriptedPodSource([pod()]);
  const deps = fakePluginDeps({ source });
  const result = await check(deps);
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, '');
  assert.deepEqual(source.calls, ['default/app-1']);
  assert.equal(source.closed, 1);
  assert.deepEqual(deps.applied, []);
  await add(deps);
  assert.deepEqual(deps.checked, deps.applied);
  // CHECK's records carry no add_outcome: the agent counts only ADDs.
  const checkRecords = deps.logLines.slice(
    0,
    deps.logLines.findIndex((line) => line.includes('Start')),
  );
  assert.ok(checkRecords.some((line) => line.includes('are present')));
  assert.ok(checkRecords.every((line) => !line.includes('add_outcome')));
});

test('CHECK with missing rules → 999 naming the difference, on stdout as a CNI error', async () => {
  const deps = fakePluginDeps({
    source: new ScriptedPodSource([pod()]),
    checkResult: new AppError(
      'RULES_INVALID',
      'istio v4 rules are not as expected: chain ISTIO_OUTPUT missing',
    ),
  });
  const result = await check(deps);
  assert.equal(result.exitCode, 1);
  assert.deepEqual(JSON.parse(result.stdout), {
    code: 999,
    msg: 'istio v4 rules are not as expected: chain ISTIO_OUTPUT missing',
    details: 'RULES_INVALID',
  });
  assert.ok(deps.logLines.some((line) => line.includes('CHECK failed: istio v4 rules')));
});

test('CHECK skips like ADD: agent pod, non-Kubernetes, excluded namespace, unmeshed pod → success unchecked', async () => {
  for (const cniArgs of [
    'K8S_POD_NAMESPACE=istio-system;K8S_POD_NAME=istio-cni-node-x7k2p',
    '',
    'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns',
  ]) {
    const deps = fakePluginDeps({ source: new Error('kubeconfig missing') });
    const result = await check(deps, netconf(), cniEnv('CHECK', { CNI_ARGS: cniArgs }));
    assert.equal(result.exitCode, 0, result.stdout);
    assert.deepEqual(deps.opened, []);
    assert.deepEqual(deps.checked, []);
  }
  const unmeshed = fakePluginDeps({
    source: new ScriptedPodSource([pod({ containers: [{ name: 'app' }] })]),
  });
  assert.equal((await check(unmeshed)).exitCode, 0);
  assert.deepEqual(unmeshed.checked, []);
});

test('CHECK fails closed like ADD: lookup errors keep their codes; cniVersion below 0.4.0 is refused', async () => {
  const unauthorized = fakePluginDeps({
    source: new ScriptedPodSource([new KubeError('Unauthorized', { status: 401, retryable: false })]),
  });
  const denied = await check(unauthorized);
  assert.equal(denied.exitCode, 1);
  assert.equal((JSON.parse(denied.stdout) as { code: number }).code, 999);
  const old = fakePluginDeps({ source: new ScriptedPodSource([pod()]) });
  const refused = await check(old, netconf({ cniVersion: '0.3.1', prevResult: undefined }));
  assert.equal(refused.exitCode, 1);
  assert.deepEqual(old.checked, []);
});

test('CHECK of an ambient pod posts no event and checks no rules', async () => {
  const source = new ScriptedPodSource([
    pod({ annotations: {}, labels: { 'istio.io/dataplane-mode': 'ambient' } }),
  ]);
  const deps = fakePluginDeps({ source });
  const result = await check(
    deps,
    netconf({
      ambient_enabled: true,
      enablement_selectors: [{ podSelector: { matchLabels: { 'istio.io/dataplane-mode': 'ambient' } } }],
    }),
  );
  assert.equal(result.exitCode, 0, result.stdout);
  assert.deepEqual(deps.events, []);
  assert.deepEqual(deps.checked, []);
  assert.ok(deps.logLines.some((line) => line.includes('no redirect rules to check')));
});

test('records carry add_outcome for the agent metrics: skipped, redirected, failed', async () => {
  const outcomes = async (deps: FakePluginDeps, env = cniEnv('ADD')) => {
    await add(deps, netconf(), env);
    return deps.logLines
      .map((line) => (JSON.parse(line) as { add_outcome?: string }).add_outcome)
      .filter((outcome) => outcome !== undefined);
  };
  assert.deepEqual(await outcomes(fakePluginDeps({ source: new ScriptedPodSource([pod()]) })), [
    'redirected',
  ]);
  assert.deepEqual(await outcomes(fakePluginDeps(), cniEnv('ADD', { CNI_ARGS: '' })), ['skipped']);
  assert.deepEqual(await outcomes(fakePluginDeps({ source: new Error('no kubeconfig') })), ['failed']);
});

const AMBIENT = {
  ambient_enabled: true,
  enablement_selectors: [{ podSelector: { matchLabels: { 'istio.io/dataplane-mode': 'ambient' } } }],
};
const ambientPod = () => pod({ annotations: {}, labels: { 'istio.io/dataplane-mode': 'ambient' } });
const notFound = new KubeError('pods "app-1" not found', { status: 404, retryable: true });
const messages = (deps: FakePluginDeps) =>
  deps.logLines.map((line) => (JSON.parse(line) as { msg: string }).msg);

test('ambient ADD: the event carries the netns, the pod and the prevResult IPs; the result passes through', async () => {
  const deps = fakePluginDeps({ source: new ScriptedPodSource([ambientPod()]) });
  const result = await add(deps, netconf(AMBIENT));
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, EXPECTED_OUTPUT);
  assert.deepEqual(deps.events, [
    {
      socket: `${RUN_DIR}/pluginevent.sock`,
      body: {
        Netns: '/var/run/netns/ia-test',
        PodName: 'app-1',
        PodNamespace: 'default',
        IPs: [{ Interface: 0, Address: { IP: '10.0.0.2', Mask: '////AA==' }, Gateway: '10.0.0.1' }],
      },
    },
  ]);
  assert.deepEqual(deps.applied, []);
});

test('error details carry the stable code of the failing step', async () => {
  const cases: [string, FakePluginDeps, string, string][] = [
    ['config', fakePluginDeps(), netconf({ native_nftables: 'yes' }), 'CONFIG_INVALID'],
    [
      'prevResult',
      fakePluginDeps(),
      netconf({ prevResult: { ips: [{ address: 'nope' }] } }),
      'CONFIG_INVALID',
    ],
    ['kubeconfig', fakePluginDeps({ source: new Error('ENOENT') }), netconf(), 'KUBECONFIG_INVALID'],
    [
      'agent event',
      fakePluginDeps({
        source: new ScriptedPodSource([ambientPod()]),
        eventResult: new Error('ECONNREFUSED'),
      }),
      netconf(AMBIENT),
      'CNI_PROTOCOL',
    ],
  ];
  for (const [label, deps, conf, details] of cases) {
    const result = await add(deps, conf);
    assert.equal(result.json['code'], 999, label);
    assert.equal(result.json['details'], details, label);
  }
});

test('ambient detection with the retry flag: a failing pod GET is named in podErr, an unreadable pod fails the ADD', async () => {
  const failing = fakePluginDeps({ source: new ScriptedPodSource([notFound]) });
  const failed = await add(failing, netconf({ ...AMBIENT, enable_ambient_detection_retry: true }));
  assert.equal(failed.json['code'], 999);
  assert.equal(
    failed.json['msg'],
    'failed to get pod or namespace info: podErr=pods "app-1" not found, nsErr=<nil>',
  );
  const unreadable = fakePluginDeps({ source: new ScriptedPodSource([{ kind: 'Status' }]) });
  const refused = await add(unreadable, netconf({ ...AMBIENT, enable_ambient_detection_retry: true }));
  assert.equal(refused.json['code'], 999);
  assert.match(String(refused.json['msg']), /^failed to read pod default\/app-1: /);
  assert.deepEqual(unreadable.applied, []);
});

test('prevResult null is no prevResult (a nil map in Go)', async () => {
  const withNull = await add(
    fakePluginDeps({ source: new ScriptedPodSource([pod()]) }),
    netconf({ prevResult: null }),
  );
  const without = await add(
    fakePluginDeps({ source: new ScriptedPodSource([pod()]) }),
    netconf({ prevResult: undefined }),
  );
  assert.equal(withNull.exitCode, 0);
  assert.equal(withNull.stdout, without.stdout);
});

test('the pod source is closed whatever the lookup ends with', async () => {
  for (const script of [
    [new KubeError('Unauthorized', { status: 401, retryable: false })],
    [new KubeError('etcdserver: request timed out', { status: 500, retryable: true })],
    [{ kind: 'Status' }],
  ]) {
    const source = new ScriptedPodSource(script);
    const result = await add(fakePluginDeps({ source }));
    assert.equal(result.exitCode, 1);
    assert.equal(source.closed, 1, JSON.stringify(script));
  }
});

test('the pod source gets the per-request timeout: 5 s, or the lookup deadline when that is shorter', async () => {
  for (const [extra, expected] of [
    [{}, 5000],
    [{ pod_lookup_deadline_seconds: 2 }, 2000],
    [{ pod_lookup_deadline_seconds: 30 }, 5000],
  ] as const) {
    const deps = fakePluginDeps({ source: new ScriptedPodSource([pod()]) });
    const timeouts: number[] = [];
    const recording: FakePluginDeps = {
      ...deps,
      openPodSource: (file, timeoutMs) => {
        timeouts.push(timeoutMs);
        return deps.openPodSource(file, timeoutMs);
      },
    };
    assert.equal((await add(recording, netconf(extra))).exitCode, 0);
    assert.deepEqual(timeouts, [expected], JSON.stringify(extra));
  }
});

test('each retry is logged with the attempt, the wait and the error', async () => {
  const deps = fakePluginDeps({ source: new ScriptedPodSource([notFound, notFound, pod()]) });
  await add(deps);
  const retries = messages(deps).filter((msg) => msg.startsWith('pod lookup attempt'));
  assert.deepEqual(retries, [
    'pod lookup attempt 1 failed, retrying in 200 ms: pods "app-1" not found',
    'pod lookup attempt 2 failed, retrying in 400 ms: pods "app-1" not found',
  ]);
});

test('the deadline is honoured exactly: no attempt once it has passed, no wait for a Retry-After that reaches it', async () => {
  const failing = new ScriptedPodSource([
    new KubeError('etcdserver: request timed out', { status: 500, retryable: true }),
  ]);
  const deps = fakePluginDeps({ source: failing });
  assert.equal((await add(deps)).json['code'], 11);
  // 10 waits fill the 15 s: the last one ends at the deadline, and no attempt follows it.
  assert.equal(failing.calls.length, 10);
  const throttled = new KubeError('Too many requests', { status: 429, retryable: true, retryAfterMs: 2000 });
  const late = fakePluginDeps({ source: new ScriptedPodSource([throttled, pod()]) });
  const result = await add(late, netconf({ pod_lookup_deadline_seconds: 2 }));
  assert.equal(result.json['code'], 11);
  assert.deepEqual(late.clock.sleeps, []);
});

test('the kubeconfig path joins the run dir as Go does: trailing slashes dropped, no run dir → the bare name', async () => {
  for (const [dir, expected] of [
    ['/var/run/istio-cni/', '/var/run/istio-cni/istio-cni-kubeconfig'],
    ['', 'istio-cni-kubeconfig'],
  ] as const) {
    const deps = fakePluginDeps({ source: new ScriptedPodSource([pod()]) });
    await add(deps, netconf({ cni_agent_run_dir: dir }));
    assert.deepEqual(deps.opened, [expected], dir);
  }
});

test('an unparseable proxy boolean is logged as a warning and the pod is still programmed', async () => {
  const deps = fakePluginDeps({
    source: new ScriptedPodSource([
      pod({
        containers: [{ name: 'istio-proxy', env: [{ name: 'ISTIO_META_DNS_CAPTURE', value: 'maybe' }] }],
      }),
    ]),
  });
  assert.equal((await add(deps)).exitCode, 0);
  assert.equal(deps.applied.length, 1);
  assert.ok(
    messages(deps).includes(
      'cannot parse DNS capture environment variable strconv.ParseBool: parsing "maybe": invalid syntax',
    ),
    deps.logLines.join('\n'),
  );
});
