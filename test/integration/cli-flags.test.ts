// The agent's command line as an operator's DaemonSet args give it (contract.md: every setting is a flag and an env
// var, flag > env > default): the real `install-cni` process, one-shot `uninstall` on a temp tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { CALICO, NODE_AGENT, ROOT, type LogRecord } from './agent-harness.ts';
import { MESHED_POD_MANIFEST as POD } from '../unit/rules/scenarios.ts';

/** `install-cni <args>` run to its end with only `env` (and PATH) set; `input` is its stdin. */
function installCni(args: readonly string[], env: Record<string, string | undefined> = {}, input = '') {
  const [node = '', script = ''] = NODE_AGENT;
  return spawnSync(node, [script, ...args], {
    env: { PATH: process.env['PATH'], ...env },
    encoding: 'utf8',
    input,
    timeout: 60_000,
  });
}

const golden = (name: string) =>
  readFileSync(path.resolve(ROOT, `../shared/conformance/istio-plugin-goldens/${name}.txt.golden`), 'utf8');

test('setting flags reach the agent and win over env: uninstall cleans the dirs the flags name, not the env ones', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'ic-flags-'));
  try {
    const dirs = Object.fromEntries(
      ['flag-bin', 'flag-net', 'flag-run', 'env-bin', 'env-net', 'env-run'].map((name) => {
        const dir = path.join(root, name);
        mkdirSync(dir);
        return [name, dir];
      }),
    );
    for (const bin of [dirs['flag-bin'], dirs['env-bin']])
      writeFileSync(path.join(bin ?? '', 'istio-cni'), 'plugin');
    const run = installCni(
      [
        `--cni-bin-target-dirs=${dirs['flag-bin']}`,
        `--mounted-cni-net-dir=${dirs['flag-net']}`,
        `--cni-agent-run-dir=${dirs['flag-run']}`,
        'uninstall',
      ],
      {
        CNI_BIN_TARGET_DIRS: dirs['env-bin'],
        MOUNTED_CNI_NET_DIR: dirs['env-net'],
        CNI_AGENT_RUN_DIR: dirs['env-run'],
      },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.equal(
      existsSync(path.join(dirs['flag-bin'] ?? '', 'istio-cni')),
      false,
      'the flag-named binary is removed',
    );
    assert.equal(
      existsSync(path.join(dirs['env-bin'] ?? '', 'istio-cni')),
      true,
      'the env-named one is left',
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--log_output_level on the command line sets the scope levels (cni-agent:error hides a warning); an invalid one is logged, not fatal', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ic-flags-'));
  try {
    const uninstall = (...flags: string[]) => {
      const run = installCni([
        ...flags,
        `--cni-bin-target-dirs=${dir}`,
        `--mounted-cni-net-dir=${dir}`,
        `--cni-agent-run-dir=${dir}`,
        'uninstall',
      ]);
      assert.equal(run.status, 0, run.stderr);
      return run.stdout + run.stderr;
    };
    const nothing = /uninstall found nothing of istio-cni to remove/;
    assert.match(uninstall(), nothing);
    assert.doesNotMatch(uninstall('--log_output_level=cni-agent:error'), nothing);
    const invalid = uninstall('--log_output_level=default:bogus');
    assert.match(
      invalid,
      /failed to configure logging.*--log_output_level=\\"default:bogus\\": invalid level/,
    );
    assert.match(invalid, nothing);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`install-cni rules` as a process: the document on stdout, nothing on stderr, exit 0; no agent setting needed or read; ISTIO_OUTBOUND_* from its env', () => {
  // No KUBERNETES_SERVICE_HOST, and agent settings the agent would refuse: `rules` loads no agent config.
  const broken = { MONITORING_PORT: 'x', AMBIENT_ENABLED: 'true' };
  const flags = installCni(
    [
      'rules',
      '--istio-inbound-ports=*',
      '--istio-local-exclude-ports',
      '15020,15021,15090',
      '--istio-local-outbound-ports-exclude=15020',
      '--istio-service-cidr=*',
    ],
    broken,
  );
  assert.equal(flags.status, 0, flags.stderr);
  assert.equal(flags.stderr, '');
  assert.equal(flags.stdout, golden('basic'));

  const owners = installCni(['rules', '--istio-service-cidr=*'], {
    ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888',
  });
  assert.equal(owners.status, 0, owners.stderr);
  assert.match(owners.stdout, /^-A ISTIO_OUTPUT -m owner --gid-owner 888 -j RETURN$/m);
  assert.doesNotMatch(installCni(['rules', '--istio-service-cidr=*']).stdout, /--gid-owner 888/);
});

test('`install-cni rules --pod`: the manifest from the real stdin (-) or a file, JSON or YAML, gives what the plugin programs', () => {
  const fromStdin = installCni(['rules', '--pod', '-'], {}, JSON.stringify(POD));
  assert.equal(fromStdin.status, 0, fromStdin.stderr);
  assert.equal(fromStdin.stderr, '');
  assert.equal(fromStdin.stdout, golden('basic'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ic-rules-'));
  try {
    const file = path.join(dir, 'pod.yaml');
    writeFileSync(file, stringifyYaml(POD));
    const fromFile = installCni(['rules', `--pod=${file}`]);
    assert.equal(fromFile.status, 0, fromFile.stderr);
    assert.equal(fromFile.stdout, golden('basic'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`install-cni rules` errors as a process: usage errors exit 2, bad values and unreadable pods exit 1, a skipped pod exits 0; the message on stderr, stdout empty', () => {
  const unknown = installCni(['rules', '--bogus']);
  assert.equal(unknown.status, 2);
  assert.equal(unknown.stdout, '');
  assert.match(unknown.stderr, /^Error: unknown flag: --bogus\nUsage: install-cni rules /);

  const badValue = installCni(['rules', '--istio-inbound-ports=99999']);
  assert.equal(badValue.status, 1);
  assert.equal(badValue.stdout, '');
  assert.match(badValue.stderr, /^Error: invalid inbound ports include "99999"/);

  const missing = installCni(['rules', '--pod', '/nonexistent/pod.yaml']);
  assert.equal(missing.status, 1);
  assert.equal(missing.stdout, '');
  assert.equal(
    missing.stderr,
    'Error: --pod /nonexistent/pod.yaml: cannot read it: ENOENT: no such file or directory\n',
  );

  const optedOut = {
    ...POD,
    metadata: {
      ...POD.metadata,
      annotations: { ...POD.metadata.annotations, 'sidecar.istio.io/inject': 'false' },
    },
  };
  const skipped = installCni(['rules', '--pod', '-'], {}, JSON.stringify(optedOut));
  assert.equal(skipped.status, 0, skipped.stderr);
  assert.equal(skipped.stdout, '');
  assert.match(skipped.stderr, /^the plugin programs no rules for this pod: excluded due to inject-disabled/);

  const help = installCni(['rules', '--help']);
  assert.equal(help.status, 0);
  assert.equal(help.stderr, '');
  assert.match(help.stdout, /^Usage: install-cni rules /);
});

test('`install-cni uninstall` that cannot remove a file: the earlier steps done, the later ones skipped (as upstream Cleanup), the error logged with the path, exit 1', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'ic-uninstall-'));
  try {
    const [net, run, binA, binB] = ['net', 'run', 'bin-a', 'bin-b'].map((name) => {
      const dir = path.join(root, name);
      mkdirSync(dir);
      return dir;
    }) as [string, string, string, string];
    const withEntry = JSON.parse(CALICO) as { plugins: unknown[] };
    withEntry.plugins.push({ type: 'istio-cni' });
    writeFileSync(path.join(net, '10-calico.conflist'), JSON.stringify(withEntry));
    writeFileSync(path.join(run, 'istio-cni-kubeconfig'), 'kubeconfig');
    // A non-empty directory where the binary would be: unlink refuses it (EISDIR), even as root.
    mkdirSync(path.join(binA, 'istio-cni', 'sub'), { recursive: true });
    writeFileSync(path.join(binB, 'istio-cni'), 'plugin');

    const result = installCni(['--log_as_json', 'uninstall'], {
      MOUNTED_CNI_NET_DIR: net,
      CNI_AGENT_RUN_DIR: run,
      CNI_BIN_TARGET_DIRS: `${binA},${binB}`,
    });
    assert.equal(result.status, 1, result.stdout + result.stderr);
    assert.equal(result.stderr, '');
    const records = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as LogRecord);
    const failure = records.find((record) => record.msg === 'uninstall failed');
    assert.equal(failure?.['level'], 'error');
    assert.match(String(failure?.['err']), new RegExp(`EISDIR.*${path.join(binA, 'istio-cni')}`));
    // Before the failing step: the entry and the kubeconfig are gone.
    assert.deepEqual(
      JSON.parse(readFileSync(path.join(net, '10-calico.conflist'), 'utf8')),
      JSON.parse(CALICO),
    );
    assert.equal(existsSync(path.join(run, 'istio-cni-kubeconfig')), false);
    // After it: the next bin dir is not touched.
    assert.equal(readFileSync(path.join(binB, 'istio-cni'), 'utf8'), 'plugin');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
