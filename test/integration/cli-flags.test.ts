// The agent's command line as an operator's DaemonSet args give it (contract.md: every setting is a flag and an env
// var, flag > env > default): the real `install-cni` process, one-shot `uninstall` on a temp tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NODE_AGENT } from './agent-harness.ts';

/** `install-cni <args>` run to its end with only `env` (and PATH) set. */
function installCni(args: readonly string[], env: Record<string, string | undefined> = {}) {
  const [node = '', script = ''] = NODE_AGENT;
  return spawnSync(node, [script, ...args], {
    env: { PATH: process.env['PATH'], ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

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
