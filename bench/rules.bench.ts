// Rule engine speed (issue 4): meshed apply of the default sidecar ruleset into a fresh pod netns through
// applyCaptureRules with the real SpawnExec, against the floor — `nsenter --net=<ns> iptables-restore --noflush`
// of the same document into another fresh netns — for the nft and legacy backends. Runs are interleaved
// (floor, ours, floor, ours…) so machine drift hits both sides. Budget: median overhead ≤ 15 ms.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import type { BenchRow, BenchSection } from './report.ts';
import { median } from './report.ts';
import { applyCaptureRules } from '../src/rules/apply.ts';
import type { IptablesVariant } from '../src/rules/apply.ts';
import { buildCaptureRules } from '../src/rules/build.ts';
import { renderRestoreDocument } from '../src/rules/render-iptables.ts';
import { DEFAULT_CAPTURE_CONFIG } from '../src/rules/capture-config.ts';
import type { CaptureConfig } from '../src/rules/capture-config.ts';
import { SpawnExec } from '../src/sys/spawn-exec.ts';

const RUNS = 20;
const BUDGET_MS = 15;

const POD_CONFIG: CaptureConfig = {
  ...DEFAULT_CAPTURE_CONFIG,
  inboundPortsInclude: '*',
  inboundPortsExclude: '15020,15021,15090',
  outboundPortsExclude: '15020',
  outboundIpRangesInclude: '*',
};

function sh(argv: string[], input?: string): void {
  const result = spawnSync(argv[0] ?? 'false', argv.slice(1), { input: input ?? '', encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
}

/** A pod-like netns: lo + one interface with an IPv4 address (what local IP detection needs). */
function freshNetns(): { name: string; path: string; remove(): void } {
  const name = `ib-bench-${randomBytes(3).toString('hex')}`;
  sh(['ip', 'netns', 'add', name]);
  try {
    sh(
      ['ip', '-n', name, '-batch', '-'],
      'link add eth0 type veth peer name eth1\nlink set lo up\nlink set eth0 up\naddress add 10.77.0.2/24 dev eth0\n',
    );
  } catch (error) {
    sh(['ip', 'netns', 'del', name]);
    throw error;
  }
  return { name, path: `/run/netns/${name}`, remove: () => sh(['ip', 'netns', 'del', name]) };
}

function timeFloor(path: string, binary: string, document: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn('nsenter', [`--net=${path}`, binary, '--noflush'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(performance.now() - start) : reject(new Error(`${binary} exit ${code}`)),
    );
    child.stdin.end(document);
  });
}

async function measure(variant: IptablesVariant): Promise<BenchRow[]> {
  const document = renderRestoreDocument(buildCaptureRules(POD_CONFIG).rules.v4);
  const exec = new SpawnExec();
  const logger = pino({ level: 'silent' });
  const ours: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < RUNS + 2; i++) {
    const a = freshNetns();
    const b = freshNetns();
    try {
      const f = await timeFloor(a.path, `iptables-${variant}-restore`, document);
      const start = performance.now();
      // Detection, not forcing, for nft (what the plugin does); legacy must be forced in a fresh netns.
      await applyCaptureRules(
        POD_CONFIG,
        {
          netns: b.path,
          backend: 'iptables',
          ...(variant === 'legacy' ? { iptablesVariant: 'legacy' as const } : {}),
        },
        { exec, logger },
      );
      const o = performance.now() - start;
      if (i >= 2) {
        floor.push(f);
        ours.push(o);
      }
    } finally {
      a.remove();
      b.remove();
    }
  }
  const oursMedian = median(ours);
  const floorMedian = median(floor);
  return [
    {
      metric: `${variant}: applyCaptureRules median wall`,
      value: oursMedian,
      unit: 'ms',
      floor: floorMedian,
      note: `${RUNS} fresh netns`,
    },
    {
      metric: `${variant}: overhead over nsenter iptables-restore`,
      value: oursMedian - floorMedian,
      unit: 'ms',
      budget: BUDGET_MS,
    },
  ];
}

export async function runBench(): Promise<BenchSection> {
  return {
    title: 'Rule engine: meshed apply of the default ruleset (Node, real SpawnExec)',
    rows: [...(await measure('nft')), ...(await measure('legacy'))],
  };
}

if (import.meta.main) {
  const section = await runBench();
  for (const row of section.rows)
    console.log(
      `${row.metric}: ${row.value.toFixed(2)} ${row.unit}${row.floor === undefined ? '' : ` (floor ${row.floor.toFixed(2)})`}${row.budget === undefined ? '' : ` budget ${row.budget}`}`,
    );
}
