// Rule engine against the kernel (root): iptables-nft and iptables-legacy (forced), each scenario applied twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { applyCaptureRules } from '../../src/rules/apply.ts';
import { SpawnExec } from '../../src/sys/spawn-exec.ts';
import type { Exec, ExecRequest } from '../../src/sys/ports.ts';
import { runIn } from '../support/netns.ts';
import {
  registerCaptureScenarios,
  POD_CONFIG,
  withLab,
  withNumericGroups,
} from '../support/rules-scenarios.ts';

registerCaptureScenarios('iptables');

const which = (tool: string): string => execFileSync('which', [tool], { encoding: 'utf8' }).trim();

test('variant detection: a fresh netns gets iptables-nft; legacy with existing rules wins', async () => {
  await withLab({}, async (pair) => {
    const deps = { exec: new SpawnExec(), logger: pino({ level: 'silent' }) };
    await runIn(pair.pod.path, [
      'iptables-legacy',
      '-t',
      'filter',
      '-A',
      'INPUT',
      '-p',
      '255',
      '-j',
      'RETURN',
    ]);
    const outcome = await applyCaptureRules(POD_CONFIG, { netns: pair.pod.path, backend: 'iptables' }, deps);
    assert.deepEqual(outcome.variants, { v4: 'legacy' });
    assert.match((await runIn(pair.pod.path, ['iptables-legacy-save', '-t', 'nat'])).stdout, /ISTIO_OUTPUT/);
  });
  await withLab({}, async (pair) => {
    const deps = { exec: new SpawnExec(), logger: pino({ level: 'silent' }) };
    const outcome = await applyCaptureRules(POD_CONFIG, { netns: pair.pod.path, backend: 'iptables' }, deps);
    assert.deepEqual(outcome.variants, { v4: 'nft' });
  });
});

test('no iptables-nft on the node: plain iptables, a legacy one here, writes as legacy (--wait, pod-scoped lock)', async () => {
  // A PATH with the tools the engine runs, and plain iptables-* that are xtables-legacy-multi, as on a node whose
  // alternatives point at legacy and that has no iptables-nft-restore.
  const bin = mkdtempSync(path.join(tmpdir(), 'ib-plain-'));
  try {
    for (const tool of ['nsenter', 'head', 'ip']) symlinkSync(which(tool), path.join(bin, tool));
    for (const tool of ['iptables', 'iptables-save', 'iptables-restore'])
      symlinkSync(which('xtables-legacy-multi'), path.join(bin, tool));
    const spawned = new SpawnExec({ PATH: bin, LC_ALL: 'C' });
    const requests: ExecRequest[] = [];
    const exec: Exec = { run: (request) => (requests.push(request), spawned.run(request)) };
    await withLab({}, async (pair) => {
      const deps = { exec, logger: pino({ level: 'silent' }) };
      const target = { netns: pair.pod.path, backend: 'iptables', speculative: false } as const;
      const outcome = await applyCaptureRules(POD_CONFIG, target, deps);
      assert.deepEqual(outcome.variants, { v4: 'plain' });
      assert.match(
        (await runIn(pair.pod.path, ['iptables-legacy-save', '-t', 'nat'])).stdout,
        /ISTIO_OUTPUT/,
      );
      const restore = requests.find((request) => request.argv[0] === 'iptables-restore');
      assert.deepEqual(restore?.argv, ['iptables-restore', '--noflush', '--wait=30']);
      assert.deepEqual(restore?.env, { XTABLES_LOCKFILE: pair.pod.path });
    });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});

for (const variant of ['nft', 'legacy'] as const) {
  test(`${variant}: a failing apply leaves the netns as it was and names the conflict`, async () => {
    await withLab({}, async (pair) => {
      const deps = { exec: new SpawnExec(), logger: pino({ level: 'silent' }) };
      // A different earlier ruleset: ISTIO_OUTPUT exists in nat, so the TPROXY document's mangle table
      // commits and its nat table fails; the mangle part must be rolled back.
      await runIn(pair.pod.path, [`iptables-${variant}-restore`, '--noflush'], {
        input: '* nat\n-N ISTIO_OUTPUT\n-A ISTIO_OUTPUT -j RETURN\nCOMMIT\n',
      });
      const before = (await runIn(pair.pod.path, [`iptables-${variant}-save`])).stdout.replace(
        /^#.*\n/gm,
        '',
      );
      await assert.rejects(
        applyCaptureRules(
          { ...POD_CONFIG, inboundInterceptionMode: 'TPROXY' },
          { netns: pair.pod.path, backend: 'iptables', iptablesVariant: variant },
          deps,
        ),
        /different Istio iptables rules.*ISTIO/,
      );
      const after = (await runIn(pair.pod.path, [`iptables-${variant}-save`])).stdout.replace(/^#.*\n/gm, '');
      assert.doesNotMatch(after, /ISTIO_DIVERT|ISTIO_TPROXY/);
      assert.equal(
        after.replace(/\*mangle[\s\S]*?COMMIT\n/, ''),
        before.replace(/\*mangle[\s\S]*?COMMIT\n/, ''),
      );
    });
  });
}

for (const variant of ['nft', 'legacy'] as const) {
  test(`${variant}: an ISTIO* chain that is not one of ours does not stop the first ADD (upstream restores; only its -N lines could fail)`, async () => {
    await withLab({}, async (pair) => {
      const deps = { exec: new SpawnExec(), logger: pino({ level: 'silent' }) };
      await runIn(pair.pod.path, [`iptables-${variant}-restore`, '--noflush'], {
        input: '* filter\n-N ISTIO_FOO\n-A ISTIO_FOO -j RETURN\nCOMMIT\n',
      });
      // Legacy is not forced: detection picks it for the rules already there, and compares them first.
      const target = { netns: pair.pod.path, backend: 'iptables' as const };
      const outcome = await applyCaptureRules(POD_CONFIG, target, deps);
      assert.deepEqual([outcome.changed, outcome.variants], [true, { v4: variant }]);
      const saved = (await runIn(pair.pod.path, [`iptables-${variant}-save`])).stdout;
      assert.match(saved, /^-A ISTIO_OUTPUT /m);
      assert.match(saved, /^-A ISTIO_FOO -j RETURN$/m);
    });
  });
}

for (const variant of ['nft', 'legacy'] as const) {
  test(`${variant}: re-ADD after a good ADD (upstream TestIdempotentUnequaledRerun): a foreign rule in a built-in chain is a no-op, an extra rule in an ISTIO chain fails naming it`, async () => {
    await withLab({}, async (pair) => {
      const deps = { exec: new SpawnExec(), logger: pino({ level: 'silent' }) };
      const target = { netns: pair.pod.path, backend: 'iptables' as const, iptablesVariant: variant };
      const save = async () =>
        (await runIn(pair.pod.path, [`iptables-${variant}-save`, '-t', 'nat'])).stdout.replace(
          /^#.*\n/gm,
          '',
        );
      assert.equal((await applyCaptureRules(POD_CONFIG, target, deps)).changed, true);
      // Someone else's rule in nat OUTPUT: not ours to judge, the re-ADD leaves everything as it is.
      await runIn(pair.pod.path, [
        `iptables-${variant}`,
        '-t',
        'nat',
        '-A',
        'OUTPUT',
        '-p',
        '255',
        '-j',
        'RETURN',
      ]);
      const withForeign = await save();
      assert.equal((await applyCaptureRules(POD_CONFIG, target, deps)).changed, false);
      assert.equal(await save(), withForeign);
      // An extra rule in one of our chains: the rules differ, the ADD fails and says where.
      await runIn(pair.pod.path, [
        `iptables-${variant}`,
        '-t',
        'nat',
        '-A',
        'ISTIO_OUTPUT',
        '-d',
        '192.0.2.1/32',
        '-j',
        'RETURN',
      ]);
      const withExtra = await save();
      await assert.rejects(
        applyCaptureRules(POD_CONFIG, target, deps),
        /different Istio iptables rules.*chain ISTIO_OUTPUT in table nat has \d+ rules, expected \d+/,
      );
      assert.equal(await save(), withExtra);
    });
  });
}

for (const variant of ['nft', 'legacy'] as const) {
  test(`${variant}: leftovers on the IPv6 side only (upstream TestMixedIPv4Ipv6State): untouched while the pod has no IPv6; with IPv6 a foreign built-in rule is kept and an extra ISTIO rule fails, leaving both families as they were`, async () => {
    const deps = { exec: new SpawnExec(), logger: pino({ level: 'silent' }) };
    // A dual-stack pod (ISTIO_DUAL_STACK): IPv6 is programmed when the pod has an IPv6 address.
    const DUAL_STACK = { ...POD_CONFIG, dualStack: true };
    const save = async (netns: string, family: 'iptables' | 'ip6tables') =>
      (await runIn(netns, [`${family}-${variant}-save`])).stdout.replace(/^#.*\n/gm, '');
    const foreignV6 = ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '123', '-j', 'ACCEPT'];
    const istioV6 = async (netns: string) => {
      await runIn(netns, [`ip6tables-${variant}`, '-t', 'nat', '-N', 'ISTIO_INBOUND']);
      await runIn(netns, [
        `ip6tables-${variant}`,
        ...['-t', 'nat', '-A', 'ISTIO_INBOUND', '-p', 'udp', '--dport', '123', '-j', 'RETURN'],
      ]);
    };
    // No IPv6 on the pod: the IPv6 tables are not ours to touch, whatever they hold.
    await withLab({}, async (pair) => {
      const target = { netns: pair.pod.path, backend: 'iptables' as const, iptablesVariant: variant };
      await runIn(pair.pod.path, [`ip6tables-${variant}`, ...foreignV6]);
      await istioV6(pair.pod.path);
      const v6Before = await save(pair.pod.path, 'ip6tables');
      const outcome = await applyCaptureRules(POD_CONFIG, target, deps);
      assert.equal(outcome.ipv6, false);
      assert.match(await save(pair.pod.path, 'iptables'), /-A OUTPUT -j ISTIO_OUTPUT/);
      assert.equal(await save(pair.pod.path, 'ip6tables'), v6Before);
    });
    // IPv6 on: someone's rule in a built-in chain stays beside ours.
    await withLab({ ipv6: true }, async (pair) => {
      const target = { netns: pair.pod.path, backend: 'iptables' as const, iptablesVariant: variant };
      await runIn(pair.pod.path, [`ip6tables-${variant}`, ...foreignV6]);
      assert.equal((await applyCaptureRules(DUAL_STACK, target, deps)).ipv6, true);
      const v6 = await save(pair.pod.path, 'ip6tables');
      assert.match(v6, /-A OUTPUT -j ISTIO_OUTPUT/);
      assert.match(v6, /-A OUTPUT -p tcp -m tcp --dport 123 -j ACCEPT/);
    });
    // IPv6 on and an ISTIO chain there with a rule we would not write: the ADD fails; nothing is left half-applied.
    await withLab({ ipv6: true }, async (pair) => {
      const target = { netns: pair.pod.path, backend: 'iptables' as const, iptablesVariant: variant };
      await istioV6(pair.pod.path);
      // Chains and rules only: the failed restore may leave an empty nat table loaded where there was none.
      const state = async () =>
        [await save(pair.pod.path, 'iptables'), await save(pair.pod.path, 'ip6tables')].map((text) =>
          text
            .split('\n')
            .filter((line) => line.startsWith('-') || line.startsWith(':ISTIO'))
            .join('\n'),
        );
      const before = await state();
      assert.match(before[1] ?? '', /-A ISTIO_INBOUND -p udp -m udp --dport 123 -j RETURN/);
      await assert.rejects(applyCaptureRules(DUAL_STACK, target, deps), /ISTIO_INBOUND/);
      assert.deepEqual(await state(), before);
    });
  });
}

test('every iptables golden parses in iptables-restore --test (nft and legacy, both families)', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const { createPodPair } = await import('../support/netns.ts');
  const dir = fileURLToPath(new URL('../unit/rules/testdata/', import.meta.url));
  const pair = await createPodPair({ prefix: 'ib' });
  try {
    for (const name of readdirSync(dir).filter((file) => file.endsWith('.iptables.golden'))) {
      const [v4 = '', v6 = ''] = readFileSync(dir + name, 'utf8')
        .replace('# IPv4\n', '')
        .split('# IPv6\n');
      for (const variant of ['nft', 'legacy']) {
        for (const [binary, document] of [
          [`iptables-${variant}-restore`, v4],
          [`ip6tables-${variant}-restore`, v6],
        ] as const) {
          if (document === '') continue;
          const result = await runIn(pair.pod.path, [binary, '--test', '--noflush'], {
            input: withNumericGroups(document),
          });
          assert.equal(result.exitCode, 0, `${name} ${binary}: ${result.stderr}`);
        }
      }
    }
  } finally {
    await pair.destroy();
  }
});
