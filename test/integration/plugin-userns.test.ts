// hostUsers: false pods (behaviour §2.8 step 6) with the BUILT plugin: the pod netns belongs to a child user
// namespace mapping pod uids 0–65535 to host uids 100000–165535. The kernel refuses `-m owner` rules written into
// that netns from the host user namespace (EINVAL), and reads their uid in the netns's own namespace: the plugin
// must detect the owner (ioctl NS_GET_USERNS) and write the rules through `nsenter --user`. Proven by ADD/CHECK
// succeeding and by traffic: pod uid 1337 (host uid 101337) is treated as the proxy, host uid 1337 is not.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startKubeApiServer } from '../support/kube-api-server.ts';
import { authorizerFor } from '../support/rbac.ts';
import type { KubeApiServer } from '../support/kube-api-server.ts';
import { connectFrom, natRuleLines, run, runIn, startOrigDstServer } from '../support/netns.ts';
import { runPlugin } from '../support/dist.ts';
import type { ProcessRun } from '../support/dist.ts';
import type { OrigDstServer, RunResult } from '../support/netns.ts';

const HOST_UID_BASE = 100000;

let api: KubeApiServer;
let dir: string | undefined;
let netns: string;
let mounted = false;
let holder: ChildProcess | undefined;
let podIp: string;

async function must(argv: readonly string[], input?: string): Promise<RunResult> {
  const result = await run(argv, input);
  assert.equal(result.exitCode, 0, `${argv.join(' ')}: ${result.stderr}`);
  return result;
}

/** `unshare --user --net` holding the namespaces; resolves with its pid once they exist. */
function startHolder(): Promise<ChildProcess> {
  const child = spawn('unshare', ['--user', '--net', 'sh', '-c', 'echo ready; exec sleep infinity'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve(child));
    child.on('error', reject);
    child.on('close', (code) => reject(new Error(`unshare exited ${code}`)));
  });
}

function runCni(command: string, podName: string): Promise<ProcessRun> {
  return runPlugin(
    {
      CNI_COMMAND: command,
      CNI_CONTAINERID: `iu${podName}`,
      CNI_NETNS: netns,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${podName}`,
    },
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      type: 'istio-cni',
      cni_agent_run_dir: dir,
      plugin_log_level: 'debug',
      exclude_namespaces: ['kube-system'],
      pod_namespace: 'istio-system',
      prevResult: { cniVersion: '1.0.0', interfaces: [], ips: [{ address: `${podIp}/24` }] },
    }),
  );
}

const natRules = (): Promise<string> => natRuleLines(netns, 'iptables-nft-save');

before(async () => {
  api = await startKubeApiServer({ authorize: authorizerFor('base') });
  dir = mkdtempSync(path.join(os.tmpdir(), 'iu-'));
  holder = await startHolder();
  const pid = holder.pid ?? 0;
  const map = `0 ${HOST_UID_BASE} 65536\n`;
  writeFileSync(`/proc/${pid}/uid_map`, map);
  writeFileSync(`/proc/${pid}/gid_map`, map);
  netns = path.join(dir, 'net');
  writeFileSync(netns, '');
  await must(['mount', '--bind', `/proc/${pid}/ns/net`, netns]);
  mounted = true;
  // A local address for the plugin's IP detection, and lo for the in-pod connections below.
  podIp = `10.${100 + ((randomBytes(1)[0] ?? 0) % 100)}.${randomBytes(1)[0] ?? 1}.2`;
  await must(
    ['nsenter', `--net=${netns}`, 'ip', '-batch', '-'],
    `link set lo up\nlink add iu0 type veth peer name iu1\nlink set iu1 up\nlink set iu0 up\naddress add ${podIp}/24 dev iu0\n`,
  );
  writeFileSync(
    path.join(dir, 'istio-cni-kubeconfig'),
    [
      'apiVersion: v1',
      'clusters:',
      '- cluster:',
      `    certificate-authority-data: ${Buffer.from(api.caPem).toString('base64')}`,
      `    server: ${api.url}`,
      '  name: local',
      'contexts:',
      '- context:',
      '    cluster: local',
      '    user: istio-cni',
      '  name: c',
      'current-context: c',
      'kind: Config',
      'users:',
      '- name: istio-cni',
      '  user:',
      `    token: ${api.token}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
});

after(async () => {
  if (mounted) await run(['umount', netns]);
  holder?.kill('SIGKILL');
  await api?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test('the kernel refuses owner rules written from the host user namespace (why the wrap is needed)', async () => {
  const refused = await runIn(netns, [
    'iptables-nft',
    '-t',
    'filter',
    '-A',
    'OUTPUT',
    '-m',
    'owner',
    '--uid-owner',
    '1337',
    '-j',
    'RETURN',
  ]);
  assert.notEqual(refused.exitCode, 0);
  assert.match(refused.stderr, /Invalid argument/);
});

test('ADD of a meshed pod programs the rules through the user namespace; CHECK and a re-ADD agree', async () => {
  api.upsertPod({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'app-1',
      namespace: 'default',
      annotations: { 'sidecar.istio.io/status': '{"containers":["istio-proxy"]}' },
    },
    spec: {
      hostUsers: false,
      containers: [
        { name: 'app', image: 'app' },
        { name: 'istio-proxy', image: 'proxy', securityContext: { runAsUser: 1337 } },
      ],
    },
  });
  const added = await runCni('ADD', 'app-1');
  assert.equal(added.exitCode, 0, added.stdout + added.stderr);
  assert.match(added.stderr, /non-initial user namespace: writing the rules through \/proc\/\d+\/fd\/\d+/);
  const rules = await natRules();
  assert.match(rules, /-A OUTPUT -j ISTIO_OUTPUT/);
  // The kernel keeps (and shows) the uid as written in the pod's namespace.
  assert.match(rules, /-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN/);

  const checked = await runCni('CHECK', 'app-1');
  assert.equal(checked.exitCode, 0, checked.stdout + checked.stderr);
  const again = await runCni('ADD', 'app-1');
  assert.equal(again.exitCode, 0, again.stdout + again.stderr);
  assert.equal(await natRules(), rules);
});

test('the owner rules match pod uid 1337 (host uid 101337), not host uid 1337', async () => {
  // Own-address traffic over lo from the proxy's uid is the inbound hairpin (→ 15006); anyone else's goes through.
  const server: OrigDstServer = await startOrigDstServer(netns, { tcp: [15006, 8080] });
  try {
    assert.equal(await connectFrom(netns, podIp, 8080, { uid: HOST_UID_BASE + 1337 }), `15006 ${podIp} 8080`);
    assert.equal(await connectFrom(netns, podIp, 8080, { uid: 1337 }), `8080 ${podIp} 8080`);
  } finally {
    server.stop();
  }
});
