// npm run demo (as root): one real node on this machine — a private containerd with a bridge CNI chain, a
// Kubernetes API stand-in and our agent — then a meshed and a plain pod, their rules and a redirected connection.
// Everything it creates is removed at the end (also on Ctrl-C or failure).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { conflistPluginTypes, meshedPod, plainPod, startNode } from '../test/support/lab/node.ts';
import type { TestNode } from '../test/support/lab/node.ts';

const root = path.resolve(import.meta.dirname, '..');
const step = (text: string): void => console.log(`\n▶ ${text}`);
const show = (text: string): void => console.log(text.replace(/^/gm, '    '));

if (process.getuid?.() !== 0) {
  console.error('npm run demo needs root (containerd, network namespaces).');
  process.exit(1);
}
// The host packages first: the lab drives them, and the build compiles the plugin's static launcher with gcc.
const packages = spawnSync('bash', [path.join(root, 'scripts', 'install-host-packages.sh')], {
  stdio: 'inherit',
});
if (packages.status !== 0) process.exit(packages.status ?? 1);
if (
  !existsSync(path.join(root, 'dist', 'istio-cni.d', 'istio-cni')) ||
  !existsSync(path.join(root, 'dist', 'istio-cni')) ||
  !existsSync(path.join(root, 'dist', 'install-cni'))
) {
  step('Building dist/istio-cni and dist/install-cni');
  const built = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.ts')], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

let node: TestNode | undefined;
let closing = false;
const teardown = async (): Promise<void> => {
  if (closing) return;
  closing = true;
  step('Tearing down (containerd, sandboxes, namespaces, agent, API server)');
  await node?.close();
  console.log('    done');
};
process.on('SIGINT', () => void teardown().then(() => process.exit(130)));

try {
  step(
    'Starting a node: private containerd (CRI) + bridge/host-local/portmap chain, Kubernetes API stand-in, agent',
  );
  const started = Date.now();
  node = await startNode();
  await node.waitForChain(true);
  console.log(
    `    node up in ${Date.now() - started} ms; containerd netns ${node.lab.nodeNetns}, pod subnet ${node.lab.subnet}`,
  );
  step(`Agent merged the plugin into ${node.lab.conflistName}`);
  show(`plugins: ${conflistPluginTypes(node.lab).join(' → ')}`);

  step('Creating two pods through CRI: "productpage" (istio-proxy injected) and "plain" (no sidecar)');
  const [meshed, plain] = await Promise.all([
    node.createPod(meshedPod('default', 'productpage')),
    node.createPod(plainPod('default', 'plain')),
  ]);
  show(`productpage ${meshed.ip}   plain ${plain.ip}`);

  step('iptables nat rules inside productpage (programmed by istio-cni during the sandbox ADD)');
  show(
    (await node.natRules(meshed))
      .split('\n')
      .filter((line) => line.includes('ISTIO'))
      .join('\n'),
  );
  step('iptables nat rules inside plain');
  const plainRules = (await node.natRules(plain)).split('\n').filter((line) => line.includes('ISTIO'));
  show(plainRules.length === 0 ? '(none — left alone)' : plainRules.join('\n'));

  step(
    `Connecting to ${node.lab.gateway}:8080 (a server on the node) — listeners in the pods report SO_ORIGINAL_DST`,
  );
  await node.startNodeServer(8080);
  await node.startProbe(meshed);
  await node.startProbe(plain);
  const answer = (r: { stdout: string; stderr: string }): string => r.stdout.trim() || r.stderr.trim();
  show(`productpage app       → ${answer(await node.connectFromPod(meshed, node.lab.gateway, 8080))}`);
  show(`productpage uid 1337  → ${answer(await node.connectFromPod(meshed, node.lab.gateway, 8080, 1337))}`);
  show(`plain app             → ${answer(await node.connectFromPod(plain, node.lab.gateway, 8080))}`);
  show(`node → productpage:9080 → ${answer(await node.connectFromNode(meshed.ip, 9080))}`);
  console.log(
    '    (format: "<port that answered> <original ip> <original port>"; 15001 = outbound sidecar, 15006 = inbound)',
  );
} catch (error) {
  console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
  if (node?.agent) console.error(`agent log tail:\n${node.agent.logs().slice(-2000)}`);
  process.exitCode = 1;
} finally {
  await teardown();
}
