// The lab's own safety net: a test process killed mid-run (no finally, no after) leaves containerd, its shims, a
// pod sandbox, the node netns and the lab directory behind; the next lab's reaper must remove all of it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { labProcesses, reapLabLeftovers, repoRoot, run } from '../support/lab/lab.ts';

const nodeBin = path.join(repoRoot, 'node_modules', '.bin', 'node');

/** Sandbox cgroups (runc with cgroupfs puts them under k8s.io/<sandbox id>), v1 memory hierarchy or v2. */
function sandboxCgroups(): string[] {
  for (const dir of [
    '/sys/fs/cgroup/memory/k8s.io',
    '/sys/fs/cgroup/unified/k8s.io',
    '/sys/fs/cgroup/k8s.io',
  ]) {
    if (existsSync(dir)) return readdirSync(dir).filter((d) => /^[0-9a-f]{64}$/.test(d));
  }
  return [];
}

test('a lab whose test process was killed is reaped: processes, sandbox netns, node netns, directory', async () => {
  const script = `
    import { startLab } from ${JSON.stringify(path.join(repoRoot, 'test/support/lab/lab.ts'))};
    const lab = await startLab();
    const pod = await lab.runPod({ namespace: 'default', name: 'orphan', uid: 'orphan-uid' });
    process.stdout.write(JSON.stringify({ root: lab.root, nodeNetns: lab.nodeNetns, netnsPath: pod.netnsPath }) + '\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(nodeBin, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      if (buffer.includes('\n')) resolve(buffer.split('\n')[0] ?? '');
    });
    child.once('exit', (code) => reject(new Error(`lab process exited ${code} before reporting`)));
  });
  const orphan = JSON.parse(line) as { root: string; nodeNetns: string; netnsPath: string };
  try {
    assert.ok(orphan.root.startsWith(path.join(os.tmpdir(), 'id-lab-')));
    assert.ok(existsSync(orphan.netnsPath));
    assert.ok(labProcesses(orphan.root).length >= 3, 'containerd, its shim and the sandbox run');
    const sandboxes = sandboxCgroups();

    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.ok(labProcesses(orphan.root).length > 0, 'they outlive the killed test process');

    await reapLabLeftovers();
    assert.deepEqual(labProcesses(orphan.root), []);
    assert.equal(existsSync(orphan.root), false);
    assert.ok(sandboxCgroups().length < sandboxes.length, 'the sandbox cgroup is removed');
    assert.equal(existsSync(orphan.netnsPath), false);
    const netns = await run(['ip', 'netns', 'list']);
    assert.doesNotMatch(netns.stdout, new RegExp(orphan.nodeNetns));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await reapLabLeftovers();
  }
});
