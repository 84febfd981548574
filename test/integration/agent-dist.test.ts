// The shipped executables against temp dirs: dist/install-cni (bun-compiled) installs, follows token rotation
// (kubelet's `..data` symlink swap), re-copies a deleted binary, converts a .conf, cleans up on SIGTERM, and relays
// what dist/istio-cni sends to its log.sock.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  CALICO,
  DIST_AGENT,
  TESTDATA,
  agentEnv,
  makeTree,
  msgIs,
  read,
  startAgent,
  until,
  type Tree,
} from './agent-harness.ts';
import { distExecutable, runPlugin } from '../support/dist.ts';

let tree: Tree;
before(() => {
  distExecutable('install-cni');
  tree = makeTree();
});
after(() => tree.remove());

/** Lays out the SA dir the way kubelet's atomic writer does: files are symlinks through `..data`. */
function projectToken(sa: string, version: string, token: string): void {
  const data = path.join(sa, `..${version}`);
  mkdirSync(data);
  writeFileSync(path.join(data, 'token'), token);
  writeFileSync(path.join(data, 'ca.crt'), readFileSync(`${TESTDATA}/kube-ca.crt`));
  symlinkSync(`..${version}`, path.join(sa, '..data_tmp'));
  renameSync(path.join(sa, '..data_tmp'), path.join(sa, '..data'));
}

test('dist/install-cni: install from a .conf, settings as flags, token rotation, binary re-copy, SIGTERM cleanup', async () => {
  const t = tree;
  rmSync(`${t.sa}/token`);
  rmSync(`${t.sa}/ca.crt`);
  projectToken(t.sa, '2026_01', 'token-one');
  symlinkSync('..data/token', `${t.sa}/token`);
  symlinkSync('..data/ca.crt', `${t.sa}/ca.crt`);
  writeFileSync(`${t.net}/10-bridge.conf`, readFileSync(`${TESTDATA}/bridge.conf`));
  const kubeconfig = `${t.run}/istio-cni-kubeconfig`;
  // Keys upstream reads only from the environment are flags too (contract.md), both spellings, over the env. A
  // --log_output_level with a typo is logged and the agent runs on with the items before it, as upstream.
  const agent = startAgent(DIST_AGENT, agentEnv(t, { CNI_AGENT_RUN_DIR: t.run }), [
    '--log_as_json',
    '--log_output_level=cni-plugin:debug,cni-agent:trace',
    '--pod-namespace',
    'my-namespace',
    '--exclude-namespaces=flagged-ns',
  ]);
  try {
    await agent.waitForLog(msgIs('CNI plugin installed; ready'));
    assert.match(
      String(agent.logs.find((record) => record.msg === 'failed to configure logging')?.['err']),
      /invalid level in "cni-agent:trace"/,
    );
    assert.equal(existsSync(`${t.net}/10-bridge.conf`), false);
    const merged = JSON.parse(read(`${t.net}/10-bridge.conflist`)) as {
      name: string;
      plugins: {
        type: string;
        pod_namespace?: string;
        exclude_namespaces?: string[];
        plugin_log_level?: string;
      }[];
    };
    assert.equal(merged.name, 'k8s-pod-network');
    assert.deepEqual(
      merged.plugins.map((p) => p.type),
      ['bridge', 'istio-cni'],
    );
    assert.equal(merged.plugins[1]?.pod_namespace, 'my-namespace');
    assert.equal(merged.plugins[1]?.plugin_log_level, 'debug');
    assert.deepEqual(merged.plugins[1]?.exclude_namespaces, ['flagged-ns']);
    assert.match(read(kubeconfig), /token: token-one\n/);

    projectToken(t.sa, '2026_02', 'token-two');
    await until(t.run, () => read(kubeconfig).includes('token: token-two'));

    rmSync(`${t.bin}/istio-cni`);
    await until(t.bin, () => existsSync(`${t.bin}/istio-cni`));
    assert.equal(read(`${t.bin}/istio-cni`), read(`${t.src}/istio-cni`));
  } finally {
    assert.equal(await agent.stop('SIGTERM'), 0);
  }
  const cleaned = JSON.parse(read(`${t.net}/10-bridge.conflist`)) as { plugins: { type: string }[] };
  assert.deepEqual(
    cleaned.plugins.map((p) => p.type),
    ['bridge'],
  );
  assert.equal(existsSync(`${t.bin}/istio-cni`), false);
  assert.equal(existsSync(kubeconfig), false);
});

test('dist/istio-cni → dist/install-cni: the plugin writes its records to log.sock and goes; the agent relays them', async () => {
  const t = makeTree();
  writeFileSync(`${t.net}/10-bridge.conf`, readFileSync(`${TESTDATA}/bridge.conf`));
  const agent = startAgent(DIST_AGENT, agentEnv(t));
  try {
    await agent.waitForLog(msgIs('CNI plugin installed; ready'));
    const result = await runPlugin(
      {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'relay1',
        CNI_NETNS: '/var/run/netns/ic-relay-none',
        CNI_IFNAME: 'eth0',
        CNI_PATH: t.bin,
        CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-relay',
      },
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'k8s-pod-network',
        type: 'istio-cni',
        cni_agent_run_dir: t.run,
        exclude_namespaces: ['kube-system'],
      }),
    );
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    const relayed = await agent.waitForLog(
      (record) => record['scope'] === 'cni-plugin' && record['pod'] === 'kube-system/coredns-relay',
    );
    assert.equal(relayed['msg'], 'skipping: excluded namespace kube-system');
    // The agent took them: nothing went to the rolling file.
    assert.equal(existsSync(`${t.run}/istio-cni.log`), false);
  } finally {
    await agent.stop('SIGTERM');
    t.remove();
  }
});

test(
  'the bin dir deleted and re-created on the host (a package upgrade): the agent sees its dead mount, cleans up and exits 1 for the kubelet to remount',
  { timeout: 30_000 },
  async () => {
    // Field lesson 28 (k8s#115629): the container keeps the deleted directory as its mount, empty and unwritable, so
    // no retry can ever install into the host's new one. The agent runs in a mount namespace of its own with the
    // "host" bin dir bind-mounted where it expects it, as a hostPath volume is.
    const t = makeTree();
    try {
      const hostBin = path.join(t.root, 'host-opt-cni-bin');
      mkdirSync(hostBin);
      writeFileSync(`${t.net}/10-calico.conflist`, CALICO);
      const agent = startAgent(
        [
          'unshare',
          '--mount',
          'sh',
          '-c',
          'mount --bind "$0" "$1" && shift && exec "$@"',
          hostBin,
          t.bin,
          ...DIST_AGENT,
        ],
        agentEnv(t),
      );
      try {
        await agent.waitForLog(msgIs('CNI plugin installed; ready'));
        assert.equal(existsSync(`${hostBin}/istio-cni`), true, 'installed through the mount');
        // Deleted while the agent cannot react: it would copy its binaries back into the emptied directory (as
        // upstream's would), and the package manager's rmdir would fail instead.
        agent.child.kill('SIGSTOP');
        rmSync(hostBin, { recursive: true });
        mkdirSync(hostBin);
        agent.child.kill('SIGCONT');
        // Bounded (exit's deadline), so that an agent that never notices fails this test instead of holding the run
        // open.
        const outcome = await agent.exit();
        assert.equal(outcome, 1, agent.stderr());
        const fatal = agent.logs.find((record) => record.msg === 'installer failed; cleaning up and exiting');
        assert.match(String(fatal?.['err']), /bin was deleted on the host while mounted here/);
        assert.deepEqual(
          JSON.parse(read(`${t.net}/10-calico.conflist`)),
          JSON.parse(CALICO),
          'the entry was taken out before the exit',
        );
      } finally {
        agent.child.kill('SIGKILL');
      }
    } finally {
      t.remove();
    }
  },
);
