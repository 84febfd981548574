// manifests/: every kustomization renders, every rendered object validates against the Kubernetes schemas
// (kubernetes-models, offline), the DaemonSet matches the upstream chart's defaults (behaviour §4.1–§4.3), each
// overlay puts the host paths of its platform profile in place, and the env the manifests set cannot drift from
// the agent's settings table (src/config/settings.ts).
//
// Rendering uses `kubectl kustomize` (or `kustomize build`) when one is on PATH. Without either (a fresh CI
// machine), a small renderer below handles the subset of kustomize our manifests use (resources, components,
// JSON6902 patches with a kind/name target). The real tool's rendering of every target is recorded in
// test/unit/testdata/manifests/ (checked against the tool wherever it is installed, rewritten from it by
// --update-golden), and the subset renderer is held to those goldens everywhere, so it cannot silently diverge.
/* eslint-disable @typescript-eslint/no-explicit-any -- rendered YAML is untyped data; kubernetes-models' schema validation is its type check. */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { ResourceQuota } from 'kubernetes-models/v1/ResourceQuota';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { SETTINGS } from '../../src/config/settings.ts';
import { VERSION } from '../../src/version.ts';

type Obj = Record<string, any>;

const root = path.resolve(import.meta.dirname, '../..');
const manifests = path.join(root, 'manifests');
const overlays = ['k3s', 'k3d', 'microk8s', 'minikube', 'gke', 'openshift'] as const;

// ---- rendering -----------------------------------------------------------------------------------------------

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const candidate = path.join(dir, name);
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * kubectl embeds kustomize; components and target-selected `patches` need kustomize v4+ (kubectl 1.21+).
 * Debian 12's own kubectl (1.20, kustomize v2) is too old: then only the subset renderer runs.
 */
async function kustomizeMajor(argv: string[]): Promise<number> {
  const [file, ...args] = argv;
  if (file === undefined) return 0;
  const text = await run(file, args).catch(() => '');
  return Number(/Kustomize Version: v?(\d+)|^v?(\d+)\./m.exec(text)?.slice(1).find(Boolean) ?? 0);
}
const kubectlPath = onPath('kubectl');
const kustomizePath = onPath('kustomize');
const kubectl =
  kubectlPath !== undefined && (await kustomizeMajor([kubectlPath, 'version', '--client'])) >= 4
    ? kubectlPath
    : undefined;
const kustomize =
  kustomizePath !== undefined && (await kustomizeMajor([kustomizePath, 'version'])) >= 4
    ? kustomizePath
    : undefined;

function parseObjects(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Obj | null)
    .filter((obj): obj is Obj => obj !== null);
}

async function renderWithTool(dir: string): Promise<Obj[] | undefined> {
  if (kubectl !== undefined) return parseObjects(await run(kubectl, ['kustomize', dir]));
  if (kustomize !== undefined) return parseObjects(await run(kustomize, ['build', dir]));
  return undefined;
}

/** JSON pointer segments (RFC 6901). */
function pointer(p: string): string[] {
  return p
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function applyJsonPatch(target: Obj, ops: Obj[]): void {
  for (const op of ops) {
    const segments = pointer(op['path'] as string);
    const last = segments.pop();
    assert.ok(last !== undefined, `patch path ${op['path']}`);
    let parent: any = target;
    for (const segment of segments) {
      parent = parent[segment];
      assert.ok(parent !== undefined, `patch path ${op['path']} does not exist`);
    }
    const isArray = Array.isArray(parent);
    switch (op['op']) {
      case 'add':
        if (isArray && last === '-') parent.push(op['value']);
        else if (isArray) parent.splice(Number(last), 0, op['value']);
        else parent[last] = op['value'];
        break;
      case 'replace':
        assert.ok(last in parent, `replace of missing ${op['path']}`);
        parent[last] = op['value'];
        break;
      case 'remove':
        if (isArray) parent.splice(Number(last), 1);
        else delete parent[last];
        break;
      case 'test':
        assert.deepEqual(parent[last], op['value'], `patch test of ${op['path']} failed`);
        break;
      default:
        assert.fail(`subset renderer: unsupported op ${op['op']}`);
    }
  }
}

/** The merge keys of the lists our strategic-merge patches reach (the Kubernetes API's patchMergeKey). */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
};

/** The one strategic-merge form our manifests use: list items marked `$patch: delete`, found by their merge key
 * down a path of maps and keyed lists. Anything else (a value to merge) fails loudly. */
function applyStrategicDeletes(target: Obj, patch: Obj, identity = ['apiVersion', 'kind', 'metadata']): void {
  for (const [key, value] of Object.entries(patch)) {
    if (identity.includes(key)) continue;
    if (Array.isArray(value)) {
      const mergeKey = MERGE_KEYS[key];
      assert.ok(
        mergeKey !== undefined && Array.isArray(target[key]),
        `subset renderer: no keyed list ${key}`,
      );
      for (const item of value as Obj[]) {
        const index = (target[key] as Obj[]).findIndex((existing) => existing[mergeKey] === item[mergeKey]);
        assert.ok(index >= 0, `subset renderer: ${key} has no ${mergeKey} ${item[mergeKey]}`);
        if (item['$patch'] === 'delete') (target[key] as Obj[]).splice(index, 1);
        else applyStrategicDeletes((target[key] as Obj[])[index] as Obj, item, [mergeKey]);
      }
    } else {
      assert.ok(value !== null && typeof value === 'object', `subset renderer: strategic merge of ${key}`);
      applyStrategicDeletes(target[key] as Obj, value as Obj);
    }
  }
}

/**
 * The kustomize subset our manifests use; anything else fails loudly so a new feature is noticed here. A
 * Kustomization renders its own resources; a Component (`into` given) adds its resources to, and patches, the
 * objects of the kustomization that includes it.
 */
function renderSubset(dir: string, into?: Obj[]): Obj[] {
  const k = parseYaml(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Obj;
  const known = new Set(['apiVersion', 'kind', 'resources', 'components', 'patches']);
  for (const key of Object.keys(k)) assert.ok(known.has(key), `subset renderer: unsupported field ${key}`);
  assert.equal(k['kind'], into === undefined ? 'Kustomization' : 'Component');
  const objects: Obj[] = into ?? [];
  for (const entry of (k['resources'] as string[] | undefined) ?? []) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) objects.push(...renderSubset(full));
    else objects.push(...parseObjects(readFileSync(full, 'utf8')));
  }
  for (const entry of (k['components'] as string[] | undefined) ?? []) {
    renderSubset(path.join(dir, entry), objects);
  }
  for (const patch of (k['patches'] as Obj[] | undefined) ?? []) {
    const body = parseYaml(patch['patch'] as string) as Obj[] | Obj;
    const target = patch['target'] as Obj;
    const matches = objects.filter(
      (o) => o['kind'] === target['kind'] && o['metadata']?.name === target['name'],
    );
    assert.ok(matches.length > 0, `patch target ${target['kind']}/${target['name']} not found`);
    for (const obj of matches) {
      if (Array.isArray(body)) applyJsonPatch(obj, body);
      else applyStrategicDeletes(obj, body);
    }
  }
  return objects;
}

/** Objects as text independent of document and key order: sorted by kind/namespace/name, keys sorted. */
function canonicalObjects(objects: Obj[]): string {
  const sortKeys = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(sortKeys)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((key) => [key, sortKeys((value as Obj)[key])]),
          )
        : value;
  const sorted = [...byKey(objects)]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, o]) => sortKeys(o));
  return `${JSON.stringify(sorted, null, 2)}\n`;
}
const raw = { serializers: [(value: unknown) => String(value)] };

function byKey(objects: Obj[]): Map<string, Obj> {
  return new Map(
    objects.map((o) => [`${o['kind']}/${o['metadata']?.namespace ?? ''}/${o['metadata']?.name}`, o]),
  );
}

// ---- validation ------------------------------------------------------------------------------------------------

const models: Record<string, new (data: any) => { validate(): void }> = {
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/ResourceQuota': ResourceQuota,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'apps/v1/DaemonSet': DaemonSet,
};

function validate(obj: Obj): void {
  const type = `${obj['apiVersion']}/${obj['kind']}`;
  if (type === 'k8s.cni.cncf.io/v1/NetworkAttachmentDefinition') {
    // A CRD kubernetes-models has no schema for: Multus accepts an empty spec (config looked up by name).
    assert.deepEqual(Object.keys(obj).sort(), ['apiVersion', 'kind', 'metadata']);
    assert.equal(typeof obj['metadata'].name, 'string');
    return;
  }
  const Model = models[type];
  assert.ok(Model !== undefined, `no schema for ${type}`);
  assert.doesNotThrow(() => new Model(obj).validate(), `${type} ${obj['metadata']?.name}`);
}

// ---- fixtures --------------------------------------------------------------------------------------------------

const scratch = mkdtempSync(path.join(tmpdir(), 'ie-manifests-'));
// Also on exit: a failure while rendering (top-level await below) never reaches after().
const removeScratch = (): void => rmSync(scratch, { recursive: true, force: true });
process.once('exit', removeScratch);
after(removeScratch);

// An overlay as an operator would write it to turn one optional component on.
function overlayWith(component: string): string {
  const dir = path.join(scratch, component);
  const rel = path.relative(dir, manifests);
  mkdirSync(dir);
  writeFileSync(
    path.join(dir, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      `  - ${rel}/base`,
      'components:',
      `  - ${rel}/optional/${component}`,
      '',
    ].join('\n'),
  );
  return dir;
}
const components = ['node-taint', 'repair-delete-pods', 'repair-label-pods'] as const;

const targets: Record<string, string> = {
  base: path.join(manifests, 'base'),
  ...Object.fromEntries(overlays.map((o) => [o, path.join(manifests, 'overlays', o)])),
  ...Object.fromEntries(components.map((c) => [c, overlayWith(c)])),
};

const rendered = new Map<string, Obj[]>();
const tool = new Map<string, Obj[] | undefined>();
await Promise.all(
  Object.entries(targets).map(async ([name, dir]) => {
    rendered.set(name, renderSubset(dir));
    tool.set(name, await renderWithTool(dir));
  }),
);

function objectsOf(name: string): Obj[] {
  const objects = tool.get(name) ?? rendered.get(name);
  assert.ok(objects !== undefined);
  return objects;
}

function find(name: string, kind: string, objectName: string): Obj {
  const obj = objectsOf(name).find((o) => o['kind'] === kind && o['metadata']?.name === objectName);
  assert.ok(obj !== undefined, `${name}: ${kind}/${objectName} missing`);
  return obj;
}

function container(name: string): Obj {
  const ds = find(name, 'DaemonSet', 'istio-cni-node');
  return ds['spec'].template.spec.containers[0] as Obj;
}

function hostPaths(name: string): Record<string, string> {
  const ds = find(name, 'DaemonSet', 'istio-cni-node');
  return Object.fromEntries(
    (ds['spec'].template.spec.volumes as Obj[])
      .filter((v) => v['hostPath'] !== undefined)
      .map((v) => [v['name'], v['hostPath'].path]),
  );
}

// ---- tests -----------------------------------------------------------------------------------------------------

describe('manifests render and validate', () => {
  for (const name of Object.keys(targets)) {
    test(`${name}: every object validates against the Kubernetes schemas`, () => {
      const objects = objectsOf(name);
      assert.ok(objects.length >= 6);
      for (const obj of objects) validate(obj);
    });
    test(`${name}: the subset renderer gives what kubectl kustomize gives (golden recorded with the real tool)`, (t) => {
      // The golden is the real tool's rendering: checked against it wherever kubectl/kustomize (v4+) is installed
      // (and rewritten from it by --update-golden); the subset renderer is held to it everywhere, also on a
      // machine without the tool.
      const golden = path.join(import.meta.dirname, 'testdata', 'manifests', `${name}.json`);
      t.assert.fileSnapshot(canonicalObjects(rendered.get(name) ?? []), golden, raw);
      const real = tool.get(name);
      if (real !== undefined) t.assert.fileSnapshot(canonicalObjects(real), golden, raw);
    });
  }
});

describe('base matches the upstream chart defaults (§4.1–§4.3)', () => {
  test('DaemonSet istio-cni-node', () => {
    const ds = find('base', 'DaemonSet', 'istio-cni-node');
    assert.equal(ds['metadata'].namespace, 'istio-system');
    assert.deepEqual(ds['spec'].selector.matchLabels, { 'k8s-app': 'istio-cni-node' });
    for (const label of [
      'k8s-app',
      'release',
      'istio.io/rev',
      'install.operator.istio.io/owning-resource',
      'operator.istio.io/component',
      'app.kubernetes.io/name',
    ]) {
      assert.ok(ds['metadata'].labels[label] !== undefined, `DaemonSet label ${label}`);
    }
    assert.equal(ds['metadata'].labels['istio.io/rev'], 'default');
    assert.deepEqual(ds['spec'].updateStrategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 1 },
    });
    const pod = ds['spec'].template;
    assert.equal(pod.metadata.labels['sidecar.istio.io/inject'], 'false');
    assert.equal(pod.metadata.labels['istio.io/dataplane-mode'], 'none');
    assert.equal(pod.metadata.annotations['prometheus.io/scrape'], 'true');
    assert.equal(pod.metadata.annotations['prometheus.io/port'], '15014');
    assert.equal(pod.metadata.annotations['prometheus.io/path'], '/metrics');
    assert.equal(pod.spec.priorityClassName, 'system-node-critical');
    assert.equal(pod.spec.serviceAccountName, 'istio-cni');
    assert.equal(pod.spec.terminationGracePeriodSeconds, 30);
    assert.equal(pod.spec.hostNetwork, undefined);
    assert.deepEqual(pod.spec.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.deepEqual(pod.spec.tolerations, [
      { effect: 'NoSchedule', operator: 'Exists' },
      { key: 'CriticalAddonsOnly', operator: 'Exists' },
      { effect: 'NoExecute', operator: 'Exists' },
    ]);
    assert.equal(pod.spec.containers.length, 1);
  });

  test('container install-cni: command, probe, port, hardening', () => {
    const c = container('base');
    assert.equal(c['name'], 'install-cni');
    assert.match(c['image'], new RegExp(`/install-cni:${VERSION.replaceAll('.', '\\.')}$`));
    assert.deepEqual(c['command'], ['install-cni']);
    assert.deepEqual(c['args'], ['--log_output_level=info']);
    assert.deepEqual(c['ports'], [{ name: 'metrics', containerPort: 15014, protocol: 'TCP' }]);
    assert.deepEqual(c['readinessProbe'], { httpGet: { path: '/readyz', port: 8000 } });
    assert.equal(c['livenessProbe'], undefined);
    assert.deepEqual(c['envFrom'], [{ configMapRef: { name: 'istio-cni-config' } }]);
    const sc = c['securityContext'] as Obj;
    assert.equal(sc['privileged'], false);
    assert.equal(sc['runAsUser'], 0);
    assert.equal(sc['runAsGroup'], 0);
    assert.equal(sc['readOnlyRootFilesystem'], true);
    assert.deepEqual(sc['capabilities'], {
      drop: ['ALL'],
      add: ['NET_ADMIN', 'NET_RAW', 'SYS_PTRACE', 'SYS_ADMIN', 'DAC_OVERRIDE'],
    });
    const pod = find('base', 'DaemonSet', 'istio-cni-node')['spec'].template;
    assert.deepEqual(pod.spec.securityContext.seccompProfile, { type: 'RuntimeDefault' });
    assert.deepEqual(c['resources'], { requests: { cpu: '100m', memory: '100Mi' } });
  });

  test('env from the downward API', () => {
    const env = new Map((container('base')['env'] as Obj[]).map((e) => [e['name'], e]));
    assert.equal(env.get('REPAIR_NODE_NAME')?.['valueFrom'].fieldRef.fieldPath, 'spec.nodeName');
    assert.equal(env.get('NODE_NAME')?.['valueFrom'].fieldRef.fieldPath, 'spec.nodeName');
    assert.equal(env.get('POD_NAME')?.['valueFrom'].fieldRef.fieldPath, 'metadata.name');
    assert.equal(env.get('POD_NAMESPACE')?.['valueFrom'].fieldRef.fieldPath, 'metadata.namespace');
    assert.equal(env.get('REPAIR_SIDECAR_ANNOTATION')?.['value'], 'sidecar.istio.io/status');
  });

  test('host mounts: bin dir, net dir, run dir at the same path, /proc read-only', () => {
    const c = container('base');
    const mounts = Object.fromEntries((c['volumeMounts'] as Obj[]).map((m) => [m['name'], m]));
    assert.equal(mounts['cni-bin-dir']?.['mountPath'], '/host/opt/cni/bin');
    assert.equal(mounts['cni-net-dir']?.['mountPath'], '/host/etc/cni/net.d');
    assert.equal(mounts['cni-socket-dir']?.['mountPath'], '/var/run/istio-cni');
    assert.equal(mounts['cni-host-procfs']?.['mountPath'], '/host/proc');
    assert.equal(mounts['cni-host-procfs']?.['readOnly'], true);
    assert.equal(mounts['tmp']?.['mountPath'], '/tmp');
    assert.deepEqual(hostPaths('base'), {
      'cni-bin-dir': '/opt/cni/bin',
      'cni-net-dir': '/etc/cni/net.d',
      'cni-socket-dir': '/var/run/istio-cni',
      'cni-host-procfs': '/proc',
      'cni-netns-dir': '/var/run/netns',
    });
  });

  test('RBAC: istio-cni reads pods only (nodes and namespaces serve ambient and the optional taint); repair role bound to the service account', () => {
    assert.equal(find('base', 'ServiceAccount', 'istio-cni')['metadata'].namespace, 'istio-system');
    assert.deepEqual(find('base', 'ClusterRole', 'istio-cni')['rules'], [
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    ]);
    assert.deepEqual(find('base', 'ClusterRole', 'istio-cni-repair-role')['rules'], [
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['watch', 'get', 'list'] },
    ]);
    for (const [binding, role] of [
      ['istio-cni', 'istio-cni'],
      ['istio-cni-repair-rolebinding', 'istio-cni-repair-role'],
    ] as const) {
      const b = find('base', 'ClusterRoleBinding', binding);
      assert.equal(b['roleRef'].name, role);
      assert.deepEqual(b['subjects'], [
        { kind: 'ServiceAccount', name: 'istio-cni', namespace: 'istio-system' },
      ]);
    }
  });
});

describe('platform overlays use their profile paths (§4.1)', () => {
  const expected: Record<(typeof overlays)[number], Record<string, string>> = {
    k3s: {
      'cni-bin-dir': '/var/lib/rancher/k3s/data/cni',
      'cni-net-dir': '/var/lib/rancher/k3s/agent/etc/cni/net.d',
    },
    k3d: { 'cni-bin-dir': '/bin', 'cni-net-dir': '/var/lib/rancher/k3s/agent/etc/cni/net.d' },
    microk8s: {
      'cni-bin-dir': '/var/snap/microk8s/current/opt/cni/bin',
      'cni-net-dir': '/var/snap/microk8s/current/args/cni-network',
    },
    minikube: { 'cni-netns-dir': '/var/run/docker/netns' },
    gke: { 'cni-bin-dir': '/home/kubernetes/bin' },
    openshift: { 'cni-bin-dir': '/var/lib/cni/bin', 'cni-net-dir': '/etc/cni/multus/net.d' },
  };
  for (const overlay of overlays) {
    test(overlay, () => {
      assert.deepEqual(hostPaths(overlay), { ...hostPaths('base'), ...expected[overlay] });
    });
  }

  test('openshift: standalone istio-cni.conf, istio-system excluded, Multus NAD, spc_t, privileged SCC', () => {
    const data = find('openshift', 'ConfigMap', 'istio-cni-config')['data'] as Record<string, string>;
    assert.equal(data['CHAINED_CNI_PLUGIN'], 'false');
    assert.equal(data['CNI_CONF_NAME'], 'istio-cni.conf');
    // As the chart's profile-openshift.yaml (excludeNamespaces: istio-system, kube-system).
    assert.equal(data['EXCLUDE_NAMESPACES'], 'istio-system,kube-system');
    const nad = find('openshift', 'NetworkAttachmentDefinition', 'istio-cni');
    assert.equal(nad['metadata'].namespace, 'default');
    assert.deepEqual(container('openshift')['securityContext'].seLinuxOptions, { type: 'spc_t' });
    assert.deepEqual(find('openshift', 'ClusterRole', 'istio-cni')['rules'].at(-1), {
      apiGroups: ['security.openshift.io'],
      resources: ['securitycontextconstraints'],
      resourceNames: ['privileged'],
      verbs: ['use'],
    });
  });

  test('gke: ResourceQuota for system-node-critical pods', () => {
    const quota = find('gke', 'ResourceQuota', 'istio-cni-resource-quota');
    assert.equal(quota['spec'].hard.pods, '5000');
    assert.deepEqual(quota['spec'].scopeSelector.matchExpressions[0].values, ['system-node-critical']);
  });

  test('optional node-taint component: taint key set, agent may patch nodes', () => {
    const data = find('node-taint', 'ConfigMap', 'istio-cni-config')['data'] as Record<string, string>;
    assert.equal(data['CNI_NOT_READY_TAINT_KEY'], 'cni.istio.io/not-ready');
    const rules = find('node-taint', 'ClusterRole', 'istio-cni-taint')['rules'] as Obj[];
    // Only what the agent sends: a GET and a merge-patch of its own node.
    assert.deepEqual(rules, [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] }]);
    assert.equal(
      find('node-taint', 'ClusterRoleBinding', 'istio-cni-taint')['roleRef'].name,
      'istio-cni-taint',
    );
  });
});

describe("repair modes: each optional component switches the mode and grants exactly the chart's extra verbs", () => {
  const baseRules = (): Obj[] => find('base', 'ClusterRole', 'istio-cni-repair-role')['rules'] as Obj[];
  for (const [component, flag, extra] of [
    ['repair-delete-pods', 'REPAIR_DELETE_PODS', { apiGroups: [''], resources: ['pods'], verbs: ['delete'] }],
    [
      'repair-label-pods',
      'REPAIR_LABEL_PODS',
      { apiGroups: [''], resources: ['pods/status'], verbs: ['patch', 'update'] },
    ],
  ] as const) {
    test(component, () => {
      const data = find(component, 'ConfigMap', 'istio-cni-config')['data'] as Record<string, string>;
      assert.equal(data[flag], 'true');
      assert.equal(data['REPAIR_REPAIR_PODS'], 'false');
      assert.deepEqual(find(component, 'ClusterRole', 'istio-cni-repair-role')['rules'], [
        ...baseRules(),
        extra,
      ]);
      // As the chart: the host's /proc is mounted only for in-place repair, and only that volume goes.
      const procMounts = (name: string) => {
        const spec = find(name, 'DaemonSet', 'istio-cni-node')['spec']['template']['spec'];
        return {
          volumes: (spec['volumes'] as Obj[]).map((v) => v['name']),
          mounts: (spec['containers'][0]['volumeMounts'] as Obj[]).map((m) => m['mountPath']),
        };
      };
      const base = procMounts('base');
      assert.ok(base.volumes.includes('cni-host-procfs') && base.mounts.includes('/host/proc'));
      assert.deepEqual(procMounts(component), {
        volumes: base.volumes.filter((v) => v !== 'cni-host-procfs'),
        mounts: base.mounts.filter((m) => m !== '/host/proc'),
      });
    });
  }
  test('base: in-place repair needs no pod write verbs', () => {
    const data = find('base', 'ConfigMap', 'istio-cni-config')['data'] as Record<string, string>;
    assert.equal(data['REPAIR_REPAIR_PODS'], 'true');
    assert.ok(
      baseRules().every(
        (r) =>
          !r['resources'].some((res: string) => res.startsWith('pods')) ||
          r['verbs'].every((v: string) => ['watch', 'get', 'list'].includes(v)),
      ),
    );
  });
});

describe('manifest env and the agent settings cannot drift', () => {
  const settings = new Map(SETTINGS.map((s) => [s.env, s]));

  // Everything the upstream chart sets in the container (env + ConfigMap, §4.1/§4.2) with default values.
  const chartEnv = [
    'REPAIR_NODE_NAME',
    'REPAIR_RUN_AS_DAEMON',
    'REPAIR_SIDECAR_ANNOTATION',
    'ALLOW_SWITCH_TO_HOST_NS',
    'NODE_NAME',
    'GOMEMLIMIT',
    'POD_NAME',
    'POD_NAMESPACE',
    'CURRENT_AGENT_VERSION',
    'AMBIENT_ENABLED',
    'AMBIENT_ENABLEMENT_SELECTOR',
    'AMBIENT_DNS_CAPTURE',
    'AMBIENT_IPV6',
    'AMBIENT_RECONCILE_POD_RULES_ON_STARTUP',
    'ENABLE_AMBIENT_DETECTION_RETRY',
    'ISTIO_OWNED_CNI_CONFIG',
    'CHAINED_CNI_PLUGIN',
    'EXCLUDE_NAMESPACES',
    'REPAIR_ENABLED',
    'REPAIR_LABEL_PODS',
    'REPAIR_DELETE_PODS',
    'REPAIR_REPAIR_PODS',
    'REPAIR_INIT_CONTAINER_NAME',
    'REPAIR_BROKEN_POD_LABEL_KEY',
    'REPAIR_BROKEN_POD_LABEL_VALUE',
    'NATIVE_NFTABLES',
  ];
  // Chart keys no agent reads (upstream code ignores them too), or that only concern ambient / the Go runtime.
  const notRead: Record<string, string> = {
    REPAIR_RUN_AS_DAEMON: 'never read upstream (§1.1)',
    CURRENT_AGENT_VERSION: 'never read upstream (§1.1)',
    ALLOW_SWITCH_TO_HOST_NS: 'ambient host rules only; ambient is not supported',
    GOMEMLIMIT: 'Go runtime memory limit; meaningless for this agent',
    AMBIENT_ENABLEMENT_SELECTOR: 'ambient only; not supported',
  };

  function manifestEnv(name: string): Map<string, string | undefined> {
    const env = new Map<string, string | undefined>();
    const data = find(name, 'ConfigMap', 'istio-cni-config')['data'] as Record<string, string>;
    for (const [key, value] of Object.entries(data)) env.set(key, value);
    for (const e of container(name)['env'] as Obj[]) env.set(e['name'], e['value']);
    return env;
  }

  for (const name of Object.keys(targets)) {
    test(`${name}: every env var set is a known setting with a well-formed value`, () => {
      for (const [key, value] of manifestEnv(name)) {
        const setting = settings.get(key);
        assert.ok(setting !== undefined, `${key} is not a setting of src/config/settings.ts`);
        if (value === undefined) continue;
        if (setting.kind === 'bool')
          assert.match(value, /^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/, key);
        if (setting.kind === 'int') assert.match(value, /^-?\d+$/, key);
      }
    });
  }

  test('every chart env var the agent reads is set by the base with the chart value source', () => {
    const env = manifestEnv('base');
    for (const key of chartEnv) {
      if (key in notRead) {
        assert.ok(!env.has(key), `${key}: ${notRead[key]}`);
        continue;
      }
      assert.ok(settings.has(key), `chart sets ${key} but src/config/settings.ts does not know it`);
      assert.ok(env.has(key), `the chart sets ${key}; manifests/ must too`);
    }
    const chartConfigMapValues: Record<string, string> = {
      EXCLUDE_NAMESPACES: 'kube-system',
      REPAIR_REPAIR_PODS: 'true',
      REPAIR_ENABLED: 'true',
      CHAINED_CNI_PLUGIN: 'true',
      AMBIENT_ENABLED: 'false',
      NATIVE_NFTABLES: 'false',
    };
    for (const [key, value] of Object.entries(chartConfigMapValues)) assert.equal(env.get(key), value, key);
  });
});
