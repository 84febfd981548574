// The shipped executable (dist/install-cni, bun-compiled) against temp dirs: install, token rotation (kubelet's
// `..data` symlink swap), binary deleted, conflist .conf conversion, SIGTERM cleanup.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
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
import { distExecutable } from '../support/dist.ts';

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

test('dist/install-cni: install from a .conf, token rotation, binary re-copy, SIGTERM cleanup', async () => {
  const t = tree;
  rmSync(`${t.sa}/token`);
  rmSync(`${t.sa}/ca.crt`);
  projectToken(t.sa, '2026_01', 'token-one');
  symlinkSync('..data/token', `${t.sa}/token`);
  symlinkSync('..data/ca.crt', `${t.sa}/ca.crt`);
  writeFileSync(`${t.net}/10-bridge.conf`, readFileSync(`${TESTDATA}/bridge.conf`));
  const kubeconfig = `${t.run}/istio-cni-kubeconfig`;
  const agent = startAgent(
    DIST_AGENT,
    agentEnv(t, { POD_NAMESPACE: 'my-namespace', CNI_AGENT_RUN_DIR: t.run }),
  );
  try {
    await agent.waitForLog(msgIs('CNI plugin installed; ready'));
    assert.equal(existsSync(`${t.net}/10-bridge.conf`), false);
    const merged = JSON.parse(read(`${t.net}/10-bridge.conflist`)) as {
      name: string;
      plugins: { type: string }[];
    };
    assert.equal(merged.name, 'k8s-pod-network');
    assert.deepEqual(
      merged.plugins.map((p) => p.type),
      ['bridge', 'istio-cni'],
    );
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
