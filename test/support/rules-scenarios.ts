// Behaviour checks shared by the rule-engine integration tests (iptables-nft, iptables-legacy, nftables): apply
// a capture config twice in a fresh pod/peer netns pair, then prove with real connections where traffic lands.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { CaptureConfig } from '../../src/rules/capture-config.ts';
import { DEFAULT_CAPTURE_CONFIG } from '../../src/rules/capture-config.ts';
import type { ApplyOutcome, RuleTarget } from '../../src/rules/apply.ts';
import { applyCaptureRules } from '../../src/rules/apply.ts';
import { SpawnExec } from '../../src/sys/spawn-exec.ts';
import type { OrigDstServer, PodPair } from './netns.ts';
import { connectFrom, createPodPair, runIn, startOrigDstServer } from './netns.ts';

export const POD_CONFIG: CaptureConfig = {
  ...DEFAULT_CAPTURE_CONFIG,
  inboundPortsInclude: '*',
  inboundPortsExclude: '15020,15021,15090',
  outboundPortsExclude: '15020',
  outboundIpRangesInclude: '*',
};

export type Backend = { readonly name: string; readonly target: Omit<RuleTarget, 'netns'> };

export const BACKENDS: readonly Backend[] = [
  { name: 'iptables-nft', target: { backend: 'iptables', iptablesVariant: 'nft' } },
  { name: 'iptables-legacy', target: { backend: 'iptables', iptablesVariant: 'legacy' } },
  { name: 'nftables', target: { backend: 'nftables' } },
];

const logger = pino({ level: 'silent' });
const exec = new SpawnExec();

/** A snapshot of the netns's rules that ignores counters (for "second apply changed nothing"). */
async function ruleSnapshot(pair: PodPair, backend: Backend): Promise<string> {
  if (backend.target.backend === 'nftables')
    return (await runIn(pair.pod.path, ['nft', '-s', 'list', 'ruleset'])).stdout;
  const variant = backend.target.iptablesVariant ?? 'nft';
  const v4 = await runIn(pair.pod.path, [`iptables-${variant}-save`]);
  const v6 = await runIn(pair.pod.path, [`ip6tables-${variant}-save`]);
  return `${v4.stdout}${v6.stdout}`.replace(/^#.*\n/gm, '').replace(/\[\d+:\d+\]/g, '');
}

/** Applies twice and checks idempotency: same rules; on iptables the second apply reports `changed: false`. */
export async function applyTwice(
  pair: PodPair,
  backend: Backend,
  config: CaptureConfig,
): Promise<ApplyOutcome> {
  const target = { ...backend.target, netns: pair.pod.path };
  const first = await applyCaptureRules(config, target, { exec, logger });
  assert.equal(first.changed, true);
  const before = await ruleSnapshot(pair, backend);
  const second = await applyCaptureRules(config, target, { exec, logger });
  if (backend.target.backend === 'iptables') assert.equal(second.changed, false);
  assert.equal(await ruleSnapshot(pair, backend), before);
  return first;
}

export interface Lab {
  readonly pair: PodPair;
  servers: OrigDstServer[];
  close(): Promise<void>;
}

export async function withLab(
  options: { ipv6?: boolean; ipv6Only?: boolean },
  body: (pair: PodPair, servers: OrigDstServer[]) => Promise<void>,
): Promise<void> {
  const pair = await createPodPair({ prefix: 'ib', ...options });
  const servers: OrigDstServer[] = [];
  try {
    await body(pair, servers);
  } finally {
    for (const server of servers) server.stop();
    await pair.destroy();
  }
}

/** Default sidecar capture: app outbound → 15001 with SO_ORIGINAL_DST, uid 1337 bypasses, inbound → 15006. */
export async function checkDefault(backend: Backend, ipv6: boolean): Promise<void> {
  await withLab({ ipv6 }, async (pair, servers) => {
    const outcome = await applyTwice(pair, backend, { ...POD_CONFIG, dualStack: ipv6 });
    assert.equal(outcome.ipv6, ipv6);
    servers.push(await startOrigDstServer(pair.pod.path, { tcp: [15001, 15006, 15020] }));
    servers.push(await startOrigDstServer(pair.peer.path, { tcp: [8080, 15020] }));
    const { pod, peer } = pair;
    assert.equal(await connectFrom(pod.path, peer.ip, 8080), `15001 ${peer.ip} 8080`);
    assert.equal(await connectFrom(pod.path, peer.ip, 8080, { uid: 1337 }), `8080 ${peer.ip} 8080`);
    assert.equal(await connectFrom(peer.path, pod.ip, 9090), `15006 ${pod.ip} 9090`);
    // Excluded ports: 15020 outbound bypasses, 15020 inbound is not captured.
    assert.equal(await connectFrom(pod.path, peer.ip, 15020), `15020 ${peer.ip} 15020`);
    assert.equal(await connectFrom(peer.path, pod.ip, 15020), `15020 ${pod.ip} 15020`);
    if (ipv6 && pod.ip6 !== undefined && peer.ip6 !== undefined) {
      assert.equal(await connectFrom(pod.path, peer.ip6, 8080), `15001 ${peer.ip6} 8080`);
      assert.equal(await connectFrom(pod.path, peer.ip6, 8080, { uid: 1337 }), `8080 ${peer.ip6} 8080`);
      assert.equal(await connectFrom(peer.path, pod.ip6, 9090), `15006 ${pod.ip6} 9090`);
    }
  });
}

export async function checkTproxy(backend: Backend): Promise<void> {
  await withLab({ ipv6: true }, async (pair, servers) => {
    await applyTwice(pair, backend, { ...POD_CONFIG, inboundInterceptionMode: 'TPROXY', dualStack: true });
    servers.push(await startOrigDstServer(pair.pod.path, { tcp: [15001, 15006], transparent: true }));
    servers.push(await startOrigDstServer(pair.peer.path, { tcp: [8080] }));
    const { pod, peer } = pair;
    assert.equal(await connectFrom(peer.path, pod.ip, 9090), `15006 ${pod.ip} 9090`);
    assert.equal(await connectFrom(pod.path, peer.ip, 8080), `15001 ${peer.ip} 8080`);
    const pod6 = pod.ip6 ?? '';
    assert.equal(await connectFrom(peer.path, pod6, 9090), `15006 ${pod6} 9090`);
    // Applied twice, still exactly one policy rule per family.
    for (const family of ['-4', '-6']) {
      const rules = await runIn(pod.path, ['ip', family, 'rule', 'show']);
      assert.equal(rules.stdout.match(/fwmark 0x539 lookup 133/g)?.length, 1, `${family} ${rules.stdout}`);
    }
  });
}

export async function checkDns(backend: Backend): Promise<void> {
  await withLab({}, async (pair, servers) => {
    await applyTwice(pair, backend, { ...POD_CONFIG, redirectDns: true, captureAllDns: true });
    servers.push(await startOrigDstServer(pair.pod.path, { tcp: [15001, 15053], udp: [15053] }));
    servers.push(await startOrigDstServer(pair.peer.path, { tcp: [53], udp: [53] }));
    const { pod, peer } = pair;
    assert.equal(await connectFrom(pod.path, peer.ip, 53, { udp: true }), '15053 udp');
    assert.equal(await connectFrom(pod.path, peer.ip, 53), `15053 ${peer.ip} 53`);
    assert.equal(await connectFrom(pod.path, peer.ip, 53, { udp: true, uid: 1337 }), '53 udp');
  });
}

export async function checkIncludeExclude(backend: Backend): Promise<void> {
  await withLab({}, async (pair, servers) => {
    const { pod, peer } = pair;
    await applyTwice(pair, backend, {
      ...POD_CONFIG,
      inboundPortsInclude: '9090',
      outboundPortsExclude: '8081',
      outboundIpRangesInclude: `${peer.ip}/32`,
    });
    servers.push(await startOrigDstServer(pod.path, { tcp: [15001, 15006, 9091] }));
    servers.push(await startOrigDstServer(peer.path, { tcp: [8080, 8081] }));
    assert.equal(await connectFrom(peer.path, pod.ip, 9090), `15006 ${pod.ip} 9090`);
    assert.equal(await connectFrom(peer.path, pod.ip, 9091), `9091 ${pod.ip} 9091`);
    assert.equal(await connectFrom(pod.path, peer.ip, 8080), `15001 ${peer.ip} 8080`);
    assert.equal(await connectFrom(pod.path, peer.ip, 8081), `8081 ${peer.ip} 8081`);
  });
  await withLab({}, async (pair, servers) => {
    const { pod, peer } = pair;
    await applyTwice(pair, backend, { ...POD_CONFIG, outboundIpRangesExclude: `${peer.ip}/32` });
    servers.push(await startOrigDstServer(pod.path, { tcp: [15001] }));
    servers.push(await startOrigDstServer(peer.path, { tcp: [8080] }));
    assert.equal(await connectFrom(pod.path, peer.ip, 8080), `8080 ${peer.ip} 8080`);
  });
}

/** IPv6-only pod (no dual-stack flag needed: its first address is IPv6): the ip6tables side carries the capture. */
export async function checkIpv6Only(backend: Backend): Promise<void> {
  await withLab({ ipv6Only: true }, async (pair, servers) => {
    const outcome = await applyTwice(pair, backend, POD_CONFIG);
    assert.equal(outcome.ipv6, true);
    servers.push(await startOrigDstServer(pair.pod.path, { tcp: [15001, 15006] }));
    servers.push(await startOrigDstServer(pair.peer.path, { tcp: [8080] }));
    const pod6 = pair.pod.ip6 ?? '';
    const peer6 = pair.peer.ip6 ?? '';
    assert.equal(await connectFrom(pair.pod.path, peer6, 8080), `15001 ${peer6} 8080`);
    assert.equal(await connectFrom(pair.pod.path, peer6, 8080, { uid: 1337 }), `8080 ${peer6} 8080`);
    assert.equal(await connectFrom(pair.peer.path, pod6, 9090), `15006 ${pod6} 9090`);
    // Inbound passthrough source ::6 exists on lo.
    assert.match(
      (await runIn(pair.pod.path, ['ip', '-6', 'addr', 'show', 'dev', 'lo'])).stdout,
      /inet6 ::6\/128/,
    );
  });
}

/** The `istio-validation` init container's probe (§2.13), which the repair controller keys off: as the proxy uid, a
 * loopback connection to 127.0.0.6:15002 (or [::6]:15002) must reach the inbound port 15006 with 15002 as its
 * original port. Without it, every meshed pod's init container fails with 126. */
export async function checkValidationProbe(backend: Backend): Promise<void> {
  await withLab({ ipv6: true }, async (pair, servers) => {
    await applyTwice(pair, backend, { ...POD_CONFIG, dualStack: true });
    servers.push(await startOrigDstServer(pair.pod.path, { tcp: [15001, 15006] }));
    // The probe binds its source as upstream's does: [::6] is on lo, so an unbound socket would take ::6 as its
    // source, which is the inbound passthrough the rules must let by.
    assert.equal(
      await connectFrom(pair.pod.path, '127.0.0.6', 15002, { uid: 1337, bind: '127.0.0.1' }),
      '15006 127.0.0.6 15002',
    );
    assert.equal(
      await connectFrom(pair.pod.path, '::6', 15002, { uid: 1337, bind: '::1' }),
      '15006 ::6 15002',
    );
  });
}

/** Registers the real-connection scenarios for every backend of one kind (each applied twice). */
export function registerCaptureScenarios(kind: RuleTarget['backend']): void {
  for (const backend of BACKENDS.filter((b) => b.target.backend === kind)) {
    test(`${backend.name}: default capture (IPv4)`, () => checkDefault(backend, false));
    test(`${backend.name}: default capture, dual-stack`, () => checkDefault(backend, true));
    test(`${backend.name}: IPv6-only pod`, () => checkIpv6Only(backend));
    test(`${backend.name}: TPROXY`, () => checkTproxy(backend));
    test(`${backend.name}: DNS capture`, () => checkDns(backend));
    test(`${backend.name}: include/exclude ports and CIDRs`, () => checkIncludeExclude(backend));
    test(`${backend.name}: the istio-validation probe lands on 15006`, () => checkValidationProbe(backend));
  }
}

/** Group names in a golden (owner-group scenarios name `java`, `ftp`) replaced by numeric gids, so the kernel check
 * does not depend on this host's /etc/group and covers every line after them. */
export function withNumericGroups(document: string): string {
  const gids = new Map<string, number>();
  return document.replace(
    /(--gid-owner |skgid (?:!= )?)([A-Za-z_][\w.-]*)/g,
    (_, prefix: string, group: string) => {
      if (!gids.has(group)) gids.set(group, 60_000 + gids.size);
      return `${prefix}${gids.get(group)}`;
    },
  );
}
