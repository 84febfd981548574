// The installer loop in-process against real temp dirs (fast; the spawned-process tests are in
// test/integration/agent*.test.ts). Covers the §5.2 fixture cases and the bad-input list.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  existsSync,
  renameSync,
  watch,
  symlinkSync,
  lstatSync,
  chmodSync,
} from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { loadAgentConfig, type AgentConfig } from '../../../src/config/load.ts';
import {
  Installer,
  cleanupNode,
  removeEntryFromFile,
  type InstallerDeps,
} from '../../../src/installer/agent.ts';
import { createNodeFs } from '../../../src/sys/fs.ts';
import { PrometheusMetrics } from '../../../src/sys/metrics.ts';
import { watchDirectory } from '../../../src/sys/watch.ts';
import type { HostTree } from '../../support/host-tree.ts';
import type { AgentFs } from '../../../src/installer/fs-port.ts';
import { hostTreeEnv, makeHostTree } from '../../support/host-tree.ts';

const TESTDATA = path.resolve(import.meta.dirname, '../../../../shared/conformance/istio-install-testdata');

const CALICO = JSON.stringify({
  name: 'k8s-pod-network',
  cniVersion: '0.3.1',
  plugins: [
    {
      type: 'calico',
      log_level: 'info',
      datastore_type: 'kubernetes',
      ipam: { type: 'calico-ipam' },
      policy: { type: 'k8s' },
    },
    { type: 'portmap', snat: true, capabilities: { portMappings: true } },
  ],
});
const MINIKUBE = JSON.stringify({
  name: 'rkt.kubernetes.io',
  type: 'bridge',
  bridge: 'mybridge',
  ipam: { type: 'host-local', subnet: '10.1.0.0/16' },
});
const BAD_MINIKUBE = JSON.stringify({ name: 'rkt.kubernetes.io', bridge: 'mybridge' });
const NON_JSON = '[1, 2]';
const NONAME = JSON.stringify({ cniVersion: '0.3.1', plugins: [{ type: 'calico' }] });
const NOPLUGINS = JSON.stringify({
  name: 'k8s-pod-network',
  cniVersion: '0.3.1',
  pugins: [{ type: 'calico' }],
});

const trees: HostTree[] = [];
afterEach(() => {
  for (const tree of trees.splice(0)) tree.remove();
});

function makeTree(): HostTree {
  const tree = makeHostTree('ic-unit-', {
    sources: { 'istio-cni': 'plugin-v1', 'istio-iptables': 'iptables' },
    token: 'token-foo',
    ca: readFileSync(`${TESTDATA}/kube-ca.crt`),
  });
  trees.push(tree);
  return tree;
}

function configFor(tree: HostTree, env: Record<string, string> = {}): AgentConfig {
  return loadAgentConfig({
    env: {
      KUBERNETES_SERVICE_HOST: '10.110.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      ...hostTreeEnv(tree),
      EXCLUDE_NAMESPACES: 'istio-system',
      REPAIR_ENABLED: 'false',
      ...env,
    },
    flags: {},
    mode: 'agent',
  });
}

interface Running {
  installer: Installer;
  metrics: PrometheusMetrics;
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
  done: Promise<void>;
}

function start(
  config: AgentConfig,
  fs: AgentFs = createNodeFs(),
  timing: Pick<InstallerDeps, 'retryInitialMs' | 'halfWrittenGraceMs' | 'now'> = {},
): Running {
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const metrics = new PrometheusMetrics();
  const installer = new Installer(config, {
    fs,
    watchDir: watchDirectory,
    logger,
    metrics,
    ...timing,
  });
  current = installer;
  const controller = new AbortController();
  const done = installer.run(controller.signal);
  return {
    installer,
    metrics,
    logs,
    done,
    async stop() {
      controller.abort();
      await done;
    },
  };
}

let current: Installer | undefined;

/** Resolves when `check()` holds, re-checking on every change in `dir` and after every reconcile pass of the
 * running installer (no polling). */
async function until(dir: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  if (check()) return;
  await new Promise<void>((resolve, reject) => {
    const watcher = watch(dir, () => {
      if (check()) finish();
    });
    const unsubscribe = current?.subscribe(() => {
      if (check()) finish();
    });
    const timer = setTimeout(() => {
      watcher.close();
      unsubscribe?.();
      reject(new Error(`timed out waiting in ${dir}`));
    }, timeoutMs);
    function finish(): void {
      clearTimeout(timer);
      watcher.close();
      unsubscribe?.();
      resolve();
    }
    if (check()) finish();
  });
}

const read = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8') : '');
const hasIstio = (file: string): boolean => read(file).includes('"type": "istio-cni"');

async function untilReady(running: Running, tree: HostTree, file: string): Promise<void> {
  await until(tree.net, () => hasIstio(file) && running.installer.state.ready);
}

/** An agent on a tree whose net dir holds one Calico conflist, once it has merged into it (stopped if it never
 * does). */
async function startedOnCalico(): Promise<{ tree: HostTree; file: string; running: Running }> {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const running = start(configFor(tree));
  try {
    await untilReady(running, tree, file);
  } catch (error) {
    await running.stop();
    throw error;
  }
  return { tree, file, running };
}

/** The entry the agent merges with configFor's settings, written out here rather than built by the code under
 * test (§1.5.3). */
function istioEntry(tree: HostTree): Record<string, unknown> {
  return {
    name: 'istio-cni',
    type: 'istio-cni',
    ipam: {},
    dns: {},
    plugin_log_level: 'info',
    cni_agent_run_dir: tree.run,
    ambient_enabled: false,
    enablement_selectors: [],
    exclude_namespaces: ['istio-system'],
    pod_namespace: '',
    native_nftables: false,
    enable_ambient_detection_retry: false,
  };
}

/** The primary file a §5.2 case merges into, as a list without our entry: a .conflist as its owner wrote it, a
 * .conf converted as upstream converts it (a list named k8s-pod-network at 0.3.1 holding the plugin without its
 * cniVersion). This is also what cleanup must leave. */
function primaryAsList(
  files: readonly [string, string][],
  result: string,
): { plugins: unknown[]; [key: string]: unknown } {
  const source = files.find(([name]) => name === result) ?? files.find(([name]) => `${name}list` === result);
  assert.ok(source, `no fixture for ${result}`);
  const parsed = JSON.parse(source[1]) as Record<string, unknown>;
  if (Array.isArray(parsed['plugins'])) return parsed as { plugins: unknown[] };
  const { cniVersion: _dropped, ...plugin } = parsed;
  return { cniVersion: '0.3.1', name: 'k8s-pod-network', plugins: [plugin] };
}

describe('§5.2 cases: which file gets our entry', () => {
  const cases: {
    name: string;
    files: [string, string][];
    confName?: string;
    result: string;
    /** The file libcni loads first instead of the named one: upstream's warning names it. */
    preemptedBy?: string;
  }[] = [
    {
      name: 'pre-plugins .conflist named',
      files: [['00-calico.conflist', CALICO]],
      confName: '00-calico.conflist',
      result: '00-calico.conflist',
    },
    {
      name: '.conf named → converted',
      files: [['00-minikube_cni.conf', MINIKUBE]],
      confName: '00-minikube_cni.conf',
      result: '00-minikube_cni.conflist',
    },
    {
      name: 'first file calico',
      files: [
        ['00-calico.conflist', CALICO],
        ['01-minikube_cni.conf', MINIKUBE],
      ],
      result: '00-calico.conflist',
    },
    {
      name: 'first file minikube',
      files: [
        ['00-minikube_cni.conf', MINIKUBE],
        ['01-calico.conflist', CALICO],
      ],
      result: '00-minikube_cni.conflist',
    },
    {
      name: 'skip non-JSON → .conf',
      files: [
        ['00-non_json.conf', NON_JSON],
        ['01-minikube_cni.conf', MINIKUBE],
        ['02-calico.conflist', CALICO],
      ],
      result: '01-minikube_cni.conflist',
    },
    {
      name: 'skip non-JSON → .conflist',
      files: [
        ['00-non_json.conf', NON_JSON],
        ['01-calico.conflist', CALICO],
        ['02-minikube_cni.conf', MINIKUBE],
      ],
      result: '01-calico.conflist',
    },
    {
      name: 'skip invalid .conf',
      files: [
        ['00-bad_minikube_cni.conf', BAD_MINIKUBE],
        ['01-minikube_cni.conf', MINIKUBE],
        ['02-calico.conflist', CALICO],
      ],
      result: '01-minikube_cni.conflist',
    },
    {
      name: 'skip invalid .conflists',
      files: [
        ['00-noname.conflist', NONAME],
        ['01-noplugins.conflist', NOPLUGINS],
        ['02-calico.conflist', CALICO],
        ['03-minikube_cni.conf', MINIKUBE],
      ],
      result: '02-calico.conflist',
    },
    {
      name: 'skip invalid .conf → .conflist',
      files: [
        ['00-bad_minikube_cni.conf', BAD_MINIKUBE],
        ['01-calico.conflist', CALICO],
        ['02-minikube_cni.conf', MINIKUBE],
      ],
      result: '01-calico.conflist',
    },
    {
      name: 'skip invalid .conflists → .conf',
      files: [
        ['00-noname.conflist', NONAME],
        ['01-noplugins.conflist', NOPLUGINS],
        ['02-minikube_cni.conf', MINIKUBE],
        ['03-calico.conflist', CALICO],
      ],
      result: '02-minikube_cni.conflist',
    },
    {
      name: 'a named file wins over a valid one that sorts first (§5.1 TestCheckInstall)',
      files: [
        ['00-minikube_cni.conf', MINIKUBE],
        ['10-calico.conflist', CALICO],
      ],
      confName: '10-calico.conflist',
      result: '10-calico.conflist',
      preemptedBy: '00-minikube_cni.conf',
    },
    {
      name: 'a named file with no conf extension is used as named (§5.1 undetectable.file)',
      files: [['undetectable.file', CALICO]],
      confName: 'undetectable.file',
      result: 'undetectable.file',
    },
    {
      name: 'name points to missing .conf, .conflist exists',
      files: [['00-calico.conflist', CALICO]],
      confName: '00-calico.conf',
      result: '00-calico.conflist',
    },
    {
      name: 'name points to missing .conflist, .conf exists',
      files: [['00-minikube_cni.conf', MINIKUBE]],
      confName: '00-minikube_cni.conflist',
      result: '00-minikube_cni.conflist',
    },
    {
      name: 'half-written and directory "conflists" are skipped',
      files: [
        ['00-half.conflist', '{"name":"x","plugins":[{"type":"a"'],
        ['01-calico.conflist', CALICO],
      ],
      result: '01-calico.conflist',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      let expectedClean: { plugins: unknown[]; [key: string]: unknown } | undefined;
      const tree = makeTree();
      mkdirSync(`${tree.net}/000-dir.conflist`);
      for (const [name, content] of c.files) writeFileSync(`${tree.net}/${name}`, content, { mode: 0o644 });
      const running = start(configFor(tree, c.confName === undefined ? {} : { CNI_CONF_NAME: c.confName }));
      try {
        await untilReady(running, tree, `${tree.net}/${c.result}`);
        assert.equal(running.installer.state.trackedConfig, `${tree.net}/${c.result}`);
        assert.equal(statSync(`${tree.net}/${c.result}`).mode & 0o777, 0o644, 'mode kept');
        const doc = JSON.parse(read(`${tree.net}/${c.result}`)) as { plugins: { type: string }[] };
        expectedClean = primaryAsList(c.files, c.result);
        const merged = { ...expectedClean, plugins: [...expectedClean.plugins, istioEntry(tree)] };
        assert.deepEqual(doc, merged);
        // Our entry deleted by someone else: restored.
        writeFileSync(`${tree.net}/${c.result}.tmp.test`, JSON.stringify(expectedClean));
        renameSync(`${tree.net}/${c.result}.tmp.test`, `${tree.net}/${c.result}`);
        await untilReady(running, tree, `${tree.net}/${c.result}`);
        assert.deepEqual(JSON.parse(read(`${tree.net}/${c.result}`)), merged);
        assert.equal(existsSync(`${tree.bin}/istio-cni`), true);
        assert.equal(statSync(`${tree.bin}/istio-cni`).mode & 0o777, 0o755);
        assert.equal(readdirSync(tree.net).filter((n) => n.includes('.tmp')).length, 0);
        assert.deepEqual(
          running.logs
            .filter((l) => String(l['msg']).includes('preempted'))
            .map((l) => [l['level'], l['msg']]),
          c.preemptedBy === undefined
            ? []
            : [[40, `CNI config file ${tree.net}/${c.result} preempted by ${tree.net}/${c.preemptedBy}`]],
        );
        if (c.result.endsWith('.conflist') && c.files.some(([n]) => `${n}list` === c.result)) {
          assert.equal(
            existsSync(`${tree.net}/${c.result.slice(0, -4)}`),
            false,
            '.conf removed after conversion',
          );
        }
      } finally {
        await running.stop();
      }
      await cleanupNode(
        configFor(tree),
        createNodeFs(),
        pino({ level: 'silent' }),
        running.installer.state.trackedConfig,
      );
      // The file stays, a .conf stays converted, and only our entry is gone.
      assert.deepEqual(JSON.parse(read(`${tree.net}/${c.result}`)), expectedClean);
      assert.equal(readdirSync(tree.net).filter((n) => n.includes('.tmp')).length, 0);
      assert.equal(existsSync(`${tree.bin}/istio-cni`), false);
      assert.equal(existsSync(`${tree.bin}/istio-iptables`), true, 'only istio-cni is removed');
      assert.equal(existsSync(`${tree.run}/istio-cni-kubeconfig`), false);
    });
  }
});

test('a new valid file sorting before ours (no CNI_CONF_NAME): our entry moves to it and leaves the old one (§8.1 fixed)', async () => {
  const { tree, file, running } = await startedOnCalico();
  try {
    const first = `${tree.net}/05-bridge.conflist`;
    writeFileSync(
      `${first}.tmp.1`,
      JSON.stringify({ name: 'bridge-net', cniVersion: '0.3.1', plugins: [{ type: 'bridge' }] }),
    );
    renameSync(`${first}.tmp.1`, first);
    await until(
      tree.net,
      () => hasIstio(first) && !hasIstio(file) && running.installer.state.trackedConfig === first,
    );
    assert.deepEqual(JSON.parse(read(file)), JSON.parse(CALICO), 'the old file stays, as its owner wrote it');
    assert.ok(
      running.logs.some(
        (l) => l['msg'] === `CNI config file ${file} preempted by ${first}; moving our entry`,
      ),
    );
  } finally {
    await running.stop();
  }
});

test('no config yet: waits (not ready, nothing written), then installs when the primary CNI writes one', async () => {
  const tree = makeTree();
  const running = start(configFor(tree));
  try {
    await until(tree.bin, () =>
      running.logs.some((l) => String(l['msg']).includes('waiting for the primary CNI')),
    );
    assert.equal(existsSync(`${tree.bin}/istio-cni`), true);
    assert.equal(running.installer.state.ready, false);
    assert.deepEqual(readdirSync(tree.net), []);
    writeFileSync(`${tree.net}/calico.conflist.tmp.1`, CALICO);
    renameSync(`${tree.net}/calico.conflist.tmp.1`, `${tree.net}/calico.conflist`);
    await untilReady(running, tree, `${tree.net}/calico.conflist`);
  } finally {
    await running.stop();
  }
});

test('named file created late with list content under a .conf name → .conflist', async () => {
  const tree = makeTree();
  writeFileSync(`${tree.net}/00-other.conflist`, CALICO);
  const running = start(configFor(tree, { CNI_CONF_NAME: 'missing_initially.conf' }));
  try {
    // While the named file is missing nothing is written, not even into another file (upstream: timeout, no file).
    await until(tree.bin, () =>
      running.logs.some((l) => String(l['msg']).includes('(CNI_CONF_NAME) does not exist yet')),
    );
    assert.equal(running.installer.state.ready, false);
    assert.deepEqual(readdirSync(tree.net), ['00-other.conflist']);
    assert.equal(read(`${tree.net}/00-other.conflist`), CALICO);
    writeFileSync(`${tree.net}/missing_initially.conf`, CALICO);
    await untilReady(running, tree, `${tree.net}/missing_initially.conflist`);
    assert.equal(existsSync(`${tree.net}/missing_initially.conf`), false);
  } finally {
    await running.stop();
  }
});

test('standalone mode writes YYY-istio-cni.conf (0600), restores it when deleted or broken; cleanup deletes it, the kubeconfig and the binary', async () => {
  const tree = makeTree();
  const config = configFor(tree, { CHAINED_CNI_PLUGIN: 'false' });
  const running = start(config);
  const file = `${tree.net}/YYY-istio-cni.conf`;
  try {
    await until(tree.net, () => existsSync(file) && running.installer.state.ready);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const installed = read(file);
    rmSync(file);
    await until(tree.net, () => read(file) === installed);
    // Broken in place (another writer's content under our name): not valid (§1.5.4 step 6), so written again.
    writeFileSync(file, JSON.stringify({ cniVersion: '0.3.1', name: 'istio-cni', type: 'bridge' }));
    await until(tree.net, () => read(file) === installed);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(running.installer.state.ready, true);
  } finally {
    await running.stop();
  }
  await cleanupNode(config, createNodeFs(), pino({ level: 'silent' }), file);
  assert.equal(existsSync(file), false);
  assert.equal(existsSync(`${tree.run}/istio-cni-kubeconfig`), false);
  assert.equal(existsSync(`${tree.bin}/istio-cni`), false);
});

test("standalone with CNI_CONF_NAME naming the node's primary conflist: left as it is, not ready, never deleted", async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const config = configFor(tree, { CHAINED_CNI_PLUGIN: 'false', CNI_CONF_NAME: '10-calico.conflist' });
  const running = start(config);
  try {
    await until(tree.net, () =>
      running.logs.some((l) => String(l['msg']).includes('standalone mode will not replace it')),
    );
    assert.equal(running.installer.state.ready, false);
    assert.equal(read(file), CALICO);
  } finally {
    await running.stop();
  }
  await cleanupNode(config, createNodeFs(), pino({ level: 'silent' }), file);
  assert.equal(read(file), CALICO);
});

test('standalone with CNI_CONF_NAME writes that file, byte-identical to istio-cni.conf but for the run dir and level', async () => {
  const tree = makeTree();
  const config = configFor(tree, {
    CHAINED_CNI_PLUGIN: 'false',
    CNI_CONF_NAME: 'user-defined.conf',
    EXCLUDE_NAMESPACES: '',
    POD_NAMESPACE: 'my-namespace',
  });
  const running = start(config);
  const file = `${tree.net}/user-defined.conf`;
  try {
    await until(tree.net, () => existsSync(file) && running.installer.state.ready);
    const golden = readFileSync(`${TESTDATA}/istio-cni.conf`, 'utf8')
      .replace('"/path/to/kubeconfig"', JSON.stringify(tree.run))
      .replace('"plugin_log_level": "debug"', '"plugin_log_level": "info"');
    assert.equal(read(file), golden);
    assert.deepEqual(readdirSync(tree.net), ['user-defined.conf']);
  } finally {
    await running.stop();
  }
});

test('drift: another agent drops our entry → restored; run twice is idempotent (no rewrite when valid)', async () => {
  const { tree, file, running } = await startedOnCalico();
  try {
    const installed = read(file);
    for (let i = 0; i < 3; i++) {
      writeFileSync(`${file}.tmp.x`, CALICO);
      renameSync(`${file}.tmp.x`, file);
      await until(tree.net, () => hasIstio(file));
      assert.equal(read(file), installed);
    }
    // A valid file is not rewritten on unrelated events.
    const stable = statSync(file).ino;
    // The net-dir events start a pass; wait for it to finish, then check it left the file alone.
    const pass = new Promise<void>((resolve) => {
      const unsubscribe = running.installer.subscribe(() => {
        unsubscribe();
        resolve();
      });
    });
    writeFileSync(`${tree.net}/unrelated.txt`, 'x');
    writeFileSync(`${tree.net}/unrelated.txt`, 'y');
    await pass;
    assert.equal(running.installer.state.ready, true);
    assert.equal(statSync(file).ino, stable);
    assert.ok((running.metrics.value('istio_cni_installs_total', { result: 'SUCCESS' }) ?? 0) >= 1);
  } finally {
    await running.stop();
  }
});

test('drift variants: a plugin appended after ours, an old entry with other settings; the primary keeps its own mode; not ready once stopped', async () => {
  const { tree, file, running } = await startedOnCalico();
  try {
    const installed = read(file);
    chmodSync(file, 0o640);
    const types = () =>
      (JSON.parse(read(file)) as { plugins: { type: string }[] }).plugins.map((p) => p.type);
    // Another agent appends its plugin after ours: ours is moved back to the end.
    const appended = JSON.parse(installed) as { plugins: unknown[] };
    appended.plugins.push({ type: 'bandwidth' });
    writeFileSync(`${file}.tmp.x`, JSON.stringify(appended), { mode: 0o640 });
    renameSync(`${file}.tmp.x`, file);
    await until(tree.net, () => types().join() === 'calico,portmap,bandwidth,istio-cni');
    assert.equal(statSync(file).mode & 0o777, 0o640);
    // An entry an older version wrote (other settings): replaced by the current one.
    const old = JSON.parse(CALICO) as { plugins: unknown[] };
    old.plugins.push({
      type: 'istio-cni',
      log_level: 'debug',
      kubeconfig: '/etc/cni/net.d/ZZZ-istio-cni-kubeconfig',
    });
    writeFileSync(`${file}.tmp.x`, JSON.stringify(old), { mode: 0o640 });
    renameSync(`${file}.tmp.x`, file);
    await until(tree.net, () => read(file) === installed);
    assert.equal(statSync(file).mode & 0o777, 0o640);
  } finally {
    await running.stop();
  }
  // §1.3.5: not ready on every return path.
  assert.equal(running.installer.state.ready, false);
});

test('a chmod of the kubeconfig (it holds the token) or of the standalone config is put back at the next event', async () => {
  const { tree, running } = await startedOnCalico();
  const kubeconfig = `${tree.run}/istio-cni-kubeconfig`;
  try {
    chmodSync(kubeconfig, 0o644);
    await until(tree.run, () => (statSync(kubeconfig).mode & 0o777) === 0o600);
  } finally {
    await running.stop();
  }
  const standaloneTree = makeTree();
  const standalone = start(configFor(standaloneTree, { CHAINED_CNI_PLUGIN: 'false' }));
  const file = `${standaloneTree.net}/YYY-istio-cni.conf`;
  try {
    await until(standaloneTree.net, () => existsSync(file) && standalone.installer.state.ready);
    chmodSync(file, 0o644);
    await until(standaloneTree.net, () => (statSync(file).mode & 0o777) === 0o600);
  } finally {
    await standalone.stop();
  }
});

test('a failed pass is retried by its back-off alone when no file event comes', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const realFs = createNodeFs();
  let failures = 2;
  const fs: AgentFs = {
    ...realFs,
    copyFileAtomic: (from, to) =>
      failures-- > 0
        ? Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }))
        : realFs.copyFileAtomic(from, to),
  };
  // Nothing was installed yet, so the failing pass writes nothing that could wake the next one.
  const running = start(configFor(tree), fs, { retryInitialMs: 20 });
  try {
    await untilReady(running, tree, file);
  } finally {
    await running.stop();
  }
});

test('a conflist whose only plugin is istio-cni (a leftover) is not a merge target: untouched until it has another', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-named.conflist`;
  const lonely = JSON.stringify({
    cniVersion: '0.3.1',
    name: 'k8s-pod-network',
    plugins: [{ type: 'istio-cni' }],
  });
  writeFileSync(file, lonely);
  const running = start(configFor(tree, { CNI_CONF_NAME: '10-named.conflist' }));
  try {
    await until(tree.net, () => logged(running, /10-named\.conflist: it has no plugin besides istio-cni/));
    assert.equal(read(file), lonely);
    assert.equal(running.installer.state.ready, false);
    writeFileSync(file, CALICO);
    await untilReady(running, tree, file);
  } finally {
    await running.stop();
  }
});

test('a CA file outside the service-account dir (KUBE_CA_FILE) is watched: its rotation reaches the kubeconfig', async () => {
  const { tree, file } = await settledTree();
  const caDir = path.join(tree.root, 'ca');
  mkdirSync(caDir);
  const ca = readFileSync(`${TESTDATA}/kube-ca.crt`, 'utf8');
  writeFileSync(`${caDir}/ca.crt`, ca);
  const running = start(configFor(tree, { KUBE_CA_FILE: `${caDir}/ca.crt` }));
  const kubeconfig = `${tree.run}/istio-cni-kubeconfig`;
  const caData = () => /certificate-authority-data: (\S+)/.exec(read(kubeconfig))?.[1];
  try {
    await untilReady(running, tree, file);
    assert.equal(caData(), Buffer.from(ca).toString('base64'));
    const rotated = `${ca}\n`;
    writeFileSync(`${caDir}/ca.crt.new`, rotated);
    renameSync(`${caDir}/ca.crt.new`, `${caDir}/ca.crt`);
    await until(tree.run, () => caData() === Buffer.from(rotated).toString('base64'));
  } finally {
    await running.stop();
  }
});

test('cleanup with a tracked config it cannot parse stops there: the kubeconfig and binary stay, so the config never names a plugin that is gone; also when the readable part does not name istio-cni (a file cut short)', async () => {
  for (const broken of [
    '{"name": "k8s-pod-network", "plugins": [{"type": "istio-cni"}',
    '{"name": "k8s-pod-network", "plugins": [{"type": "calico"}, ',
  ]) {
    const { tree, file } = await settledTree();
    writeFileSync(file, broken);
    await assert.rejects(
      cleanupNode(configFor(tree), createNodeFs(), pino({ level: 'silent' }), file),
      /not valid JSON/,
    );
    assert.equal(existsSync(`${tree.run}/istio-cni-kubeconfig`), true, broken);
    assert.equal(existsSync(`${tree.bin}/istio-cni`), true, broken);
  }
});

test('uninstall (no tracked config) stops at any config it cannot parse that names istio-cni; one that does not, or a dangling link, is skipped', async () => {
  const { tree, file } = await settledTree();
  const other = `${tree.net}/20-other.conflist`;
  writeFileSync(`${tree.net}/30-broken.conf`, '{"name": "x", "type": "bridge"');
  symlinkSync(`${tree.root}/gone.conflist`, `${tree.net}/40-dangling.conflist`);
  writeFileSync(other, '{"name": "other", "plugins": [{"type": "istio-cni", "kubernetes": {');
  await assert.rejects(
    cleanupNode(configFor(tree), createNodeFs(), pino({ level: 'silent' })),
    /not valid JSON/,
  );
  // Taking the entry out of the configs it could parse is always safe; the kubeconfig and the binary stay.
  assert.equal(read(file).includes('istio-cni'), false);
  assert.equal(existsSync(`${tree.run}/istio-cni-kubeconfig`), true);
  assert.equal(existsSync(`${tree.bin}/istio-cni`), true);
  // Once its owner has written it whole, the same uninstall goes through.
  writeFileSync(other, '{"name": "other", "cniVersion": "0.3.1", "plugins": [{"type": "bridge"}]}');
  const removed = await cleanupNode(configFor(tree), createNodeFs(), pino({ level: 'silent' }));
  assert.ok(removed.includes(`${tree.bin}/istio-cni`), removed.join(', '));
  assert.equal(existsSync(`${tree.bin}/istio-cni`), false);
});

test('token rotation (..data symlink swap) rewrites the kubeconfig; binary deleted or replaced is re-copied', async () => {
  const tree = makeTree();
  writeFileSync(`${tree.net}/10-calico.conflist`, CALICO);
  const running = start(configFor(tree));
  const kubeconfig = `${tree.run}/istio-cni-kubeconfig`;
  try {
    await untilReady(running, tree, `${tree.net}/10-calico.conflist`);
    assert.match(read(kubeconfig), /token: token-foo/);
    assert.equal(statSync(kubeconfig).mode & 0o777, 0o600);
    writeFileSync(`${tree.sa}/token.new`, 'token-bar');
    renameSync(`${tree.sa}/token.new`, `${tree.sa}/token`);
    await until(tree.run, () => read(kubeconfig).includes('token: token-bar'));
    rmSync(`${tree.bin}/istio-cni`);
    await until(tree.bin, () => read(`${tree.bin}/istio-cni`) === 'plugin-v1');
    writeFileSync(`${tree.bin}/istio-cni.x`, 'evil');
    renameSync(`${tree.bin}/istio-cni.x`, `${tree.bin}/istio-cni`);
    await until(tree.bin, () => read(`${tree.bin}/istio-cni`) === 'plugin-v1');
  } finally {
    await running.stop();
  }
});

test('bad inputs: missing token → not ready with the setting named; stale temp files cleaned; unparsable named file untouched', async () => {
  const tree = makeTree();
  rmSync(`${tree.sa}/token`);
  writeFileSync(`${tree.bin}/istio-cni.tmp.12345`, 'stale');
  // Left by a crash mid-write: ours (removed), and names that only look alike (kept).
  const staleTemps = [
    `${tree.run}/istio-cni-kubeconfig.tmp.0123456789ab`,
    `${tree.net}/10-named.conflist.tmp.a1b2c3d4e5f6`,
  ];
  const notOurs = [`${tree.net}/10-named.conflist.tmp.other`, `${tree.net}/10-named.conflist.bak`];
  for (const file of [...staleTemps, ...notOurs]) writeFileSync(file, 'stale');
  const half = '{"name":"x","plugins":[{"type":"a"';
  writeFileSync(`${tree.net}/10-named.conflist`, half);
  const running = start(configFor(tree, { CNI_CONF_NAME: '10-named.conflist' }));
  try {
    await until(
      tree.bin,
      () => existsSync(`${tree.bin}/istio-cni`) && !existsSync(`${tree.bin}/istio-cni.tmp.12345`),
    );
    for (const file of staleTemps) assert.equal(existsSync(file), false, file);
    for (const file of notOurs) assert.equal(existsSync(file), true, file);
    await until(
      tree.run,
      () => running.logs.some((l) => String(l['msg']).includes('SERVICE_ACCOUNT_DIR')),
      5000,
    ).catch(() => undefined);
    assert.ok(running.logs.some((l) => String(l['msg']).includes('SERVICE_ACCOUNT_DIR')));
    assert.equal(running.installer.state.ready, false);
    assert.equal(read(`${tree.net}/10-named.conflist`), half);
    writeFileSync(`${tree.sa}/token`, 'token-foo');
    writeFileSync(`${tree.net}/10-named.conflist`, CALICO);
    await untilReady(running, tree, `${tree.net}/10-named.conflist`);
  } finally {
    await running.stop();
  }
});

test('a source dir without the plugin (a mistyped CNI_BIN_SOURCE_DIR): not ready, nothing copied, the config left alone', async () => {
  const tree = makeTree();
  rmSync(`${tree.src}/istio-cni`);
  writeFileSync(`${tree.net}/10-calico.conflist`, CALICO);
  const running = start(configFor(tree));
  try {
    await until(tree.net, () =>
      running.logs.some((l) => String(l['msg']).includes(`has no istio-cni executable (CNI_BIN_SOURCE_DIR)`)),
    );
    assert.equal(running.installer.state.ready, false);
    assert.equal(read(`${tree.net}/10-calico.conflist`), CALICO);
    assert.deepEqual(readdirSync(tree.bin), []);
  } finally {
    await running.stop();
  }
});

test('missing net dir: waits for it to appear', async () => {
  const tree = makeTree();
  rmSync(tree.net, { recursive: true });
  const running = start(configFor(tree));
  try {
    await until(tree.bin, () => existsSync(`${tree.bin}/istio-cni`));
    mkdirSync(tree.net);
    writeFileSync(`${tree.net}/10-calico.conflist`, CALICO);
    await until(tree.root, () => hasIstio(`${tree.net}/10-calico.conflist`));
  } finally {
    await running.stop();
  }
});

test('read-only bin dir: error names CNI_BIN_TARGET_DIRS, not ready, and the config does not name the missing plugin until the copy works', async () => {
  const tree = makeTree();
  // Left by an agent that was killed without cleanup; its binary is gone.
  const withStaleEntry = JSON.parse(CALICO) as { plugins: unknown[] };
  withStaleEntry.plugins.push({ type: 'istio-cni' });
  writeFileSync(`${tree.net}/10-calico.conflist`, JSON.stringify(withStaleEntry, null, 2));
  assert.ok(hasIstio(`${tree.net}/10-calico.conflist`));
  const realFs = createNodeFs();
  let readOnly = true;
  const fs = {
    ...realFs,
    copyFileAtomic: (from: string, to: string) =>
      readOnly
        ? Promise.reject(Object.assign(new Error('EROFS: read-only file system, open'), { code: 'EROFS' }))
        : realFs.copyFileAtomic(from, to),
  };
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    {},
    { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const metrics = new PrometheusMetrics();
  const installer = new Installer(configFor(tree), { fs, watchDir: watchDirectory, logger, metrics });
  current = installer;
  const controller = new AbortController();
  const done = installer.run(controller.signal);
  try {
    const logged = (text: string): boolean => logs.some((l) => String(l['msg']).includes(text));
    await until(
      tree.net,
      () => !hasIstio(`${tree.net}/10-calico.conflist`) && logged('took the istio-cni entry out'),
    );
    assert.ok(logged('CNI_BIN_TARGET_DIRS'));
    assert.equal(installer.state.ready, false);
    assert.equal(metrics.value('istio_cni_installs_total', { result: 'COPY_BINARIES_FAILURE' }), 1);
    assert.equal(
      metrics.value('istio_cni_installs_total', { result: 'CREATE_CNI_CONFIG_FAILURE' }),
      undefined,
    );
    readOnly = false;
    await untilReady(
      { installer, metrics, logs, done, stop: () => done },
      tree,
      `${tree.net}/10-calico.conflist`,
    );
    assert.equal(read(`${tree.bin}/istio-cni`), 'plugin-v1');
  } finally {
    controller.abort();
    await done;
  }
});

test('a host write refused (EPERM): the error names the file and its setting, not the temp file; it works once allowed', async () => {
  const tree = makeTree();
  const file = `${tree.net}/YYY-istio-cni.conf`;
  const realFs = createNodeFs();
  let refused = true;
  const fs: AgentFs = {
    ...realFs,
    writeFileAtomic: (target, text, mode) =>
      refused && target === file
        ? Promise.reject(
            Object.assign(new Error(`EPERM: operation not permitted, open '${target}.tmp.a98a6e0782a4'`), {
              code: 'EPERM',
            }),
          )
        : realFs.writeFileAtomic(target, text, mode),
  };
  const running = start(configFor(tree, { CHAINED_CNI_PLUGIN: 'false' }), fs);
  try {
    const message = `writing ${file} failed: EPERM: operation not permitted (check MOUNTED_CNI_NET_DIR and its mount)`;
    await until(tree.net, () => running.logs.some((l) => String(l['msg']).includes(message)));
    assert.equal(running.installer.state.ready, false);
    refused = false;
    writeFileSync(`${tree.net}/wake`, '');
    await until(tree.net, () => existsSync(file) && running.installer.state.ready);
  } finally {
    await running.stop();
  }
});

test('a conflist holding two istio-cni entries ends with exactly one, last', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  const doubled = JSON.parse(CALICO) as { plugins: unknown[] };
  doubled.plugins.unshift({ type: 'istio-cni', leftover: true });
  doubled.plugins.push({ type: 'istio-cni', leftover: true });
  writeFileSync(file, JSON.stringify(doubled));
  const running = start(configFor(tree));
  try {
    await until(tree.net, () => {
      const types = (JSON.parse(read(file)) as { plugins: { type: string }[] }).plugins.map((p) => p.type);
      return running.installer.state.ready && types.join() === 'calico,portmap,istio-cni';
    });
    assert.equal(running.metrics.value('istio_cni_config_rewrites_total'), 1);
  } finally {
    await running.stop();
  }
});

test('no service account token: the entry is not inserted until the kubeconfig can be written', async () => {
  const tree = makeTree();
  rmSync(`${tree.sa}/token`);
  writeFileSync(`${tree.net}/10-calico.conflist`, CALICO);
  const running = start(configFor(tree));
  try {
    await until(tree.run, () => running.logs.some((l) => String(l['msg']).includes('SERVICE_ACCOUNT_DIR')));
    assert.equal(hasIstio(`${tree.net}/10-calico.conflist`), false);
    assert.equal(read(`${tree.net}/10-calico.conflist`), CALICO);
    writeFileSync(`${tree.sa}/token`, 'token-foo');
    await untilReady(running, tree, `${tree.net}/10-calico.conflist`);
  } finally {
    await running.stop();
  }
});

test('an empty token or a CA without a certificate: the entry stays out (the plugin could not use them), named in the log', async () => {
  for (const [file, content, message] of [
    ['token', '\n', /service account token .*token is empty/],
    ['ca.crt', 'not a certificate', /API server CA .*ca\.crt holds no PEM certificate/],
    // What the plugin's own kubeconfig reader refuses, the agent refuses too.
    ['token', 'abc\u0001def', /the plugin could not use this kubeconfig: .*token holds a control/],
  ] as const) {
    const tree = makeTree();
    const good = readFileSync(`${tree.sa}/${file}`);
    writeFileSync(`${tree.sa}/${file}`, content);
    writeFileSync(`${tree.net}/10-calico.conflist`, CALICO);
    const running = start(configFor(tree));
    try {
      await until(tree.run, () => running.logs.some((l) => message.test(String(l['msg']))));
      assert.equal(read(`${tree.net}/10-calico.conflist`), CALICO);
      assert.equal(existsSync(`${tree.run}/istio-cni-kubeconfig`), false);
      assert.equal(running.installer.state.ready, false);
      writeFileSync(`${tree.sa}/${file}`, good);
      await untilReady(running, tree, `${tree.net}/10-calico.conflist`);
    } finally {
      await running.stop();
    }
  }
});

const logged = (running: Running, pattern: RegExp): boolean =>
  running.logs.some((line) => pattern.test(String(line['msg'])));

test('our primary turning invalid for a while (written in place): we wait for it, the next valid file is not touched', async () => {
  const { tree, file, running } = await startedOnCalico();
  const loopback = `${tree.net}/99-loopback.conf`;
  const loopbackText = JSON.stringify({ cniVersion: '0.3.1', name: 'lo', type: 'loopback' });
  writeFileSync(loopback, loopbackText);
  try {
    writeFileSync(file, '');
    await until(tree.net, () => logged(running, /10-calico\.conflist.*not touching it, waiting/));
    assert.equal(running.installer.state.ready, false);
    writeFileSync(file, CALICO);
    await untilReady(running, tree, file);
    assert.equal(read(loopback), loopbackText);
    assert.equal(existsSync(`${loopback}list`), false);
  } finally {
    await running.stop();
  }
});

test('our primary that stays invalid past the grace (its CNI replaced): the entry moves to the next valid file', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const loopback = `${tree.net}/99-loopback.conflist`;
  writeFileSync(
    loopback,
    JSON.stringify({ cniVersion: '0.3.1', name: 'lo', plugins: [{ type: 'loopback' }] }),
  );
  const running = start(configFor(tree), createNodeFs(), { halfWrittenGraceMs: 300 });
  try {
    await untilReady(running, tree, file);
    writeFileSync(file, '{"name": "k8s-pod-network", "plugins": [');
    await until(tree.net, () => hasIstio(loopback) && running.installer.state.ready);
    assert.ok(logged(running, /our CNI config stayed invalid; moving our entry to the next valid file/));
    assert.equal(read(file), '{"name": "k8s-pod-network", "plugins": [');
  } finally {
    await running.stop();
  }
});

test('our primary broken while a valid file sorting before it appears: the entry moves at once, no grace (libcni loads that one now)', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const first = `${tree.net}/05-cilium.conflist`;
  // A grace far beyond the test: only the sort order can make the move happen now.
  const running = start(configFor(tree), createNodeFs(), { halfWrittenGraceMs: 60_000 });
  try {
    await untilReady(running, tree, file);
    writeFileSync(file, '{"name": "k8s-pod-network", "plugins": [');
    writeFileSync(
      `${first}.tmp`,
      JSON.stringify({ cniVersion: '0.3.1', name: 'cilium', plugins: [{ type: 'cilium-cni' }] }),
    );
    renameSync(`${first}.tmp`, first);
    await until(tree.net, () => hasIstio(first) && running.installer.state.ready);
    assert.equal(read(file), '{"name": "k8s-pod-network", "plugins": [');
  } finally {
    await running.stop();
  }
});

test('a .conf beside a .conflist of the same name: not converted over it (both kept), the conflict named', async () => {
  const tree = makeTree();
  const old = JSON.stringify({ cniVersion: '0.3.1', name: 'cbr0', type: 'flannel' });
  const newer = JSON.stringify({
    cniVersion: '0.3.1',
    name: 'cbr0',
    plugins: [{ type: 'flannel' }, { type: 'portmap', capabilities: { portMappings: true } }],
  });
  writeFileSync(`${tree.net}/10-flannel.conf`, old);
  writeFileSync(`${tree.net}/10-flannel.conflist`, newer);
  const running = start(configFor(tree));
  try {
    await until(tree.net, () => logged(running, /10-flannel\.conflist exists and would be overwritten/));
    assert.equal(read(`${tree.net}/10-flannel.conf`), old);
    assert.equal(read(`${tree.net}/10-flannel.conflist`), newer);
    assert.equal(running.installer.state.ready, false);
    rmSync(`${tree.net}/10-flannel.conf`);
    await untilReady(running, tree, `${tree.net}/10-flannel.conflist`);
    const plugins = (JSON.parse(read(`${tree.net}/10-flannel.conflist`)) as { plugins: { type: string }[] })
      .plugins;
    assert.deepEqual(
      plugins.map((plugin) => plugin.type),
      ['flannel', 'portmap', 'istio-cni'],
    );
  } finally {
    await running.stop();
  }
});

test('CNI_CONF_NAME naming a list without "name": merged all the same (a named file gets no libcni validity check, §1.5.2)', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-named.conflist`;
  writeFileSync(file, NONAME);
  const running = start(configFor(tree, { CNI_CONF_NAME: '10-named.conflist' }));
  try {
    await untilReady(running, tree, file);
  } finally {
    await running.stop();
  }
});

test('CNI_CONF_NAME naming a list with no plugins: untouched (it would become istio-cni alone) until it has some', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-named.conflist`;
  const empty = JSON.stringify({ cniVersion: '0.3.1', name: 'k8s-pod-network', plugins: [] });
  writeFileSync(file, empty);
  const running = start(configFor(tree, { CNI_CONF_NAME: '10-named.conflist' }));
  try {
    await until(tree.net, () =>
      logged(running, /10-named\.conflist: conflist has no plugins; not touching it/),
    );
    assert.equal(read(file), empty);
    writeFileSync(file, CALICO);
    await untilReady(running, tree, file);
  } finally {
    await running.stop();
  }
});

test('a .conflist with a stray top-level "type": our entry joins its plugins (libcni reads it as a list)', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-flannel.conflist`;
  writeFileSync(
    file,
    JSON.stringify({
      name: 'cbr0',
      type: 'flannel-list',
      plugins: [{ type: 'flannel' }, { type: 'portmap' }],
    }),
  );
  const running = start(configFor(tree));
  try {
    await untilReady(running, tree, file);
    const merged = JSON.parse(read(file)) as { name: string; plugins: { type: string }[] };
    assert.equal(merged.name, 'cbr0');
    assert.deepEqual(
      merged.plugins.map((plugin) => plugin.type),
      ['flannel', 'portmap', 'istio-cni'],
    );
  } finally {
    await running.stop();
  }
});

/** A tree whose net dir holds `10-calico.conflist` as a relative link to a Calico conflist (mode 0644) outside it,
 * as a CNI that keeps its config elsewhere lays it out. */
function symlinkedCalicoTree(): { tree: HostTree; realDir: string; real: string; link: string } {
  const tree = makeTree();
  const realDir = `${tree.root}/calico-owned`;
  mkdirSync(realDir);
  const real = `${realDir}/calico.conflist`;
  writeFileSync(real, CALICO, { mode: 0o644 });
  const link = `${tree.net}/10-calico.conflist`;
  symlinkSync('../calico-owned/calico.conflist', link);
  return { tree, realDir, real, link };
}

test('a symlinked conflist is written through the link; the owner rewriting the real file is repaired; cleanup keeps the link', async () => {
  const { tree, realDir, real, link } = symlinkedCalicoTree();
  const running = start(configFor(tree));
  try {
    await untilReady(running, tree, link);
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.ok(hasIstio(real));
    assert.equal(statSync(real).mode & 0o777, 0o644);
    // The owner rewrites its file atomically, without our entry: only the real file's directory sees it.
    writeFileSync(`${real}.tmp.owner`, CALICO);
    renameSync(`${real}.tmp.owner`, real);
    await until(realDir, () => hasIstio(real));
    assert.ok(lstatSync(link).isSymbolicLink());
  } finally {
    await running.stop();
  }
  await cleanupNode(configFor(tree), createNodeFs(), pino({ level: 'silent' }), link);
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.deepEqual(JSON.parse(read(real)), JSON.parse(CALICO));
});

test('§5.1 list.conflist golden, end to end: the agent settings become the entry byte for byte', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-list.conflist`;
  writeFileSync(file, readFileSync(`${TESTDATA}/list.conflist`));
  const config = loadAgentConfig({
    env: {
      KUBERNETES_SERVICE_HOST: '10.110.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      ...hostTreeEnv(tree),
      POD_NAMESPACE: 'my-namespace',
      EXCLUDE_NAMESPACES: '',
      REPAIR_ENABLED: 'false',
    },
    flags: {},
    logOutputLevel: 'cni-plugin:debug',
    mode: 'agent',
  });
  const running = start(config);
  try {
    await untilReady(running, tree, file);
    const golden = readFileSync(`${TESTDATA}/list.conflist.golden`, 'utf8');
    assert.equal(read(file), golden.replace('"/path/to/kubeconfig"', JSON.stringify(tree.run)));
  } finally {
    await running.stop();
  }
});

test('the kubeconfig deleted while running is written again', async () => {
  const { tree, running } = await startedOnCalico();
  const kubeconfig = `${tree.run}/istio-cni-kubeconfig`;
  try {
    const text = read(kubeconfig);
    assert.match(text, /token: token-foo/);
    rmSync(kubeconfig);
    await until(tree.run, () => read(kubeconfig) === text);
    assert.equal(statSync(kubeconfig).mode & 0o777, 0o600);
  } finally {
    await running.stop();
  }
});

test('quirk §8.3 fixed: with ISTIO_OWNED_CNI_CONFIG=true but owned mode inactive, cleanup keeps the primary file', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const config = configFor(tree, { ISTIO_OWNED_CNI_CONFIG: 'true' });
  const running = start(config);
  try {
    await untilReady(running, tree, file);
  } finally {
    await running.stop();
  }
  await cleanupNode(config, createNodeFs(), pino({ level: 'silent' }), file);
  assert.deepEqual(JSON.parse(read(file)), JSON.parse(CALICO));
});

test('binaries at start: an identical copy is left alone; one whose mode differs is copied again', async () => {
  const { tree, running } = await startedOnCalico();
  const binary = `${tree.bin}/istio-cni`;
  const conflist = `${tree.net}/10-calico.conflist`;
  const first = statSync(binary).ino;
  await running.stop();
  const again = start(configFor(tree));
  try {
    await untilReady(again, tree, conflist);
    assert.equal(statSync(binary).ino, first);
  } finally {
    await again.stop();
  }
  chmodSync(binary, 0o600);
  const third = start(configFor(tree));
  try {
    await untilReady(third, tree, conflist);
    assert.equal(statSync(binary).mode & 0o777, 0o755);
    assert.notEqual(statSync(binary).ino, first);
  } finally {
    await third.stop();
  }
});

/** Resolves after `count` more install passes have ended; rejects if they have not within `timeoutMs` (a pass
 * that never comes fails the test instead of waiting out a long back-off). A rejection, not the runner's per-test
 * limit: the test's `finally` must still stop the installer, whose directory watches would keep the file alive. */
function passes(running: Running, count: number, timeoutMs = 5000): Promise<void> {
  let seen = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`${seen} of ${count} passes within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = running.installer.subscribe(() => {
      seen += 1;
      if (seen < count) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

/** A tree an agent has installed on and stopped without cleanup: the next agent's first pass writes nothing, so
 * once it is ready no event of its own is pending and what follows is the test's alone. */
async function settledTree(): Promise<{ tree: HostTree; file: string }> {
  const { tree, file, running } = await startedOnCalico();
  await running.stop();
  return { tree, file };
}

test('token gone after ready: the entry is withdrawn, and comes back with the token even when no back-off is pending (the pass our own withdrawal woke had cleared it)', async () => {
  const { tree, file } = await settledTree();
  // A back-off far beyond the test: only the token's own event can bring the entry back.
  const running = start(configFor(tree), createNodeFs(), { retryInitialMs: 60_000 });
  try {
    await untilReady(running, tree, file);
    // The token's removal fails the kubeconfig and withdraws the entry; that write of ours wakes a second pass.
    const twoPasses = passes(running, 2);
    rmSync(`${tree.sa}/token`);
    await twoPasses;
    assert.equal(hasIstio(file), false);
    writeFileSync(`${tree.sa}/token`, 'token-foo');
    await untilReady(running, tree, file);
  } finally {
    await running.stop();
  }
});

test('a failing area is retried by every pass, whatever woke it (not only by its own back-off)', async () => {
  const { tree, file } = await settledTree();
  rmSync(`${tree.bin}/istio-cni`);
  const realFs = createNodeFs();
  let readOnly = true;
  let copies = 0;
  const fs: AgentFs = {
    ...realFs,
    copyFileAtomic: (from, to) => {
      copies += 1;
      return readOnly
        ? Promise.reject(Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' }))
        : realFs.copyFileAtomic(from, to);
    },
  };
  const running = start(configFor(tree), fs, { retryInitialMs: 60_000 });
  try {
    // Pass 1: the copy fails and the entry is withdrawn; pass 2, woken by that write of ours, copies again.
    await passes(running, 2);
    assert.equal(copies, 2);
    assert.equal(hasIstio(file), false);
    readOnly = false;
    writeFileSync(`${tree.net}/unrelated.txt`, 'x');
    await untilReady(running, tree, file);
  } finally {
    await running.stop();
  }
});

test('order: the runtime dir is in place before the launcher that runs it, and the launcher goes first at cleanup', async () => {
  const tree = makeTree();
  mkdirSync(`${tree.src}/istio-cni.d`);
  writeFileSync(`${tree.src}/istio-cni.d/ld.so`, 'loader', { mode: 0o755 });
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const realFs = createNodeFs();
  const ops: string[] = [];
  const binPath = (target: string) => path.relative(tree.bin, target);
  const fs: AgentFs = {
    ...realFs,
    copyFileAtomic: async (from, to) => {
      const stat = await realFs.copyFileAtomic(from, to);
      if (path.dirname(to) === tree.bin) ops.push(`copy ${binPath(to)}`);
      return stat;
    },
    replaceDir: async (staging, target) => {
      await realFs.replaceDir(staging, target);
      ops.push(`swap ${binPath(target)}`);
    },
    remove: async (target) => {
      const removed = await realFs.remove(target);
      if (removed && path.dirname(target) === tree.bin) ops.push(`remove ${binPath(target)}`);
      return removed;
    },
    removeDir: async (target) => {
      const removed = await realFs.removeDir(target);
      if (removed && path.dirname(target) === tree.bin) ops.push(`remove ${binPath(target)}`);
      return removed;
    },
  };
  const config = configFor(tree);
  const running = start(config, fs);
  try {
    await untilReady(running, tree, file);
  } finally {
    await running.stop();
  }
  const swapped = ops.indexOf('swap istio-cni.d');
  assert.ok(swapped !== -1 && swapped < ops.indexOf('copy istio-cni'), ops.join(', '));
  ops.length = 0;
  await cleanupNode(config, fs, pino({ level: 'silent' }), file);
  assert.deepEqual(ops, ['remove istio-cni', 'remove istio-cni.d']);
});

test('a directory in the source dir (the plugin runtime) is installed as a directory, re-copied when deleted, removed on cleanup with the temps a SIGKILL left', async () => {
  const tree = makeTree();
  mkdirSync(`${tree.src}/istio-cni.d`);
  writeFileSync(`${tree.src}/istio-cni.d/ld.so`, 'loader', { mode: 0o755 });
  writeFileSync(`${tree.src}/istio-cni.d/libc.so.6`, 'libc', { mode: 0o644 });
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const config = configFor(tree);
  const running = start(config);
  const runtime = `${tree.bin}/istio-cni.d`;
  try {
    await untilReady(running, tree, file);
    assert.equal(read(`${runtime}/ld.so`), 'loader');
    assert.equal(statSync(`${runtime}/ld.so`).mode & 0o777, 0o755);
    assert.equal(statSync(`${runtime}/libc.so.6`).mode & 0o777, 0o644);
    assert.equal(statSync(runtime).mode & 0o777, 0o755);
    rmSync(`${runtime}/libc.so.6`);
    await until(runtime, () => read(`${runtime}/libc.so.6`) === 'libc');
    rmSync(runtime, { recursive: true });
    await until(
      tree.bin,
      () => read(`${runtime}/libc.so.6`) === 'libc' && read(`${runtime}/ld.so`) === 'loader',
    );
    writeFileSync(`${runtime}/ld.so.x`, 'evil');
    renameSync(`${runtime}/ld.so.x`, `${runtime}/ld.so`);
    await until(runtime, () => read(`${runtime}/ld.so`) === 'loader');
  } finally {
    await running.stop();
  }
  // What a SIGKILL during a copy, a runtime swap or a kubeconfig write leaves, beside a file that is not ours.
  writeFileSync(`${tree.bin}/istio-cni.tmp.0123456789ab`, 'half');
  mkdirSync(`${runtime}.tmp.abcdef012345`);
  writeFileSync(`${runtime}.tmp.abcdef012345/ld.so`, 'half');
  writeFileSync(`${tree.run}/istio-cni-kubeconfig.tmp.0123456789ab`, 'token-foo');
  writeFileSync(`${tree.bin}/bridge.tmp.0123456789ab`, 'theirs');
  await cleanupNode(config, createNodeFs(), pino({ level: 'silent' }), file);
  assert.deepEqual(readdirSync(tree.bin).sort(), ['bridge.tmp.0123456789ab', 'istio-iptables']);
  assert.deepEqual(readdirSync(tree.run), []);
  await cleanupNode(config, createNodeFs(), pino({ level: 'silent' }), file);
});

test('the plugin runtime left by an older version (an unclean exit) is replaced whole, never file by file; one already in place is left alone', async () => {
  const tree = makeTree();
  mkdirSync(`${tree.src}/istio-cni.d`);
  writeFileSync(`${tree.src}/istio-cni.d/ld.so`, 'loader-2', { mode: 0o755 });
  writeFileSync(`${tree.src}/istio-cni.d/libc.so.6`, 'libc-2', { mode: 0o644 });
  const runtime = `${tree.bin}/istio-cni.d`;
  // The older version's runtime, and a staging dir a SIGKILL cut short.
  mkdirSync(runtime);
  writeFileSync(`${runtime}/ld.so`, 'loader-1', { mode: 0o755 });
  writeFileSync(`${runtime}/libc.so.6`, 'libc-1', { mode: 0o644 });
  mkdirSync(`${runtime}.tmp.0123456789ab`);
  writeFileSync(`${runtime}.tmp.0123456789ab/ld.so`, 'half');
  const old = statSync(runtime).ino;
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const config = configFor(tree);
  let running = start(config);
  try {
    await untilReady(running, tree, file);
    assert.deepEqual([read(`${runtime}/ld.so`), read(`${runtime}/libc.so.6`)], ['loader-2', 'libc-2']);
    assert.notEqual(statSync(runtime).ino, old, 'a new directory, swapped in');
    assert.deepEqual(
      readdirSync(tree.bin).filter((name) => name.includes('.tmp.')),
      [],
    );
  } finally {
    await running.stop();
  }
  // A restart (no cleanup in between: the agent died) finds it in place and copies nothing.
  const current = statSync(runtime).ino;
  running = start(config);
  try {
    await untilReady(running, tree, file);
    assert.equal(statSync(runtime).ino, current);
    assert.equal(
      running.logs.filter((line) => String(line['msg']).startsWith('installed CNI binary')).length,
      0,
    );
  } finally {
    await running.stop();
  }
});

test('the bin dir renamed away: the entry is withdrawn (the config must not name a plugin that is gone)', async () => {
  const { tree, file } = await settledTree();
  const running = start(configFor(tree));
  try {
    await untilReady(running, tree, file);
    renameSync(tree.bin, `${tree.bin}.moved`);
    await until(tree.net, () => !hasIstio(file) && !running.installer.state.ready);
    assert.equal(existsSync(`${tree.bin}/istio-cni`), false);
  } finally {
    await running.stop();
  }
});

test('SIGTERM during a pass: the pass stops before the config, so cleanup never races an entry written after it', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const realFs = createNodeFs();
  let copying: () => void = () => undefined;
  const copyStarted = new Promise<void>((resolve) => (copying = resolve));
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const fs: AgentFs = {
    ...realFs,
    copyFileAtomic: async (from, to) => {
      copying();
      await released;
      return realFs.copyFileAtomic(from, to);
    },
  };
  const running = start(configFor(tree), fs);
  await copyStarted;
  const stopped = running.stop();
  release();
  await stopped;
  assert.equal(read(file), CALICO);
  assert.equal(existsSync(`${tree.run}/istio-cni-kubeconfig`), false);
});

test('a .conf → .conflist conversion cut short (both files, the list ours) is finished, not reported as a conflict', async () => {
  const tree = makeTree();
  const conf = `${tree.net}/10-bridge.conf`;
  const list = `${tree.net}/10-bridge.conflist`;
  writeFileSync(conf, MINIKUBE);
  const first = start(configFor(tree));
  try {
    await untilReady(first, tree, list);
  } finally {
    await first.stop();
  }
  // As if the agent had died between writing the list and removing the .conf.
  writeFileSync(conf, MINIKUBE);
  const second = start(configFor(tree));
  try {
    await untilReady(second, tree, list);
    assert.equal(existsSync(conf), false);
    assert.ok(!logged(second, /would be overwritten/));
  } finally {
    await second.stop();
  }
});

test('the owner writes its .conf again after our conversion (multus on a delegate change): converted again over our list', async () => {
  const tree = makeTree();
  const conf = `${tree.net}/00-multus.conf`;
  const list = `${tree.net}/00-multus.conflist`;
  writeFileSync(conf, MINIKUBE);
  const running = start(configFor(tree));
  try {
    await untilReady(running, tree, list);
    const changed = JSON.stringify({ ...(JSON.parse(MINIKUBE) as object), bridge: 'otherbridge' });
    writeFileSync(conf, changed);
    await until(tree.net, () => !existsSync(conf) && read(list).includes('otherbridge') && hasIstio(list));
    assert.ok(!logged(running, /would be overwritten/));
    assert.ok(!logged(running, /preempted/), 'the same network again, not another CNI taking over');
  } finally {
    await running.stop();
  }
});

test('the owner rewriting its config while we merge: their update survives and our entry is added to it', async () => {
  const { tree, file, running } = await startedOnCalico();
  await running.stop();
  const updated = JSON.stringify({
    ...(JSON.parse(CALICO) as object),
    plugins: [
      { type: 'calico', mtu: 1400 },
      { type: 'portmap', snat: true, capabilities: { portMappings: true } },
    ],
  });
  const realFs = createNodeFs();
  let injected = false;
  const fs: AgentFs = {
    ...realFs,
    replaceIfUnchanged: async (target, data, mode, expected) => {
      if (!injected && target === file) {
        injected = true;
        writeFileSync(`${file}.owner`, updated);
        renameSync(`${file}.owner`, file);
      }
      return realFs.replaceIfUnchanged(target, data, mode, expected);
    },
  };
  writeFileSync(file, CALICO);
  const again = start(configFor(tree), fs);
  try {
    await until(tree.net, () => injected && hasIstio(file) && again.installer.state.ready);
    assert.match(read(file), /"mtu": 1400/);
  } finally {
    await again.stop();
  }
});

test('the owner rewriting its .conf while we convert it: their update survives, converted again', async () => {
  const tree = makeTree();
  const conf = `${tree.net}/00-minikube.conf`;
  const list = `${tree.net}/00-minikube.conflist`;
  writeFileSync(conf, MINIKUBE);
  const updated = JSON.stringify({ ...(JSON.parse(MINIKUBE) as object), bridge: 'otherbridge' });
  const realFs = createNodeFs();
  let injected = false;
  const fs: AgentFs = {
    ...realFs,
    removeIfUnchanged: async (file, expected) => {
      if (!injected && file === conf) {
        injected = true;
        writeFileSync(`${conf}.owner`, updated);
        renameSync(`${conf}.owner`, conf);
      }
      return realFs.removeIfUnchanged(file, expected);
    },
  };
  const running = start(configFor(tree), fs);
  try {
    await until(
      tree.net,
      () =>
        injected &&
        !existsSync(conf) &&
        read(list).includes('otherbridge') &&
        hasIstio(list) &&
        running.installer.state.ready,
    );
  } finally {
    await running.stop();
  }
});

describe('removing our entry while the owner rewrites the file (istio#33971)', () => {
  const chained = (mtu: number): string =>
    JSON.stringify({
      ...(JSON.parse(CALICO) as object),
      plugins: [{ type: 'calico', mtu }, { type: 'istio-cni' }],
    });
  /** The real fs, except that the owner writes `owner(n)` just before our nth conditional replace. */
  function racingFs(file: string, owner: (n: number) => string | undefined): AgentFs {
    const realFs = createNodeFs();
    let calls = 0;
    return {
      ...realFs,
      replaceIfUnchanged: async (target, data, mode, expected) => {
        const text = owner(++calls);
        if (text !== undefined && target === file) {
          writeFileSync(`${file}.owner`, text);
          renameSync(`${file}.owner`, file);
        }
        return realFs.replaceIfUnchanged(target, data, mode, expected);
      },
    };
  }

  test('their update survives and our entry is taken out of it', async () => {
    const tree = makeTree();
    const file = `${tree.net}/10-calico.conflist`;
    writeFileSync(file, chained(1500));
    const fs = racingFs(file, (n) => (n === 1 ? chained(1400) : undefined));
    assert.equal(await removeEntryFromFile(fs, file), true);
    const plugins = (JSON.parse(read(file)) as { plugins: { type: string; mtu?: number }[] }).plugins;
    assert.deepEqual(plugins, [{ type: 'calico', mtu: 1400 }]);
  });

  test('a file that never stops changing: a clear error, the owner’s last version left as it is', async () => {
    const tree = makeTree();
    const file = `${tree.net}/10-calico.conflist`;
    writeFileSync(file, chained(1500));
    const fs = racingFs(file, (n) => chained(1400 - n));
    await assert.rejects(
      removeEntryFromFile(fs, file),
      /changed 5 times while istio-cni's entry was being removed/,
    );
    assert.equal(read(file), chained(1395));
  });
});

test('a watch that cannot be created (inotify instances exhausted): fatal, and says which limit to raise', async () => {
  const tree = makeTree();
  const installer = new Installer(configFor(tree), {
    fs: createNodeFs(),
    watchDir: () => {
      throw Object.assign(new Error('EMFILE: too many open files, watch'), { code: 'EMFILE' });
    },
    logger: pino({ level: 'silent' }),
    metrics: new PrometheusMetrics(),
  });
  await assert.rejects(installer.run(new AbortController().signal), /max_user_instances/);
});

test('watcher death is fatal', async () => {
  const tree = makeTree();
  let fail: ((error: Error) => void) | undefined;
  const installer = new Installer(configFor(tree), {
    fs: createNodeFs(),
    watchDir: (dir, onChange, onError) => {
      fail ??= onError;
      return watchDirectory(dir, onChange, onError);
    },
    logger: pino({ level: 'silent' }),
    metrics: new PrometheusMetrics(),
  });
  const done = installer.run(new AbortController().signal);
  await until(tree.bin, () => existsSync(`${tree.bin}/istio-cni`));
  fail?.(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }));
  await assert.rejects(done, /inotify limit/);
});

test('fight detection: repeated rewrites by another agent → one warning naming the file, repairs throttled not stopped', async () => {
  const { tree, file, running } = await startedOnCalico();
  try {
    for (let i = 0; i < 13; i++) {
      writeFileSync(`${file}.tmp.other`, CALICO);
      renameSync(`${file}.tmp.other`, file);
      await until(tree.net, () => hasIstio(file));
    }
    const warnings = running.logs.filter((l) => String(l['msg']).includes('fighting over it'));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.['file'], file);
    assert.match(
      String(warnings[0]?.['msg']),
      /^Configuration has been reconciled multiple times/,
      'upstream’s words',
    );
    assert.ok((running.metrics.value('istio_cni_config_fights_total') ?? 0) >= 1);
  } finally {
    await running.stop();
  }
});

test('the rewrite throttle: a bucket of 10 repairs, then one per 40 ms of the clock (a frozen clock lets none through)', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  let clock = 1_000;
  let onNow: (() => void) | undefined;
  const running = start(configFor(tree), createNodeFs(), {
    now: () => {
      onNow?.();
      return clock;
    },
  });
  /** Resolves once the installer has read the clock `count` more times (the throttle re-checks it per sleep). */
  const clockReads = (count: number) =>
    new Promise<void>((resolve) => {
      let left = count;
      onNow = () => {
        if (--left > 0) return;
        onNow = undefined;
        resolve();
      };
    });
  const takeEntryOut = () => {
    writeFileSync(`${file}.tmp.other`, CALICO);
    renameSync(`${file}.tmp.other`, file);
  };
  try {
    await untilReady(running, tree, file); // the install's own write takes the first token
    for (let i = 0; i < 9; i++) {
      const repaired = passes(running, 1);
      takeEntryOut();
      await until(tree.net, () => hasIstio(file));
      await repaired;
    }
    // The bucket is empty: the repair waits, re-checking the clock as it sleeps, and no pass ends meanwhile (the
    // pass our own last write woke waits for a token too).
    let passesEnded = 0;
    const unsubscribe = running.installer.subscribe(() => (passesEnded += 1));
    takeEntryOut();
    await clockReads(8);
    clock += 39;
    await clockReads(4);
    assert.equal(passesEnded, 0);
    assert.equal(hasIstio(file), false);
    unsubscribe();
    clock += 1; // 40 ms since the bucket ran dry: one token
    await until(tree.net, () => hasIstio(file));
  } finally {
    await running.stop();
  }
});

test('net dir deleted and recreated: the watch follows it and the entry comes back', async () => {
  const { tree, file, running } = await startedOnCalico();
  try {
    rmSync(tree.net, { recursive: true });
    await until(tree.root, () => !running.installer.state.ready);
    mkdirSync(tree.net);
    writeFileSync(file, CALICO);
    await until(tree.root, () => hasIstio(file) && running.installer.state.ready);
  } finally {
    await running.stop();
  }
});

// ---- second mutation audit: what an operator sees (metrics, log lines, back-off, cleanup) -----------------------

test('metrics: the ready gauge follows readiness (onFirstReady fires once); SUCCESS counts every valid install reached (a restart with nothing to write, a repair while ready); a failed step is counted under its label', async () => {
  const { tree, file } = await settledTree();
  const running = start(configFor(tree));
  let firstReady = 0;
  running.installer.onFirstReady(() => (firstReady += 1));
  const success = () => running.metrics.value('istio_cni_installs_total', { result: 'SUCCESS' });
  try {
    await untilReady(running, tree, file);
    assert.equal(running.metrics.value('istio_cni_install_ready'), 1);
    assert.equal(success(), 1, 'a restart that finds everything in place is a valid install too');
    assert.match(running.metrics.render(), /^istio_cni_reinstall_duration_seconds_count \d+$/m);
    // A binary deleted while ready: the pass that copies it again reaches a valid install.
    const repaired = passes(running, 1);
    rmSync(`${tree.bin}/istio-cni`);
    await repaired;
    assert.equal(read(`${tree.bin}/istio-cni`), 'plugin-v1');
    assert.equal(success(), 2);
    rmSync(`${tree.sa}/token`);
    await until(tree.net, () => !hasIstio(file) && !running.installer.state.ready);
    assert.equal(running.metrics.value('istio_cni_install_ready'), 0);
    assert.ok(
      (running.metrics.value('istio_cni_installs_total', { result: 'CREATE_KUBECONFIG_FAILURE' }) ?? 0) >= 1,
    );
    assert.equal(
      running.metrics.value('istio_cni_installs_total', { result: 'COPY_BINARIES_FAILURE' }),
      undefined,
    );
    writeFileSync(`${tree.sa}/token.new`, 'token-foo');
    renameSync(`${tree.sa}/token.new`, `${tree.sa}/token`);
    await untilReady(running, tree, file);
    assert.equal(running.metrics.value('istio_cni_install_ready'), 1);
    // The same outage again is logged again: a valid install in between clears what was reported.
    rmSync(`${tree.sa}/token`);
    await until(tree.net, () => !hasIstio(file) && !running.installer.state.ready);
    assert.equal(
      running.logs.filter((l) => String(l['msg']).startsWith('cannot read the service account token')).length,
      2,
    );
    // Ready twice, and what waits for the first install (the repair controller) started once.
    assert.equal(firstReady, 1);
  } finally {
    await running.stop();
  }
  assert.equal(running.metrics.value('istio_cni_install_ready'), 0);
});

test('a CNI config that cannot be written is counted as CREATE_CNI_CONFIG_FAILURE', async () => {
  const tree = makeTree();
  mkdirSync(`${tree.net}/10-named.conflist`);
  const running = start(configFor(tree, { CNI_CONF_NAME: '10-named.conflist' }));
  try {
    await until(tree.net, () => logged(running, /10-named\.conflist is not a regular file/));
    assert.ok(
      (running.metrics.value('istio_cni_installs_total', { result: 'CREATE_CNI_CONFIG_FAILURE' }) ?? 0) >= 1,
    );
    assert.equal(running.installer.state.ready, false);
  } finally {
    await running.stop();
  }
});

test('the kubeconfig write is logged with the token and CA redacted; SKIP_TLS_VERIFY needs no CA file', async () => {
  const tree = makeTree();
  rmSync(`${tree.sa}/ca.crt`);
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const running = start(configFor(tree, { SKIP_TLS_VERIFY: 'true' }));
  try {
    await untilReady(running, tree, file);
    assert.match(read(`${tree.run}/istio-cni-kubeconfig`), /insecure-skip-tls-verify: true/);
    const lines = running.logs.filter((l) => l['msg'] === 'wrote plugin kubeconfig');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.['file'], `${tree.run}/istio-cni-kubeconfig`);
    assert.match(String(lines[0]?.['content']), /token: REDACTED/);
    assert.doesNotMatch(JSON.stringify(running.logs), /token-foo/);
  } finally {
    await running.stop();
  }
});

test('fight detection by the clock: 10 repairs within 10 s are no fight, the 11th is; the warning names the other files changed in the window and, for Cilium, its setting', async () => {
  const tree = makeTree();
  const file = `${tree.net}/05-cilium.conflist`;
  writeFileSync(file, CALICO);
  let clock = 1_000_000;
  const running = start(configFor(tree), createNodeFs(), { now: () => clock });
  const rewrites = () => running.metrics.value('istio_cni_config_rewrites_total') ?? 0;
  const fights = () => running.logs.filter((l) => String(l['msg']).includes('fighting over it'));
  /** Writes `name` into the net dir and resolves once the installer's watch has been told (same inotify read). */
  const touch = (name: string) =>
    new Promise<void>((resolve) => {
      const watcher = watch(tree.net, (_event, changed) => {
        if (changed !== name) return;
        watcher.close();
        setImmediate(resolve);
      });
      writeFileSync(`${tree.net}/${name}`, 'x');
    });
  try {
    await untilReady(running, tree, file);
    await touch('old-notes.txt');
    clock += 20_000;
    const repair = async () => {
      const before = rewrites();
      clock += 1_000;
      writeFileSync(`${file}.tmp.other`, CALICO);
      renameSync(`${file}.tmp.other`, file);
      await until(tree.net, () => rewrites() === before + 1 && hasIstio(file));
    };
    for (let i = 0; i < 10; i++) await repair();
    assert.deepEqual(fights(), []);
    assert.equal(running.metrics.value('istio_cni_config_fights_total'), undefined);
    await touch('new-notes.txt');
    await repair();
    const warnings = fights();
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.['file'], file);
    assert.deepEqual(warnings[0]?.['otherFiles'], ['new-notes.txt']);
    assert.match(String(warnings[0]?.['msg']), / Cilium: set cni\.exclusive=false\.$/);
    assert.equal(running.metrics.value('istio_cni_config_fights_total'), 1);
  } finally {
    await running.stop();
  }
});

test('back-off: each failed pass doubles the wait before the next, and a pass that works starts it over', async () => {
  const tree = makeTree();
  const file = `${tree.net}/YYY-istio-cni.conf`;
  const realFs = createNodeFs();
  let refused = true;
  const fs: AgentFs = {
    ...realFs,
    writeFileAtomic: (target, text, mode) =>
      refused && target === file
        ? Promise.reject(Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM' }))
        : realFs.writeFileAtomic(target, text, mode),
  };
  const running = start(configFor(tree, { CHAINED_CNI_PLUGIN: 'false' }), fs, { retryInitialMs: 10 });
  const ended: number[] = [];
  running.installer.subscribe(() => ended.push(performance.now()));
  try {
    // Refused writes leave nothing behind, so after the install's own events only the back-off wakes a pass:
    // 10, 20, 40, … ms after pass n, whatever woke the earlier ones.
    await passes(running, 7);
    const gap = (ended[6] ?? 0) - (ended[5] ?? 0);
    assert.ok(gap >= 80, `the 6th back-off was ${gap} ms`);
    refused = false;
    writeFileSync(`${tree.net}/wake`, '');
    await until(tree.net, () => existsSync(file) && running.installer.state.ready);
    // Failing again after a success: retried 10, 20, … ms later, not after the wait the earlier failures grew.
    refused = true;
    const retried = passes(running, 4, 1500);
    chmodSync(file, 0o644);
    await retried;
  } finally {
    await running.stop();
  }
});

test('discovery: a valid config under a name without a conf extension (a backup) is never the primary; an invalid file is skipped with a warning saying why', async () => {
  const tree = makeTree();
  writeFileSync(`${tree.net}/00-bridge.conf.bak`, MINIKUBE);
  writeFileSync(`${tree.net}/05-noname.conflist`, NONAME);
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const running = start(configFor(tree));
  try {
    await untilReady(running, tree, file);
    assert.equal(running.installer.state.trackedConfig, file);
    assert.equal(read(`${tree.net}/00-bridge.conf.bak`), MINIKUBE);
    assert.deepEqual(readdirSync(tree.net).sort(), [
      '00-bridge.conf.bak',
      '05-noname.conflist',
      '10-calico.conflist',
    ]);
    const skipped = running.logs.filter((l) => String(l['msg']).startsWith('skipping invalid CNI config'));
    assert.deepEqual(
      skipped.map((l) => [l['level'], l['file']]),
      [[40, `${tree.net}/05-noname.conflist`]],
    );
    assert.match(String(skipped[0]?.['msg']), /05-noname\.conflist: .*name/);
  } finally {
    await running.stop();
  }
});

test('our primary deleted (its CNI removed) while another valid file is there: the entry moves at once, no grace', async () => {
  const tree = makeTree();
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const other = `${tree.net}/20-flannel.conflist`;
  writeFileSync(other, JSON.stringify({ cniVersion: '0.3.1', name: 'cbr0', plugins: [{ type: 'flannel' }] }));
  // A grace far beyond the test: only the deletion itself can make the move happen now.
  const running = start(configFor(tree), createNodeFs(), { halfWrittenGraceMs: 60_000 });
  try {
    await untilReady(running, tree, file);
    rmSync(file);
    await until(tree.net, () => hasIstio(other) && running.installer.state.trackedConfig === other);
  } finally {
    await running.stop();
  }
});

test('moving to a new first file that already holds our current entry still takes the entry out of the old one', async () => {
  const { tree, file, running } = await startedOnCalico();
  try {
    const first = `${tree.net}/05-copy.conflist`;
    const copy = { ...(JSON.parse(read(file)) as object), name: 'copy-net' };
    writeFileSync(`${first}.tmp.1`, JSON.stringify(copy, null, 2));
    renameSync(`${first}.tmp.1`, first);
    await until(tree.net, () => running.installer.state.trackedConfig === first && !hasIstio(file));
    assert.deepEqual(JSON.parse(read(file)), JSON.parse(CALICO));
    assert.ok(hasIstio(first));
  } finally {
    await running.stop();
  }
});

test('cleanup touches only what is ours: a backup of a config holding our entry, and files named like ours, stay', async () => {
  const { tree, file } = await settledTree();
  const backup = `${file}.bak`;
  const backupText = read(file);
  writeFileSync(backup, backupText);
  const lookalikes = [`${tree.bin}/istio-cni-old`, `${tree.run}/istio-cni-kubeconfig.bak`];
  for (const lookalike of lookalikes) writeFileSync(lookalike, 'theirs');
  await cleanupNode(configFor(tree), createNodeFs(), pino({ level: 'silent' }), file);
  assert.equal(hasIstio(file), false);
  assert.equal(read(backup), backupText);
  for (const lookalike of lookalikes) assert.equal(read(lookalike), 'theirs', lookalike);
  assert.equal(existsSync(`${tree.bin}/istio-cni`), false);
});

test('a missing bin dir: named with its setting, watched until it appears; the entry-withdrawal warning only when an entry was taken out', async () => {
  const tree = makeTree();
  rmSync(tree.bin, { recursive: true });
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const running = start(configFor(tree));
  try {
    await until(tree.root, () =>
      logged(running, /CNI binary dir .*\/bin does not exist; create it or fix CNI_BIN_TARGET_DIRS/),
    );
    assert.ok(
      running.logs.some((l) => l['msg'] === `directory ${tree.bin} does not exist; waiting for it to appear`),
    );
    assert.equal(running.installer.state.ready, false);
    mkdirSync(tree.bin);
    await untilReady(running, tree, file);
    assert.ok(!logged(running, /took the istio-cni entry out/), 'there was no entry to take out');
  } finally {
    await running.stop();
  }
});

test('what an install writes is logged, one line each: the binaries, the runtime dir, the config; stale temps removed at start', async () => {
  const tree = makeTree();
  mkdirSync(`${tree.src}/istio-cni.d`);
  writeFileSync(`${tree.src}/istio-cni.d/ld.so`, 'loader', { mode: 0o755 });
  const stale = `${tree.run}/istio-cni-kubeconfig.tmp.0123456789ab`;
  writeFileSync(stale, 'token-foo');
  const file = `${tree.net}/10-calico.conflist`;
  writeFileSync(file, CALICO);
  const running = start(configFor(tree));
  try {
    await untilReady(running, tree, file);
    const lines = (msg: string) =>
      running.logs.filter((l) => l['msg'] === msg).map((l) => l['binary'] ?? l['file']);
    assert.deepEqual(lines('installed CNI binary').sort(), [
      `${tree.bin}/istio-cni`,
      `${tree.bin}/istio-iptables`,
    ]);
    assert.deepEqual(lines('installed CNI binary directory'), [`${tree.bin}/istio-cni.d`]);
    assert.deepEqual(lines('wrote CNI config'), [file]);
    assert.deepEqual(lines('removed stale temp file'), [stale]);
  } finally {
    await running.stop();
  }
});

test('standalone after a restart: its own file, found in place, is still ours to repair when something else lands in it', async () => {
  const tree = makeTree();
  const config = configFor(tree, { CHAINED_CNI_PLUGIN: 'false' });
  const file = `${tree.net}/YYY-istio-cni.conf`;
  const first = start(config);
  try {
    await until(tree.net, () => existsSync(file) && first.installer.state.ready);
  } finally {
    await first.stop();
  }
  const installed = read(file);
  const running = start(config);
  try {
    await until(tree.net, () => running.installer.state.ready);
    writeFileSync(`${file}.x`, JSON.stringify({ cniVersion: '0.3.1', name: 'other', type: 'bridge' }));
    renameSync(`${file}.x`, file);
    await until(tree.net, () => read(file) === installed && running.installer.state.ready);
  } finally {
    await running.stop();
  }
});

test('a symlinked conflist: once the agent is idle, the owner rewriting the real file is still seen and repaired', async () => {
  const { tree, realDir, real, link } = symlinkedCalicoTree();
  const first = start(configFor(tree));
  try {
    await untilReady(first, tree, link);
  } finally {
    await first.stop();
  }
  // A restart that finds its entry in place writes nothing: its first pass, then the one the new watch of the real
  // file's directory starts, and it is idle.
  const running = start(configFor(tree));
  try {
    await passes(running, 2);
    assert.equal(running.installer.state.ready, true);
    writeFileSync(`${real}.tmp.owner`, CALICO);
    renameSync(`${real}.tmp.owner`, real);
    await until(realDir, () => hasIstio(real));
  } finally {
    await running.stop();
  }
});

test('once the binaries are known, a file of another plugin landing in the bin dir starts no binary pass', async () => {
  const { tree, file } = await settledTree();
  const realFs = createNodeFs();
  let recording = false;
  const sourceReads: string[] = [];
  const fs: AgentFs = {
    ...realFs,
    readDir: (dir) => {
      if (recording && dir === tree.src) sourceReads.push(dir);
      return realFs.readDir(dir);
    },
  };
  const running = start(configFor(tree), fs);
  try {
    await untilReady(running, tree, file);
    recording = true;
    // The other plugin's file comes first, then a change in the net dir whose pass the test can await: had the bin
    // dir's watch still taken every name, the binaries would be checked by that pass or by one before it.
    const pass = passes(running, 1);
    writeFileSync(`${tree.bin}/other-plugin`, 'other');
    writeFileSync(`${tree.net}/99-unrelated.txt`, 'not a config');
    await pass;
    assert.deepEqual(sourceReads, []);
  } finally {
    await running.stop();
  }
});
