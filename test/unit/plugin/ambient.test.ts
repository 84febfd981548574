import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cniAddEvent, compileEnablementSelectors, isAmbientPod } from '../../../src/plugin/ambient.ts';
import { dispatch } from '../../../src/cni/dispatch.ts';
import { createHandlers } from '../../../src/plugin/handlers.ts';
import { KubeError } from '../../../src/errors.ts';
import { cniEnv, fakeProcessIO } from '../../support/fake-process-io.ts';
import { ScriptedPodSource, fakePluginDeps } from '../../support/fake-plugin-deps.ts';
import type { FakePluginDeps } from '../../support/fake-plugin-deps.ts';

/** The chart's default enablement selectors. */
const CHART_SELECTORS = [
  { podSelector: { matchLabels: { 'istio.io/dataplane-mode': 'ambient' } } },
  {
    podSelector: {
      matchExpressions: [{ key: 'istio.io/dataplane-mode', operator: 'NotIn', values: ['none'] }],
    },
    namespaceSelector: { matchLabels: { 'istio.io/dataplane-mode': 'ambient' } },
  },
];
const selectors = compileEnablementSelectors(CHART_SELECTORS);
const view = (
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
  hostNetwork = false,
) => ({
  labels,
  annotations,
  hostNetwork,
});
const AMBIENT_NS = { 'istio.io/dataplane-mode': 'ambient' };

test('chart selectors: namespace or pod label enables; none opts out; sidecar and hostNetwork never', () => {
  assert.equal(isAmbientPod(view(), AMBIENT_NS, selectors), true);
  assert.equal(isAmbientPod(view({ 'istio.io/dataplane-mode': 'none' }), AMBIENT_NS, selectors), false);
  assert.equal(isAmbientPod(view({ 'istio.io/dataplane-mode': 'ambient' }), {}, selectors), true);
  assert.equal(isAmbientPod(view(), {}, selectors), false);
  assert.equal(isAmbientPod(view({}, { 'sidecar.istio.io/status': '{}' }), AMBIENT_NS, selectors), false);
  assert.equal(isAmbientPod(view({}, {}, true), AMBIENT_NS, selectors), false);
  assert.equal(isAmbientPod(view(), {}, compileEnablementSelectors([{}])), true, 'empty selectors match all');
});

test('invalid selectors fail with upstream prefix', () => {
  assert.throws(
    () =>
      compileEnablementSelectors([{ podSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } }]),
    /^Error: failed to instantiate ambient enablement selector: \[0\]/,
  );
  assert.throws(
    () => compileEnablementSelectors([{ podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }]),
    /must be specified when operator is In/,
  );
});

test('add event body uses Go field names and net.IPNet masks', () => {
  assert.deepEqual(
    cniAddEvent('/var/run/netns/x', 'p', 'ns', [
      { interfaceIndex: 0, address: '10.0.0.2/24', gateway: '10.0.0.1' },
      { interfaceIndex: undefined, address: 'fd00::2/64', gateway: undefined },
    ]),
    {
      Netns: '/var/run/netns/x',
      PodName: 'p',
      PodNamespace: 'ns',
      IPs: [
        { Interface: 0, Address: { IP: '10.0.0.2', Mask: '////AA==' }, Gateway: '10.0.0.1' },
        { Interface: null, Address: { IP: 'fd00::2', Mask: '//////////8AAAAAAAAAAA==' }, Gateway: null },
      ],
    },
  );
  assert.equal(cniAddEvent('n', 'p', 'ns', undefined)['IPs'], null);
});

const plainPod = (labels: Record<string, string> = {}) => ({
  metadata: { name: 'app-1', namespace: 'default', labels },
  spec: { containers: [{ name: 'app' }] },
});

function netconf(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'istio-cni',
    cni_agent_run_dir: '/var/run/istio-cni',
    ambient_enabled: true,
    enablement_selectors: CHART_SELECTORS,
    prevResult: { cniVersion: '1.0.0', ips: [{ interface: 0, address: '10.0.0.2/24' }] },
    ...extra,
  });
}

async function add(deps: FakePluginDeps, stdin = netconf()) {
  const io = fakeProcessIO(cniEnv('ADD'), stdin);
  const exitCode = await dispatch(io, createHandlers(deps), 'about');
  return { exitCode, json: JSON.parse(io.stdout.join('')) as Record<string, unknown> };
}

test('ambient namespace: event POSTed to pluginevent.sock, no sidecar rules', async () => {
  const source = new ScriptedPodSource([plainPod()]);
  source.namespaces = { default: AMBIENT_NS };
  const deps = fakePluginDeps({ source });
  const result = await add(deps);
  assert.equal(result.exitCode, 0);
  assert.equal(deps.events.length, 1);
  assert.equal(deps.events[0]?.socket, '/var/run/istio-cni/pluginevent.sock');
  assert.deepEqual((deps.events[0]?.body as { PodName: string }).PodName, 'app-1');
  assert.deepEqual(deps.applied, []);
});

test('agent unreachable → ADD fails with upstream message', async () => {
  const source = new ScriptedPodSource([plainPod()]);
  source.namespaces = { default: AMBIENT_NS };
  const deps = fakePluginDeps({
    source,
    eventResult: new Error('unable to push CNI event (status code 500): x'),
  });
  const result = await add(deps);
  assert.equal(result.json['code'], 999);
  assert.equal(
    result.json['msg'],
    'istio-cni cmdAdd failed to contact node Istio CNI agent: unable to push CNI event (status code 500): x',
  );
});

test('an invalid enablement selector is a detection error: not ambient without the retry flag, the ADD fails with it', async () => {
  const invalid = [{ podSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } }];
  const source = new ScriptedPodSource([plainPod()]);
  source.namespaces = { default: AMBIENT_NS };
  const lenient = fakePluginDeps({ source });
  const passed = await add(lenient, netconf({ enablement_selectors: invalid }));
  assert.equal(passed.exitCode, 0);
  assert.deepEqual(lenient.events, []);
  const strict = await add(
    fakePluginDeps({ source }),
    netconf({ enablement_selectors: invalid, enable_ambient_detection_retry: true }),
  );
  assert.equal(strict.json['code'], 999);
  assert.match(String(strict.json['msg']), /^failed to instantiate ambient enablement selector: \[0\]/);
});

test('not ambient → sidecar path continues (pod without proxy is skipped)', async () => {
  const source = new ScriptedPodSource([plainPod({ 'istio.io/dataplane-mode': 'none' })]);
  source.namespaces = { default: AMBIENT_NS };
  const deps = fakePluginDeps({ source });
  const result = await add(deps);
  assert.equal(result.exitCode, 0);
  assert.deepEqual(deps.events, []);
});

test('detection failure: 2 attempts then sidecar path; with the retry flag 31 attempts then failure', async () => {
  const notFound = new KubeError('namespaces "default" not found', { status: 404, retryable: true });
  const source = new ScriptedPodSource([plainPod()]);
  source.namespaces = notFound;
  const deps = fakePluginDeps({ source });
  const result = await add(deps);
  assert.equal(result.exitCode, 0);
  assert.deepEqual(deps.clock.sleeps, [1000]);

  const strict = fakePluginDeps({ source });
  const failed = await add(strict, netconf({ enable_ambient_detection_retry: true }));
  assert.equal(failed.json['code'], 999);
  assert.equal(
    failed.json['msg'],
    'failed to get pod or namespace info: podErr=<nil>, nsErr=namespaces "default" not found',
  );
  assert.equal(strict.clock.sleeps.length, 30);
});

test('detection retry: transient failures, then the namespace answers → ambient (3 sleeps, event sent)', async () => {
  const source = new ScriptedPodSource([plainPod()]);
  source.namespaces = { default: AMBIENT_NS };
  source.namespaceFailures = [1, 2, 3].map(
    () => new KubeError('the server answered 503', { status: 503, retryable: true }),
  );
  const deps = fakePluginDeps({ source });
  const result = await add(deps, netconf({ enable_ambient_detection_retry: true }));
  assert.equal(result.exitCode, 0);
  assert.deepEqual(deps.clock.sleeps, [1000, 1000, 1000]);
  assert.equal(source.calls.filter((call) => call.startsWith('namespace ')).length, 4);
  assert.equal(deps.events.length, 1);
  assert.deepEqual(deps.applied, []);
});

test('generic sidecar: an istio-proxy container without the injector status annotation is ambient → event sent', async () => {
  const source = new ScriptedPodSource([
    {
      metadata: { name: 'app-1', namespace: 'default', labels: {} },
      spec: { containers: [{ name: 'app' }, { name: 'istio-proxy' }] },
    },
  ]);
  source.namespaces = { default: AMBIENT_NS };
  const deps = fakePluginDeps({ source });
  const result = await add(deps);
  assert.equal(result.exitCode, 0);
  assert.equal(deps.events.length, 1);
  assert.deepEqual(deps.applied, []);
});

test('excluded namespace, labelled ambient: no lookup, no event', async () => {
  const source = new ScriptedPodSource([
    { ...plainPod(), metadata: { name: 'coredns', namespace: 'kube-system' } },
  ]);
  source.namespaces = { 'kube-system': AMBIENT_NS };
  const deps = fakePluginDeps({ source });
  const io = fakeProcessIO(
    cniEnv('ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns' }),
    netconf({ exclude_namespaces: ['kube-system'] }),
  );
  const exitCode = await dispatch(io, createHandlers(deps), 'about');
  assert.equal(exitCode, 0);
  assert.deepEqual(source.calls, []);
  assert.deepEqual(deps.events, []);
});

test('matchExpressions operators as Kubernetes label selectors evaluate them (a label present with an empty value exists)', () => {
  const podMatches = (requirement: Record<string, unknown>, labels: Record<string, string>) =>
    isAmbientPod(
      view(labels),
      {},
      compileEnablementSelectors([{ podSelector: { matchExpressions: [requirement] } }]),
    );
  const cases: [Record<string, unknown>, Record<string, string>, boolean][] = [
    [{ key: 'a', operator: 'In', values: [''] }, {}, false],
    [{ key: 'a', operator: 'In', values: [''] }, { a: '' }, true],
    [{ key: 'a', operator: 'In', values: ['x', 'y'] }, { a: 'y' }, true],
    [{ key: 'a', operator: 'NotIn', values: ['x'] }, {}, true],
    [{ key: 'a', operator: 'NotIn', values: ['x'] }, { a: 'x' }, false],
    [{ key: 'a', operator: 'Exists' }, { a: '' }, true],
    [{ key: 'a', operator: 'Exists', values: null }, { b: 'x' }, false],
    [{ key: 'a', operator: 'DoesNotExist' }, {}, true],
    [{ key: 'a', operator: 'DoesNotExist' }, { a: '' }, false],
    [{ key: 'a', operator: 'DoesNotExist' }, { a: 'x' }, false],
  ];
  for (const [requirement, labels, expected] of cases) {
    assert.equal(
      podMatches(requirement, labels),
      expected,
      `${JSON.stringify(requirement)} on ${JSON.stringify(labels)}`,
    );
  }
});

test('namespaceSelector takes matchExpressions like podSelector; both of a pair must match', () => {
  const pairs = compileEnablementSelectors([
    {
      podSelector: { matchLabels: { app: 'web' } },
      namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
    },
  ]);
  assert.equal(isAmbientPod(view({ app: 'web' }), { env: 'prod' }, pairs), true);
  assert.equal(isAmbientPod(view({ app: 'web' }), { env: 'dev' }, pairs), false);
  assert.equal(isAmbientPod(view({ app: 'db' }), { env: 'prod' }, pairs), false);
});

test('invalid selectors: values required for In/NotIn, forbidden for Exists/DoesNotExist, matchLabels values are strings', () => {
  const invalid: [unknown, RegExp][] = [
    [
      { podSelector: { matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] } },
      /operator is NotIn/,
    ],
    [
      { podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } },
      /operator is Exists/,
    ],
    [
      { namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] } },
      /operator is DoesNotExist/,
    ],
    [{ podSelector: { matchLabels: { a: 1 } } }, /podSelector\.matchLabels\.a/],
    [
      { namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } },
      /namespaceSelector\.matchExpressions\.0\.operator/,
    ],
  ];
  for (const [selector, detail] of invalid) {
    assert.throws(
      () => compileEnablementSelectors([{}, selector]),
      (error: unknown) =>
        error instanceof Error &&
        error.message.startsWith('failed to instantiate ambient enablement selector: [1] ') &&
        detail.test(error.message),
      JSON.stringify(selector),
    );
  }
});

test('add event masks for prefixes that are not whole bytes', () => {
  const event = cniAddEvent('n', 'p', 'ns', [
    { interfaceIndex: 1, address: '10.0.0.2/20', gateway: undefined },
    { interfaceIndex: 1, address: 'fd00::2/65', gateway: undefined },
  ]);
  assert.deepEqual(
    (event['IPs'] as { Address: { Mask: string } }[]).map((ip) =>
      Buffer.from(ip.Address.Mask, 'base64').toString('hex'),
    ),
    ['fffff000', 'ffffffffffffffff8000000000000000'],
  );
});

test('hostNetwork and the sidecar status annotation exclude a pod whatever the selectors', () => {
  const all = compileEnablementSelectors([{}]);
  assert.equal(isAmbientPod(view({}, {}, true), {}, all), false);
  assert.equal(isAmbientPod(view({}, { 'sidecar.istio.io/status': '' }), {}, all), false);
  assert.equal(isAmbientPod(view(), {}, compileEnablementSelectors([])), false, 'no selectors match nothing');
});
