// applyCaptureRules with a recording Exec: the commands (and how few) per situation, idempotent re-ADD, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Exec, ExecRequest, ExecResult } from '../../../src/sys/ports.ts';
import {
  applyCaptureRules,
  checkCaptureRules,
  isWaitingLegacy,
  routeCommands,
  routeUndoCommands,
} from '../../../src/rules/apply.ts';
import { ExecError } from '../../../src/errors.ts';
import { buildCaptureRules } from '../../../src/rules/build.ts';
import { renderRestoreDocument } from '../../../src/rules/render-iptables.ts';
import type { CaptureConfig } from '../../../src/rules/capture-config.ts';
import { POD_DEFAULT } from './scenarios.ts';

const logger = pino({ level: 'silent' });
/** A logger that records the message of every warning (and worse). */
const recordingLogger = (messages: string[]) =>
  pino(
    { level: 'warn' },
    { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) },
  );
const NETNS = '/var/run/netns/cni-test';

const FIB_V4 = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 10.1.2.3
        /32 host LOCAL
Local:
  +-- 127.0.0.0/8 2 0 2
     |-- 127.0.0.1
        /32 host LOCAL
`;
const INET6_LINK_LOCAL =
  'fe800000000000000000000000000001 02 40 20 80     eth0\n00000000000000000000000000000001 01 80 10 80       lo\n';
const INET6_GLOBAL = 'fd000000000000000000000000000002 02 40 00 80     eth0\n';

function probe(options: { legacy?: string; fib?: string; inet6?: string } = {}): string {
  return [
    `==> /proc/net/ip_tables_names <==\n${options.legacy ?? ''}`,
    '==> /proc/net/ip6_tables_names <==',
    `==> /proc/net/if_inet6 <==\n${options.inet6 ?? INET6_LINK_LOCAL}`,
    `==> /proc/net/fib_trie <==\n${options.fib ?? FIB_V4}`,
  ].join('\n');
}

type Responder = (request: ExecRequest) => ExecResult | Promise<ExecResult>;

class RecordingExec implements Exec {
  readonly requests: ExecRequest[] = [];
  readonly #respond: Responder;
  constructor(respond: Responder) {
    this.#respond = respond;
  }
  async run(request: ExecRequest): Promise<ExecResult> {
    this.requests.push(request);
    return this.#respond(request);
  }
}

const ok = (stdout = ''): ExecResult => ({ exitCode: 0, stdout, stderr: '' });
const PROBE =
  'head -n 100000 /proc/net/ip_tables_names /proc/net/ip6_tables_names /proc/net/if_inet6 /proc/net/fib_trie';

/** Applies the default rules in a netns whose probe lists a legacy filter table and whose legacy save prints
 * `save`. */
async function applyOverLegacyTables(save: string) {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe({ legacy: 'filter\n' }));
    if (r.argv[0] === 'iptables-legacy-save') return ok(save);
    return ok();
  });
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  return { exec, outcome };
}

test('fresh netns, IPv4 pod: two spawns (the IPv4 restore runs alongside the probe), nothing else', async () => {
  const exec = new RecordingExec((r) => (r.argv[0] === 'head' ? ok(probe()) : ok()));
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  assert.deepEqual(outcome, { changed: true, ipv6: false, variants: { v4: 'nft' } });
  assert.deepEqual(
    exec.requests.map((r) => r.argv.join(' ')),
    [
      'iptables-nft-restore --noflush',
      'head -n 100000 /proc/net/ip_tables_names /proc/net/ip6_tables_names /proc/net/if_inet6 /proc/net/fib_trie',
    ],
  );
  assert.equal(exec.requests[0]?.input, renderRestoreDocument(buildCaptureRules(POD_DEFAULT).rules.v4));
  assert.ok(exec.requests.every((r) => r.netns === NETNS));
});

test('with an in-process /proc/net reader: one spawn (the restore), the probe asked for the pod netns', async () => {
  const exec = new RecordingExec(() => ok());
  const asked: string[] = [];
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    {
      exec,
      logger,
      readProcNet: (netns, names) => {
        asked.push(`${netns}: ${names.join(' ')}`);
        return Promise.resolve(
          new Map([
            ['fib_trie', FIB_V4],
            ['if_inet6', INET6_LINK_LOCAL],
            ['ip_tables_names', ''],
          ]),
        );
      },
    },
  );
  assert.deepEqual(outcome, { changed: true, ipv6: false, variants: { v4: 'nft' } });
  assert.deepEqual(asked, [`${NETNS}: ip_tables_names ip6_tables_names if_inet6 fib_trie`]);
  assert.deepEqual(
    exec.requests.map((r) => r.argv.join(' ')),
    ['iptables-nft-restore --noflush'],
  );
});

test('in-process /proc/net reader without fib_trie (netns gone mid-way) → NETNS error, the speculative restore taken back', async () => {
  const exec = new RecordingExec(() => ok());
  await assert.rejects(
    applyCaptureRules(
      POD_DEFAULT,
      { netns: NETNS, backend: 'iptables' },
      { exec, logger, readProcNet: () => Promise.resolve(new Map()) },
    ),
    (error: unknown) => error instanceof ExecError && error.code === 'NETNS' && error.message.includes(NETNS),
  );
  assert.deepEqual(
    exec.requests.map((r) => r.argv.join(' ')),
    ['iptables-nft-restore --noflush', 'iptables-nft-restore --noflush'],
  );
  assert.match(exec.requests[1]?.input ?? '', /^-D /m);
});

test('legacy with existing rules: legacy save decides, restore runs with --wait and the pod-scoped lock', async () => {
  const { exec, outcome } = await applyOverLegacyTables(
    '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j RETURN\nCOMMIT\n',
  );
  assert.deepEqual(outcome.variants, { v4: 'legacy' });
  const restore = exec.requests.at(-1);
  assert.deepEqual(restore?.argv, ['iptables-legacy-restore', '--noflush', '--wait=30']);
  assert.deepEqual(restore?.env, { XTABLES_LOCKFILE: NETNS });
});

test('IPv6-only pod: ip6tables document and ::6 on lo; dual-stack decides with both families', async () => {
  const exec = new RecordingExec((r) =>
    r.argv[0] === 'head' ? ok(probe({ fib: '', inet6: INET6_GLOBAL })) : ok(),
  );
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  assert.equal(outcome.ipv6, true);
  assert.deepEqual(
    exec.requests.map((r) => r.argv[0]),
    ['iptables-nft-restore', 'head', 'ip6tables-nft-restore', 'ip'],
  );
  assert.equal(exec.requests.at(-1)?.input, 'address replace ::6/128 dev lo\n');

  const both = probe({ inet6: INET6_GLOBAL });
  const single = new RecordingExec((r) => (r.argv[0] === 'head' ? ok(both) : ok()));
  assert.equal(
    (await applyCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec: single, logger }))
      .ipv6,
    false,
  );
  const dual = new RecordingExec((r) => (r.argv[0] === 'head' ? ok(both) : ok()));
  const dualOutcome = await applyCaptureRules(
    { ...POD_DEFAULT, dualStack: true },
    { netns: NETNS, backend: 'iptables' },
    { exec: dual, logger },
  );
  assert.equal(dualOutcome.ipv6, true);
});

test('no usable local address: error, and the speculative IPv4 restore is taken back', async () => {
  const exec = new RecordingExec(() => ok(probe({ fib: '', inet6: INET6_LINK_LOCAL })));
  await assert.rejects(
    applyCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec, logger }),
    /no valid local IP address found/,
  );
  assert.equal(exec.requests.length, 3);
  assert.match(
    exec.requests.at(-1)?.input ?? '',
    /^\* nat\n-D PREROUTING -p tcp -j ISTIO_INBOUND\n[\s\S]*-X ISTIO_OUTPUT\nCOMMIT\n$/,
  );
  const careful = new RecordingExec(() => ok(probe({ fib: '', inet6: INET6_LINK_LOCAL })));
  await assert.rejects(
    applyCaptureRules(
      POD_DEFAULT,
      { netns: NETNS, backend: 'iptables', speculative: false },
      { exec: careful, logger },
    ),
    /no valid local IP address found/,
  );
  assert.equal(careful.requests.length, 1);
});

test('legacy rules found after a speculative nft restore: nft part undone, legacy used', async () => {
  const { exec, outcome } = await applyOverLegacyTables('*filter\n-A INPUT -j RETURN\nCOMMIT\n');
  assert.deepEqual(outcome.variants, { v4: 'legacy' });
  const order = exec.requests.map((r) => `${r.argv[0]}${r.input?.includes('-D ') ? ' (undo)' : ''}`);
  assert.deepEqual(order, [
    'iptables-nft-restore',
    'head',
    'iptables-legacy-save',
    'iptables-nft-restore (undo)',
    'iptables-legacy-restore',
  ]);
});

test('invalid config fails before any command runs', async () => {
  const exec = new RecordingExec(() => ok(probe()));
  await assert.rejects(
    applyCaptureRules(
      { ...POD_DEFAULT, excludeInterfaces: 'a b' },
      { netns: NETNS, backend: 'iptables' },
      { exec, logger },
    ),
    /excluded interfaces/,
  );
  assert.equal(exec.requests.length, 0);
});

test('re-ADD: restore fails on existing chains, identical rules → no-op (one -C document)', async () => {
  const save = savedWithPlannedShape();
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'iptables-nft-save') return ok(save);
    if (r.input?.startsWith('* nat\n-N'))
      return {
        exitCode: 1,
        stdout: '',
        stderr: 'iptables-nft-restore: line 2 failed: Chain already exists.\n',
      };
    return ok();
  });
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  assert.equal(outcome.changed, false);
  const check = exec.requests.at(-1);
  assert.match(check?.input ?? '', /^\* nat\n-C ISTIO_INBOUND -p tcp --dport 15008 -j RETURN\n/);
  assert.equal(exec.requests.length, 4);
});

test('missing binaries: nft names the package; iptables-nft falls back to plain iptables-restore', async () => {
  const nft = new RecordingExec((r) => {
    if (r.argv[0] === 'nft')
      throw new ExecError('BINARY_MISSING', 'required binary "nft" is missing (Debian package: nftables)');
    return ok(probe());
  });
  await assert.rejects(
    applyCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'nftables' }, { exec: nft, logger }),
    /nativeNftables is enabled, but the nft binary is missing.*nftables/,
  );
  const plain = new RecordingExec((r) => {
    if (r.argv[0] === 'iptables-nft-restore') throw new ExecError('BINARY_MISSING', 'missing');
    return ok(probe());
  });
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec: plain, logger },
  );
  assert.deepEqual(outcome.variants, { v4: 'plain' });
  assert.equal(plain.requests.at(-1)?.argv[0], 'iptables-restore');
});

test('restore failure: error carries stderr in the xtables wording', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'iptables-nft-save') return ok('');
    return {
      exitCode: 2,
      stdout: '',
      stderr: "iptables-nft-restore: Couldn't load target `TPROXY'\nError occurred at line: 7\n",
    };
  });
  await assert.rejects(
    applyCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec, logger }),
    (error: unknown) => {
      assert.equal(
        (error as Error).message,
        "xtables parameter problem: Couldn't load target `TPROXY'\nError occurred at line: 7 (iptables-nft-restore, v4)",
      );
      return true;
    },
  );
});

test('routes: TPROXY policy routing per family (delete-then-add keeps one rule), nothing for REDIRECT IPv4', () => {
  assert.deepEqual(routeCommands(POD_DEFAULT, false), { inet: [], inet6: [] });
  assert.deepEqual(routeCommands({ ...POD_DEFAULT, inboundInterceptionMode: 'TPROXY' }, true), {
    inet: [
      'address replace ::6/128 dev lo',
      'rule del fwmark 1337 lookup 133',
      'rule add fwmark 1337 lookup 133',
      'route replace local 0.0.0.0/0 dev lo table 133',
    ],
    inet6: [
      'rule del fwmark 1337 lookup 133',
      'rule add fwmark 1337 lookup 133',
      'route replace local ::/0 dev lo table 133',
    ],
  });
  assert.deepEqual(
    routeCommands({ ...POD_DEFAULT, inboundInterceptionMode: 'TPROXY', inboundPortsInclude: '' }, false),
    {
      inet: [],
      inet6: [],
    },
  );
});

test('checkCaptureRules reports missing rules', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'iptables-nft-save') return ok('');
    return ok();
  });
  await assert.rejects(
    checkCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec, logger }),
    /table nat is missing/,
  );
});

test('speculative restore that fell back to plain iptables-restore is kept (not redone)', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'iptables-nft-restore') throw new ExecError('BINARY_MISSING', 'missing');
    return ok(probe());
  });
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  assert.deepEqual(outcome.variants, { v4: 'plain' });
  assert.deepEqual(
    exec.requests.map((r) => r.argv[0]),
    ['iptables-nft-restore', 'head', 'iptables-save', 'iptables-restore'],
  );
});

/** Each request as `argv` plus what its input does: `(undo)` for an iptables undo document, else the input's
 * first line. */
function trace(exec: RecordingExec): string[] {
  return exec.requests.map((r) => {
    const input = r.input ?? '';
    const what = /^-D /m.test(input) ? ' (undo)' : input === '' ? '' : ` < ${input.split('\n')[0]}`;
    return `${r.argv.join(' ')}${what}`;
  });
}

const TIMED_OUT = (name: string) => new ExecError('EXEC_FAILED', `${name} timed out after 60000 ms`);

for (const [what, config, inet6, save] of [
  ['IPv4 pod whose legacy save fails', POD_DEFAULT, INET6_LINK_LOCAL, 'iptables-legacy-save'],
  [
    'dual-stack pod whose IPv6 legacy save fails',
    { ...POD_DEFAULT, dualStack: true },
    INET6_GLOBAL,
    'ip6tables-legacy-save',
  ],
] as const) {
  test(`${what} after the speculative IPv4 restore: that restore is taken back`, async () => {
    // Legacy tables listed for the failing family only.
    const legacy = save.startsWith('ip6') ? { v4: '', v6: 'nat' } : { v4: 'nat\n', v6: '' };
    const exec = new RecordingExec((r) => {
      if (r.argv[0] === 'head')
        return ok(
          probe({ legacy: legacy.v4, inet6 }).replace(
            'ip6_tables_names <==',
            `ip6_tables_names <==\n${legacy.v6}`,
          ),
        );
      if (r.argv[0] === save) throw TIMED_OUT(save);
      return ok();
    });
    await assert.rejects(
      applyCaptureRules(config, { netns: NETNS, backend: 'iptables' }, { exec, logger }),
      new RegExp(`${save} timed out`),
    );
    assert.deepEqual(trace(exec), [
      'iptables-nft-restore --noflush < * nat',
      PROBE,
      save,
      'iptables-nft-restore --noflush (undo)',
    ]);
  });
}

const TPROXY_POD = { ...POD_DEFAULT, inboundInterceptionMode: 'TPROXY' as const };

/** What a kill at the exec timeout throws: the command ran, and may have done part of its work. */
const KILLED = (name: string) =>
  new ExecError('EXEC_FAILED', `${name} timed out after 60000 ms`, { timedOut: true });
/** A save after a restore that committed the mangle table of TPROXY_POD's IPv4 rules, not the nat table. */
const MANGLE_COMMITTED = [
  '*mangle',
  ':PREROUTING ACCEPT [0:0]',
  ':ISTIO_DIVERT - [0:0]',
  ':ISTIO_INBOUND - [0:0]',
  ':ISTIO_TPROXY - [0:0]',
  '-A PREROUTING -p tcp -j ISTIO_INBOUND',
  'COMMIT',
  '*nat',
  ':OUTPUT ACCEPT [0:0]',
  'COMMIT',
  '',
].join('\n');

/** The tables an undo document takes back. */
const undoneTables = (exec: RecordingExec) =>
  exec.requests
    .filter((r) => /^-D /m.test(r.input ?? ''))
    .map((r) => [...(r.input ?? '').matchAll(/^\* (\w+)$/gm)].map((m) => m[1]));

/** A legacy save that holds a rule: legacy decides the variant. */
const LEGACY_FILTER_RULES = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n';

/** Applies `config` expecting the ADD to fail with `expected`; returns the commands and the warnings logged. */
async function failingApply(
  config: CaptureConfig,
  backend: 'iptables' | 'nftables',
  respond: Responder,
  expected: RegExp,
): Promise<{ exec: RecordingExec; warnings: string[] }> {
  const warnings: string[] = [];
  const exec = new RecordingExec(respond);
  await assert.rejects(
    applyCaptureRules(config, { netns: NETNS, backend }, { exec, logger: recordingLogger(warnings) }),
    expected,
  );
  return { exec, warnings };
}

test('a restore killed at its timeout after committing mangle: mangle is taken back (read from a save), not nat', async () => {
  const { exec, warnings } = await failingApply(
    TPROXY_POD,
    'iptables',
    (r) => {
      if (r.argv[0] === 'head') return ok(probe());
      if (r.argv[0] === 'iptables-nft-restore' && !/^-D /m.test(r.input ?? ''))
        throw KILLED('iptables-nft-restore');
      if (r.argv[0] === 'iptables-nft-save') return ok(MANGLE_COMMITTED);
      return ok();
    },
    /iptables-nft-restore timed out after 60000 ms/,
  );
  assert.deepEqual(trace(exec), [
    'iptables-nft-restore --noflush < * mangle',
    PROBE,
    'iptables-nft-save',
    'iptables-nft-restore --noflush (undo)',
  ]);
  assert.deepEqual(undoneTables(exec), [['mangle']]);
  assert.deepEqual(warnings, []);
});

test('a legacy restore killed at its timeout before any commit: nothing to take back, no warning', async () => {
  const { exec, warnings } = await failingApply(
    POD_DEFAULT,
    'iptables',
    (r) => {
      if (r.argv[0] === 'head') return ok(probe({ legacy: 'filter\n' }));
      if (r.argv[0] === 'iptables-legacy-save') return ok(LEGACY_FILTER_RULES);
      if (r.argv[0] === 'iptables-legacy-restore') throw KILLED('iptables-legacy-restore');
      return ok();
    },
    /iptables-legacy-restore timed out/,
  );
  // The speculative nft restore is taken back as legacy rules decide the variant; the killed legacy restore had
  // committed nothing (no ISTIO chain in the save), so it has no undo.
  assert.deepEqual(trace(exec), [
    'iptables-nft-restore --noflush < * nat',
    PROBE,
    'iptables-legacy-save',
    'iptables-nft-restore --noflush (undo)',
    'iptables-legacy-restore --noflush --wait=30 < * nat',
    'iptables-legacy-save',
  ]);
  assert.deepEqual(warnings, []);
});

test('a speculative restore killed at its timeout, then legacy rules found: what it committed is taken back, legacy used', async () => {
  const natCommitted =
    '*nat\n:OUTPUT ACCEPT [0:0]\n:ISTIO_OUTPUT - [0:0]\n-A OUTPUT -j ISTIO_OUTPUT\nCOMMIT\n';
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe({ legacy: 'filter\n' }));
    if (r.argv[0] === 'iptables-legacy-save') return ok(LEGACY_FILTER_RULES);
    if (r.argv[0] === 'iptables-nft-save') return ok(natCommitted);
    if (r.argv[0] === 'iptables-nft-restore' && !/^-D /m.test(r.input ?? ''))
      throw KILLED('iptables-nft-restore');
    return ok();
  });
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  assert.deepEqual(outcome.variants, { v4: 'legacy' });
  assert.deepEqual(trace(exec), [
    'iptables-nft-restore --noflush < * nat',
    PROBE,
    'iptables-legacy-save',
    'iptables-nft-save',
    'iptables-nft-restore --noflush (undo)',
    'iptables-legacy-restore --noflush --wait=30 < * nat',
  ]);
  assert.deepEqual(undoneTables(exec), [['nat']]);
});

test('a restore that failed without running (not killed) is not followed by a save or an undo', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'iptables-nft-restore')
      throw new ExecError('EXEC_FAILED', 'failed to start iptables-nft-restore: EACCES');
    return ok();
  });
  await assert.rejects(
    applyCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec, logger }),
    /EACCES/,
  );
  assert.deepEqual(trace(exec), ['iptables-nft-restore --noflush < * nat', PROBE]);
});

test('a killed restore whose save then fails: the ADD still fails with the timeout, the rollback failure is a warning', async () => {
  const { warnings } = await failingApply(
    POD_DEFAULT,
    'iptables',
    (r) => {
      if (r.argv[0] === 'head') return ok(probe());
      if (r.argv[0] === 'iptables-nft-restore') throw KILLED('iptables-nft-restore');
      if (r.argv[0] === 'iptables-nft-save') return { exitCode: 1, stdout: '', stderr: 'boom\n' };
      return ok();
    },
    /iptables-nft-restore timed out/,
  );
  assert.deepEqual(warnings, ['rollback of a restore killed at its timeout failed']);
});

test('a killed restore on a netns that holds the whole ruleset (an earlier ADD’s, or all of this one): nothing is undone', async () => {
  const whole = savedAfter(renderRestoreDocument(buildCaptureRules(TPROXY_POD).rules.v4));
  for (const save of [whole, whole.replace('COMMIT', ':ISTIO_OTHER - [0:0]\nCOMMIT')]) {
    const { exec, warnings } = await failingApply(
      TPROXY_POD,
      'iptables',
      (r) => {
        if (r.argv[0] === 'head') return ok(probe());
        if (r.argv[0] === 'iptables-nft-restore') throw KILLED('iptables-nft-restore');
        if (r.argv[0] === 'iptables-nft-save') return ok(save);
        return ok();
      },
      /iptables-nft-restore timed out/,
    );
    assert.deepEqual(trace(exec), ['iptables-nft-restore --noflush < * mangle', PROBE, 'iptables-nft-save']);
    assert.deepEqual(warnings, []);
  }
});

test('nftables backend: a create transaction killed at its timeout is followed by a removal of its tables', async () => {
  for (const [removal, expectedWarnings] of [
    // Killed before the commit: the tables are absent and nft refuses the removal; nothing to warn about.
    [{ exitCode: 1, stdout: '', stderr: 'Error: Could not process rule: No such file or directory\n' }, []],
    // Killed after the commit: the removal takes them back.
    [ok(), []],
    // Any other removal failure is a warning.
    [
      { exitCode: 1, stdout: '', stderr: 'Error: Operation not permitted\n' },
      ['rollback of the nft tables failed'],
    ],
  ] as const) {
    const { exec, warnings } = await failingApply(
      TPROXY_POD,
      'nftables',
      (r) => {
        if (r.argv[0] === 'head') return ok(probe());
        if ((r.input ?? '').startsWith('create table')) throw KILLED('nft -f -');
        if ((r.input ?? '').startsWith('delete table')) return removal;
        return ok();
      },
      /nft -f - timed out/,
    );
    assert.deepEqual(trace(exec), [
      PROBE,
      'nft -f - < create table inet istio-proxy-mangle',
      'nft -f - < delete table inet istio-proxy-mangle',
    ]);
    assert.deepEqual(warnings, expectedWarnings);
  }
});

const IP_FAILS: ExecResult = {
  exitCode: 2,
  stdout: '',
  stderr: 'RTNETLINK answers: Operation not permitted\n',
};

test('nftables backend: routes that fail after the nft commit take the tables back, then the routes', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'ip' && (r.input ?? '').includes('rule add')) return IP_FAILS;
    return ok();
  });
  await assert.rejects(
    applyCaptureRules(TPROXY_POD, { netns: NETNS, backend: 'nftables' }, { exec, logger }),
    /failed to configure routes: RTNETLINK answers: Operation not permitted/,
  );
  assert.deepEqual(trace(exec), [
    PROBE,
    'nft -f - < create table inet istio-proxy-mangle',
    'ip -force -batch - < rule del fwmark 1337 lookup 133',
    'ip -force -batch - < rule del fwmark 1337 lookup 133',
    'nft -f - < delete table inet istio-proxy-mangle',
  ]);
  assert.equal(
    exec.requests[4]?.input,
    'delete table inet istio-proxy-mangle\ndelete table inet istio-proxy-nat\n',
  );
  assert.equal(
    exec.requests[3]?.input,
    'rule del fwmark 1337 lookup 133\nroute del local 0.0.0.0/0 dev lo table 133\n',
  );
});

test('iptables backend: a failing IPv6 route batch takes back the IPv4 routes and both families’ rules', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe({ inet6: INET6_GLOBAL }));
    if (r.argv.join(' ') === 'ip -6 -force -batch -' && !(r.input ?? '').includes(' del local'))
      return IP_FAILS;
    return ok();
  });
  await assert.rejects(
    applyCaptureRules(
      { ...TPROXY_POD, dualStack: true },
      { netns: NETNS, backend: 'iptables' },
      { exec, logger },
    ),
    /failed to configure routes/,
  );
  const steps = trace(exec);
  assert.deepEqual(steps.slice(-4), [
    'ip -force -batch - < address del ::6/128 dev lo',
    'ip -6 -force -batch - < rule del fwmark 1337 lookup 133',
    'iptables-nft-restore --noflush (undo)',
    'ip6tables-nft-restore --noflush (undo)',
  ]);
  assert.deepEqual(routeUndoCommands({ ...TPROXY_POD, dualStack: true }, true), {
    inet: [
      'address del ::6/128 dev lo',
      'rule del fwmark 1337 lookup 133',
      'route del local 0.0.0.0/0 dev lo table 133',
    ],
    inet6: ['rule del fwmark 1337 lookup 133', 'route del local ::/0 dev lo table 133'],
  });
});

test('re-ADD on nftables: the existing tables are replaced; failing routes then take back nothing', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'nft' && (r.input ?? '').startsWith('create table'))
      return { exitCode: 1, stdout: '', stderr: 'Error: Could not process rule: File exists\n' };
    if (r.argv[0] === 'ip') return IP_FAILS;
    return ok();
  });
  await assert.rejects(
    applyCaptureRules(TPROXY_POD, { netns: NETNS, backend: 'nftables' }, { exec, logger }),
    /failed to configure routes/,
  );
  assert.deepEqual(trace(exec), [
    PROBE,
    'nft -f - < create table inet istio-proxy-mangle',
    'nft -f - < add table inet istio-proxy-mangle',
    'ip -force -batch - < rule del fwmark 1337 lookup 133',
  ]);
});

/** What iptables-save shows after `document` was restored (the state parser counts ISTIO chains and rules). */
function savedAfter(document: string): string {
  return document
    .split('\n')
    .map((line) =>
      line
        .replace(/^\* /, '*')
        .replace(/^-N (\S+)$/, ':$1 - [0:0]')
        .replace(/^-I (\S+) \d+ /, '-A $1 '),
    )
    .join('\n');
}

test('re-ADD on iptables (identical rules already there): failing routes take back nothing', async () => {
  const saved = savedAfter(renderRestoreDocument(buildCaptureRules(TPROXY_POD).rules.v4));
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe({ legacy: 'nat\nmangle\n' }));
    if (r.argv[0] === 'iptables-legacy-save') return ok(saved);
    if (r.argv[0] === 'ip') return IP_FAILS;
    return ok();
  });
  await assert.rejects(
    applyCaptureRules(
      TPROXY_POD,
      { netns: NETNS, backend: 'iptables', speculative: false },
      { exec, logger },
    ),
    /failed to configure routes/,
  );
  assert.deepEqual(
    trace(exec).map((line) => line.split(' < ')[0]),
    [PROBE, 'iptables-legacy-save', 'iptables-legacy-restore --noflush --wait=30', 'ip -force -batch -'],
  );
});

/** Applies POD_DEFAULT where iptables-nft-restore fails with `stderr` (no usable nf_tables) and the plain binary
 * says it is legacy. */
async function applyWithoutNfTables(stderr: string) {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'iptables-nft-restore') return { exitCode: 1, stdout: '', stderr };
    if (r.argv.join(' ') === 'iptables-save --version') return ok('iptables-save v1.8.9 (legacy)\n');
    return ok(probe());
  });
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  return { exec, outcome };
}

test('iptables-nft present but the kernel has no nf_tables: plain iptables-restore is used, as upstream', async () => {
  const { exec, outcome } = await applyWithoutNfTables(
    'iptables-nft-restore: Could not fetch rule set generation id: Invalid argument\n',
  );
  assert.deepEqual(outcome, { changed: true, ipv6: false, variants: { v4: 'plain' } });
  // Plain iptables is legacy there: it writes as legacy does, never on the node-wide xtables lock (§2.8 step 6).
  assert.deepEqual(trace(exec), [
    'iptables-nft-restore --noflush < * nat',
    PROBE,
    'iptables-save --version',
    'iptables-restore --noflush --wait=30 < * nat',
  ]);
  assert.deepEqual(exec.requests.at(-1)?.env, { XTABLES_LOCKFILE: NETNS });
});

test('the plain candidate writes as legacy only when its version says legacy ≥ 1.6.2, as upstream detects it', () => {
  assert.equal(isWaitingLegacy('iptables-save v1.8.9 (legacy)\n'), true);
  assert.equal(isWaitingLegacy('iptables-save v1.6.2\n'), true);
  assert.equal(isWaitingLegacy('iptables-save v1.6.1\n'), false);
  assert.equal(isWaitingLegacy('iptables-save v1.8.9 (nf_tables)\n'), false);
  // A save that prints no version is legacy 0.0.0 upstream: no --wait.
  assert.equal(isWaitingLegacy('iptables-save: unrecognized option --version\n'), false);
});

test('a netns without IPv6 (head exits 1: no if_inet6, no ip6_tables_names): IPv4 rules only', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] !== 'head') return ok();
    return {
      exitCode: 1,
      stdout: `==> /proc/net/ip_tables_names <==\n\n==> /proc/net/fib_trie <==\n${FIB_V4}`,
      stderr:
        "head: cannot open '/proc/net/ip6_tables_names' for reading: No such file or directory\nhead: cannot open '/proc/net/if_inet6' for reading: No such file or directory\n",
    };
  });
  const outcome = await applyCaptureRules(
    { ...POD_DEFAULT, dualStack: true },
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  assert.deepEqual(outcome, { changed: true, ipv6: false, variants: { v4: 'nft' } });
  assert.deepEqual(trace(exec), ['iptables-nft-restore --noflush < * nat', PROBE]);
});

test('CHECK on a kernel without nf_tables reads the rules with plain iptables, as ADD wrote them', async () => {
  const saved = savedAfter(renderRestoreDocument(buildCaptureRules(POD_DEFAULT).rules.v4));
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'iptables-nft-save')
      return {
        exitCode: 1,
        stdout: '',
        stderr: 'iptables-nft-save: Could not fetch rule set generation id\n',
      };
    if (r.argv.join(' ') === 'iptables-save --version') return ok('iptables-save v1.8.9 (legacy)\n');
    if (r.argv[0] === 'iptables-save') return ok(saved);
    return ok();
  });
  await checkCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec, logger });
  assert.deepEqual(
    exec.requests.map((r) => r.argv.join(' ')),
    [
      PROBE,
      'iptables-nft-save',
      'iptables-save --version',
      'iptables-save',
      'iptables-restore --noflush --wait=30',
    ],
  );
});

test('no ip binary: the ADD fails as a routes failure naming it, and the rules are taken back', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'ip') throw new ExecError('BINARY_MISSING', 'required binary "ip" is missing');
    return ok(probe());
  });
  await assert.rejects(
    applyCaptureRules(TPROXY_POD, { netns: NETNS, backend: 'iptables' }, { exec, logger }),
    /^ExecError: failed to configure routes: required binary "ip" is missing/,
  );
  assert.equal(trace(exec).at(-1), 'iptables-nft-restore --noflush (undo)');
});

/** A save of the nat table with the planned ISTIO chains and as many rules in each as planned (their text aside). */
function savedWithPlannedShape(): string {
  const document = renderRestoreDocument(buildCaptureRules(POD_DEFAULT).rules.v4);
  const chains = ['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT'];
  const counts: Record<string, number> = {};
  for (const line of document.split('\n')) {
    const chain = /^-A (ISTIO\S+)/.exec(line)?.[1];
    if (chain !== undefined) counts[chain] = (counts[chain] ?? 0) + 1;
  }
  return `*nat\n${chains.map((c) => `:${c} - [0:0]`).join('\n')}\n${chains
    .flatMap((c) => Array.from({ length: counts[c] ?? 0 }, () => `-A ${c} -j RETURN`))
    .join('\n')}\nCOMMIT\n`;
}

test('re-ADD and CHECK with the same chains and rule counts but one rule different: the -C check names it, both fail', async () => {
  const respond: Responder = (r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'iptables-nft-save') return ok(savedWithPlannedShape());
    if (r.input?.startsWith('* nat\n-N'))
      return {
        exitCode: 1,
        stdout: '',
        stderr: 'iptables-nft-restore: line 2 failed: Chain already exists.\n',
      };
    if (r.input?.startsWith('* nat\n-C'))
      return { exitCode: 1, stdout: '', stderr: 'iptables-nft-restore: line 3 failed: Bad rule.\n' };
    return ok();
  };
  const checkLine = (exec: RecordingExec) =>
    exec.requests.find((r) => r.input?.startsWith('* nat\n-C'))?.input?.split('\n')[2];
  const add = new RecordingExec(respond);
  await assert.rejects(
    applyCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec: add, logger }),
    (error: Error) =>
      /^pod netns already has different Istio iptables rules/.test(error.message) &&
      error.message.includes(`rule not present: ${checkLine(add)}`),
  );
  const check = new RecordingExec(respond);
  await assert.rejects(
    checkCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec: check, logger }),
    (error: Error) => error.message.includes(`rule not present: ${checkLine(check)}`),
  );
});

test('legacy tables that hold no rules (only policies) do not make the pod legacy: nft is kept', async () => {
  const { exec, outcome } = await applyOverLegacyTables('*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n');
  assert.deepEqual(outcome.variants, { v4: 'nft' });
  assert.equal(exec.requests.filter((r) => r.argv[0] === 'iptables-legacy-restore').length, 0);
});

test('no head in the pod netns: addresses from ip, and legacy detection still runs its save', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') throw new ExecError('BINARY_MISSING', 'required binary "head" is missing');
    if (r.argv[0] === 'ip' && r.argv.includes('addr'))
      return ok('1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 10.1.2.3/24 scope global eth0\n');
    if (r.argv[0] === 'iptables-legacy-save') return ok('*filter\n-A INPUT -j RETURN\nCOMMIT\n');
    return ok();
  });
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  assert.deepEqual(outcome.variants, { v4: 'legacy' });
});

test('legacy found after a speculative restore that failed part-way: only the table it committed is taken back', async () => {
  const tproxy = { ...POD_DEFAULT, inboundInterceptionMode: 'TPROXY' as const, inboundPortsInclude: '*' };
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe({ legacy: 'filter\n' }));
    if (r.argv[0] === 'iptables-legacy-save') return ok('*filter\n-A INPUT -j RETURN\nCOMMIT\n');
    // The speculative nft restore: mangle committed, nat failed.
    if (r.argv[0] === 'iptables-nft-restore' && r.input?.startsWith('* mangle\n-N'))
      return {
        exitCode: 1,
        stdout: '',
        stderr: 'iptables-nft-restore: line 30 failed: No chain/target/match by that name.\n',
      };
    return ok();
  });
  await applyCaptureRules(tproxy, { netns: NETNS, backend: 'iptables' }, { exec, logger });
  const undo = exec.requests.filter((r) => r.argv[0] === 'iptables-nft-restore' && r.input?.includes('-X '));
  assert.equal(undo.length, 1);
  assert.match(undo[0]?.input ?? '', /^\* mangle\n/);
  assert.doesNotMatch(undo[0]?.input ?? '', /\* nat/);
});

test('a pod in another user namespace: every command runs in its netns through that user namespace, with the 60 s limit', async () => {
  const userns = '/proc/4242/ns/user';
  const exec = new RecordingExec((r) => (r.argv[0] === 'head' ? ok(probe({ inet6: INET6_GLOBAL })) : ok()));
  await applyCaptureRules(
    { ...TPROXY_POD, dualStack: true },
    { netns: NETNS, backend: 'iptables', userns },
    { exec, logger },
  );
  assert.deepEqual(
    exec.requests.map((r) => r.argv[0]),
    ['iptables-nft-restore', 'head', 'ip6tables-nft-restore', 'ip', 'ip'],
  );
  for (const request of exec.requests) {
    assert.equal(request.netns, NETNS, request.argv.join(' '));
    assert.equal(request.userns, userns, request.argv.join(' '));
    assert.equal(request.timeoutMs, 60_000, request.argv.join(' '));
  }
});

test('a restore that commits mangle and then fails on nat (no earlier ADD): mangle is taken back, the ADD fails', async () => {
  for (const [undoResult, expectedWarnings] of [
    [ok(), []],
    [
      { exitCode: 4, stdout: '', stderr: 'iptables-nft-restore: Resource temporarily unavailable\n' },
      ['rollback of a partial restore failed'],
    ],
  ] as const) {
    const { exec, warnings } = await failingApply(
      TPROXY_POD,
      'iptables',
      (r) => {
        if (r.argv[0] === 'head') return ok(probe());
        if (r.argv[0] === 'iptables-nft-save') return ok('');
        if (/^-D /m.test(r.input ?? '')) return undoResult;
        if (r.input?.startsWith('* mangle\n-N'))
          return {
            exitCode: 1,
            stdout: '',
            stderr: 'iptables-nft-restore: line 30 failed: No chain/target/match by that name.\n',
          };
        return ok();
      },
      /^ExecError: xtables other problem: line 30 failed: No chain\/target\/match by that name\. \(iptables-nft-restore, v4\)$/,
    );
    assert.deepEqual(undoneTables(exec), [['mangle']]);
    assert.deepEqual(trace(exec), [
      'iptables-nft-restore --noflush < * mangle',
      PROBE,
      'iptables-nft-restore --noflush (undo)',
      'iptables-nft-save',
    ]);
    assert.deepEqual(warnings, expectedWarnings);
  }
});

test('ip -force -batch exits non-zero for lines it tolerates (the rule del of a fresh ADD, an existing entry): the ADD succeeds', async () => {
  for (const stderr of [
    'RTNETLINK answers: No such file or directory\nCommand failed -:1\n',
    'RTNETLINK answers: File exists\nCommand failed -:3\n',
  ]) {
    const exec = new RecordingExec((r) => {
      if (r.argv[0] === 'head') return ok(probe());
      if (r.argv[0] === 'ip') return { exitCode: 1, stdout: '', stderr };
      return ok();
    });
    const outcome = await applyCaptureRules(
      TPROXY_POD,
      { netns: NETNS, backend: 'iptables' },
      { exec, logger },
    );
    assert.equal(outcome.changed, true, stderr);
    assert.deepEqual(
      trace(exec),
      [
        'iptables-nft-restore --noflush < * mangle',
        PROBE,
        'ip -force -batch - < rule del fwmark 1337 lookup 133',
      ],
      stderr,
    );
  }
});

test('iptables-nft on a kernel without nf_tables that says "Failed to initialize nft": plain iptables-restore is used', async () => {
  const { exec, outcome } = await applyWithoutNfTables(
    'iptables-nft-restore v1.8.7 (nf_tables): Failed to initialize nft: Protocol not supported\n',
  );
  assert.deepEqual(outcome.variants, { v4: 'plain' });
  assert.equal(trace(exec).at(-1), 'iptables-restore --noflush --wait=30 < * nat');
});

test('CHECK on the nftables backend runs nothing and passes', async () => {
  const exec = new RecordingExec(() => ok(probe()));
  await checkCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'nftables' }, { exec, logger });
  assert.deepEqual(exec.requests, []);
});

test('CHECK of a dual-stack pod checks the IPv6 rules too: missing ones fail it with RULES_INVALID', async () => {
  const savedV4 = savedAfter(renderRestoreDocument(buildCaptureRules(POD_DEFAULT).rules.v4));
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe({ inet6: INET6_GLOBAL }));
    if (r.argv[0] === 'iptables-nft-save') return ok(savedV4);
    if (r.argv[0] === 'ip6tables-nft-save') return ok('');
    return ok();
  });
  await assert.rejects(
    checkCaptureRules(
      { ...POD_DEFAULT, dualStack: true },
      { netns: NETNS, backend: 'iptables' },
      { exec, logger },
    ),
    (error: unknown) =>
      error instanceof Error &&
      (error as { code?: string }).code === 'RULES_INVALID' &&
      /^istio v6 rules are not as expected: .*table nat is missing/.test(error.message),
  );
  assert.deepEqual(
    exec.requests.map((r) => r.argv.join(' ')),
    [PROBE, 'iptables-nft-save', 'iptables-nft-restore --noflush', 'ip6tables-nft-save'],
  );
});

test('FORCE_IPTABLES_BINARY=legacy: the speculative IPv4 restore is already the legacy one, with --wait and the pod lock', async () => {
  const exec = new RecordingExec((r) => (r.argv[0] === 'head' ? ok(probe()) : ok()));
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables', iptablesVariant: 'legacy' },
    { exec, logger },
  );
  assert.deepEqual(outcome.variants, { v4: 'legacy' });
  assert.deepEqual(trace(exec), ['iptables-legacy-restore --noflush --wait=30 < * nat', PROBE]);
  assert.deepEqual(exec.requests[0]?.env, { XTABLES_LOCKFILE: NETNS });
});

test('a re-ADD that adds IPv6 to an IPv4 pod, routes failing: the new IPv6 rules go, the earlier IPv4 rules and routes stay', async () => {
  const savedV4 = savedAfter(renderRestoreDocument(buildCaptureRules(TPROXY_POD).rules.v4));
  const { exec } = await failingApply(
    { ...TPROXY_POD, dualStack: true },
    'iptables',
    (r) => {
      if (r.argv[0] === 'head') return ok(probe({ legacy: 'nat\nmangle\n', inet6: INET6_GLOBAL }));
      if (r.argv[0] === 'iptables-legacy-save') return ok(savedV4);
      if (r.argv[0] === 'ip') return IP_FAILS;
      return ok();
    },
    /failed to configure routes/,
  );
  const steps = trace(exec).map((line) => line.split(' < ')[0]);
  // The speculative nft restore is taken back as legacy holds the pod's rules; then IPv4 is a no-op.
  assert.deepEqual(steps.slice(2), [
    'iptables-legacy-save',
    'iptables-nft-restore --noflush (undo)',
    'iptables-legacy-restore --noflush --wait=30',
    'ip6tables-nft-restore --noflush',
    'ip -force -batch -',
    'ip6tables-nft-restore --noflush (undo)',
  ]);
});

test('nftables: a create that fails for another reason than existing tables, or a replace that fails, fails the ADD', async () => {
  const denied: ExecResult = { exitCode: 1, stdout: '', stderr: 'Error: Operation not permitted\n' };
  const fresh = await failingApply(
    TPROXY_POD,
    'nftables',
    (r) => (r.argv[0] === 'head' ? ok(probe()) : r.argv[0] === 'nft' ? denied : ok()),
    /^ExecError: nft transaction failed: Error: Operation not permitted$/,
  );
  assert.deepEqual(trace(fresh.exec), [PROBE, 'nft -f - < create table inet istio-proxy-mangle']);
  const replace = await failingApply(
    TPROXY_POD,
    'nftables',
    (r) => {
      if (r.argv[0] === 'head') return ok(probe());
      if ((r.input ?? '').startsWith('create table'))
        return { exitCode: 1, stdout: '', stderr: 'Error: Could not process rule: File exists\n' };
      if (r.argv[0] === 'nft') return denied;
      return ok();
    },
    /^ExecError: nft transaction failed: Error: Operation not permitted$/,
  );
  assert.deepEqual(trace(replace.exec), [
    PROBE,
    'nft -f - < create table inet istio-proxy-mangle',
    'nft -f - < add table inet istio-proxy-mangle',
  ]);
});

test('nftables: a create that never ran (not killed) is not followed by a removal', async () => {
  const { exec } = await failingApply(
    TPROXY_POD,
    'nftables',
    (r) => {
      if (r.argv[0] === 'head') return ok(probe());
      throw new ExecError('EXEC_FAILED', 'failed to start nft: EACCES');
    },
    /EACCES/,
  );
  assert.deepEqual(trace(exec), [PROBE, 'nft -f - < create table inet istio-proxy-mangle']);
});

test('legacy tables listed but no iptables-legacy-save (or plain iptables-save) on the node: nft, else plain without --wait', async () => {
  const missing = (name: string) => new ExecError('BINARY_MISSING', `required binary "${name}" is missing`);
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe({ legacy: 'filter\n' }));
    if (r.argv[0] === 'iptables-legacy-save') throw missing('iptables-legacy-save');
    return ok();
  });
  const outcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec, logger },
  );
  assert.deepEqual(outcome.variants, { v4: 'nft' });
  assert.deepEqual(trace(exec), ['iptables-nft-restore --noflush < * nat', PROBE, 'iptables-legacy-save']);

  const plain = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'iptables-nft-restore') throw missing('iptables-nft-restore');
    if (r.argv[0] === 'iptables-save') throw missing('iptables-save');
    return ok();
  });
  const plainOutcome = await applyCaptureRules(
    POD_DEFAULT,
    { netns: NETNS, backend: 'iptables' },
    { exec: plain, logger },
  );
  assert.deepEqual(plainOutcome.variants, { v4: 'plain' });
  assert.equal(trace(plain).at(-1), 'iptables-restore --noflush < * nat');
});

test('no head, dual-stack pod: addresses from `ip -o addr show`, legacy detection for both families; ip failing is a NETNS error', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') throw new ExecError('BINARY_MISSING', 'required binary "head" is missing');
    if (r.argv[0] === 'ip' && r.argv.includes('addr'))
      return ok(
        '2: eth0    inet 10.1.2.3/24 scope global eth0\n2: eth0    inet6 fd00::2/64 scope global \\       valid_lft forever\n',
      );
    return ok();
  });
  const outcome = await applyCaptureRules(
    { ...POD_DEFAULT, dualStack: true },
    { netns: NETNS, backend: 'iptables', speculative: false },
    { exec, logger },
  );
  assert.equal(outcome.ipv6, true);
  assert.deepEqual(exec.requests[1]?.argv, ['ip', '-o', 'addr', 'show']);
  assert.deepEqual(
    exec.requests.map((r) => r.argv[0]).filter((name) => name?.endsWith('-save')),
    ['iptables-legacy-save', 'ip6tables-legacy-save'],
  );

  const failing = new RecordingExec((r) => {
    if (r.argv[0] === 'head') throw new ExecError('BINARY_MISSING', 'required binary "head" is missing');
    if (r.argv[0] === 'ip') return { exitCode: 1, stdout: '', stderr: 'Cannot open network namespace\n' };
    return ok();
  });
  await assert.rejects(
    applyCaptureRules(
      POD_DEFAULT,
      { netns: NETNS, backend: 'iptables', speculative: false },
      { exec: failing, logger },
    ),
    (error: unknown) =>
      error instanceof ExecError &&
      error.code === 'NETNS' &&
      error.message === 'failed to list addresses: Cannot open network namespace',
  );
});

test('a probe whose head printed no fib_trie (netns gone): NETNS error with head’s stderr, the speculative restore taken back', async () => {
  const exec = new RecordingExec((r) =>
    r.argv[0] === 'head'
      ? {
          exitCode: 1,
          stdout: '',
          stderr: "head: cannot open '/proc/net/fib_trie' for reading: Invalid argument\n",
        }
      : ok(),
  );
  await assert.rejects(
    applyCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec, logger }),
    (error: unknown) =>
      error instanceof ExecError &&
      error.code === 'NETNS' &&
      error.message ===
        "failed to inspect netns: head: cannot open '/proc/net/fib_trie' for reading: Invalid argument",
  );
  assert.deepEqual(trace(exec), [
    'iptables-nft-restore --noflush < * nat',
    PROBE,
    'iptables-nft-restore --noflush (undo)',
  ]);
});

test('legacy found for IPv4 (speculative restore discarded), then the IPv6 legacy save fails: that restore is undone once', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head')
      return ok(
        probe({ legacy: 'filter\n', inet6: INET6_GLOBAL }).replace(
          'ip6_tables_names <==',
          'ip6_tables_names <==\nnat',
        ),
      );
    if (r.argv[0] === 'iptables-legacy-save') return ok(LEGACY_FILTER_RULES);
    if (r.argv[0] === 'ip6tables-legacy-save') throw TIMED_OUT('ip6tables-legacy-save');
    return ok();
  });
  await assert.rejects(
    applyCaptureRules(
      { ...POD_DEFAULT, dualStack: true },
      { netns: NETNS, backend: 'iptables' },
      { exec, logger },
    ),
    /ip6tables-legacy-save timed out/,
  );
  assert.deepEqual(trace(exec), [
    'iptables-nft-restore --noflush < * nat',
    PROBE,
    'iptables-legacy-save',
    'iptables-nft-restore --noflush (undo)',
    'ip6tables-legacy-save',
  ]);
});

test('a -C document failing as older iptables-restore words it ("Error occurred at line: N"): the rule is named', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head') return ok(probe());
    if (r.argv[0] === 'iptables-nft-save') return ok(savedWithPlannedShape());
    if (r.input?.startsWith('* nat\n-C'))
      return { exitCode: 1, stdout: '', stderr: 'iptables-restore: Bad rule\nError occurred at line: 3\n' };
    return ok();
  });
  let document = '';
  await assert.rejects(
    checkCaptureRules(POD_DEFAULT, { netns: NETNS, backend: 'iptables' }, { exec, logger }),
    (error: Error) => {
      document = exec.requests.find((r) => r.input?.startsWith('* nat\n-C'))?.input ?? '';
      return error.message.includes(`rule not present: ${document.split('\n')[2]}`);
    },
  );
  assert.match(document.split('\n')[2] ?? '', /^-C /);
});

test('a warning of the rule builder (DNS capture that cannot work) is logged; the rules are still applied', async () => {
  const warnings: string[] = [];
  const exec = new RecordingExec((r) => (r.argv[0] === 'head' ? ok(probe()) : ok()));
  const outcome = await applyCaptureRules(
    { ...POD_DEFAULT, redirectDns: true, captureAllDns: false, dnsServersV4: [], dnsServersV6: [] },
    { netns: NETNS, backend: 'iptables' },
    { exec, logger: recordingLogger(warnings) },
  );
  assert.equal(outcome.changed, true);
  assert.deepEqual(warnings, [
    'REDIRECT_DNS is set, but CAPTURE_ALL_DNS is off and no DNS servers are known: DNS is not captured',
  ]);
});

test('dual-stack pod: each family restores its own document (the IPv6 one with ::6 and ::1, not the IPv4 one)', async () => {
  const config = { ...TPROXY_POD, dualStack: true };
  const exec = new RecordingExec((r) => (r.argv[0] === 'head' ? ok(probe({ inet6: INET6_GLOBAL })) : ok()));
  await applyCaptureRules(config, { netns: NETNS, backend: 'iptables' }, { exec, logger });
  const built = buildCaptureRules({ ...config, enableIpv6: true }).rules;
  const inputOf = (name: string) => exec.requests.find((r) => r.argv[0] === name)?.input;
  assert.equal(inputOf('iptables-nft-restore'), renderRestoreDocument(built.v4));
  assert.equal(inputOf('ip6tables-nft-restore'), renderRestoreDocument(built.v6));
  assert.notEqual(renderRestoreDocument(built.v6), renderRestoreDocument(built.v4));
});

test('a probe that fails otherwise than a missing head (killed, denied) fails the ADD as is: no fallback to ip', async () => {
  const exec = new RecordingExec((r) => {
    if (r.argv[0] === 'head')
      throw new ExecError('EXEC_FAILED', 'head timed out after 60000 ms', { timedOut: true });
    return ok();
  });
  await assert.rejects(
    applyCaptureRules(
      POD_DEFAULT,
      { netns: NETNS, backend: 'iptables', speculative: false },
      { exec, logger },
    ),
    /^ExecError: head timed out after 60000 ms$/,
  );
  assert.deepEqual(trace(exec), [PROBE]);
});
