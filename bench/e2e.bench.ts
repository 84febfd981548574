// Sandbox creation through CRI on the lab node: 20 pods on the node's bridge chain alone (the floor), then 20
// meshed pods once the agent has merged istio-cni (the plugin's pod lookup + rule programming is the overhead),
// then 20 meshed sandboxes created at once (all must succeed). A third node runs the floor's chain plus the
// reference `tuning` plugin with no settings (≈4 ms as a process of its own): what the runtime charges for any
// one more plugin in a chain, the part of the overhead no plugin can avoid.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median, percentile } from './report.ts';
import type { BenchSection } from './report.ts';
import type { TestNode } from '../test/support/lab/node.ts';
import { loadedChain, meshedPod, plainPod, startNode, waitFor } from '../test/support/lab/node.ts';

const COUNT = 20;

async function timedPod(node: TestNode, name: string, meshed: boolean): Promise<{ ms: number; id: string }> {
  const manifest = meshed ? meshedPod('default', name) : plainPod('default', name);
  node.api.upsertPod(manifest);
  const start = performance.now();
  const pod = await node.createPod(manifest, { register: false });
  return { ms: performance.now() - start, id: pod.id };
}

export async function runBench(): Promise<BenchSection> {
  // Two nodes side by side: the floor node runs the bridge chain alone, the meshed node the same chain with
  // istio-cni merged by the agent. Creations alternate between them so machine load hits both series alike.
  const floorNode = await startNode({ startAgent: false });
  let node: TestNode | undefined;
  let extraPluginNode: TestNode | undefined;
  try {
    node = await startNode();
    await node.waitForChain(true);
    extraPluginNode = await startNode({ startAgent: false });
    const lab = extraPluginNode.lab;
    const conflist = lab.primaryConflist() as { plugins: unknown[] };
    writeFileSync(
      path.join(lab.confDir, lab.conflistName),
      JSON.stringify({ ...conflist, plugins: [...conflist.plugins, { type: 'tuning' }] }),
    );
    await waitFor('containerd to load the chain with tuning', async () =>
      (await loadedChain(lab)).includes('tuning'),
    );
    const floor: number[] = [];
    const meshedTimes: number[] = [];
    const passThrough: number[] = [];
    const extraPlugin: number[] = [];
    const created: Array<[TestNode, string]> = [];
    for (let i = -3; i < COUNT; i++) {
      const plain = await timedPod(floorNode, `plain-${i + 3}`, false);
      const meshed = await timedPod(node, `meshed-${i + 3}`, true);
      const unmeshed = await timedPod(node, `unmeshed-${i + 3}`, false);
      const tuned = await timedPod(extraPluginNode, `tuned-${i + 3}`, false);
      created.push(
        [floorNode, plain.id],
        [node, meshed.id],
        [node, unmeshed.id],
        [extraPluginNode, tuned.id],
      );
      if (i < 0) continue; // warm-up
      floor.push(plain.ms);
      meshedTimes.push(meshed.ms);
      passThrough.push(unmeshed.ms);
      extraPlugin.push(tuned.ms);
    }
    for (const [owner, id] of created) await owner.lab.removePod(id);

    const manifests = Array.from({ length: COUNT }, (_, i) => meshedPod('default', `burst-${i}`));
    for (const manifest of manifests) node.api.upsertPod(manifest);
    const burstStart = performance.now();
    const results = await Promise.allSettled(manifests.map((m) => node!.createPod(m, { register: false })));
    const burstWall = performance.now() - burstStart;
    const failures = results.filter((r) => r.status === 'rejected').length;

    // Paired: each meshed creation against the floor creation just before it, so the machine's slow drifts (this is
    // a shared VM: the floor itself moves by 2× between runs) cancel out; the median of those differences.
    const pairedOverhead = (series: number[]) => median(series.map((ms, i) => ms - (floor[i] ?? NaN)));
    const overhead = pairedOverhead(meshedTimes);
    const load = os.loadavg()[0] ?? 0;
    return {
      title:
        'End to end: sandbox creation through CRI (containerd + bridge + host-local + portmap [+ istio-cni])',
      rows: [
        {
          metric: 'meshed sandbox median',
          value: median(meshedTimes),
          floor: median(floor),
          unit: 'ms',
          note: `${COUNT} sequential, alternating with the floor; floor = same chain without istio-cni`,
        },
        {
          metric: 'meshed sandbox p90',
          value: percentile(meshedTimes, 90),
          floor: percentile(floor, 90),
          unit: 'ms',
        },
        {
          metric: 'median overhead of istio-cni (paired with the floor creation before it)',
          value: overhead,
          unit: 'ms',
          budget: 30,
          note: `1-min load average ${load.toFixed(1)} on ${os.cpus().length} CPUs`,
        },
        {
          metric: 'pod without sidecar on the istio-cni chain median',
          value: median(passThrough),
          floor: median(floor),
          unit: 'ms',
          note: 'plugin start + pod lookup, no rules',
        },
        {
          metric: 'one more trivial plugin in the chain median',
          value: median(extraPlugin),
          floor: median(floor),
          unit: 'ms',
          note: `reference tuning plugin, no settings: the runtime's cost of any chained plugin, +${pairedOverhead(extraPlugin).toFixed(1)} ms paired`,
        },
        {
          metric: 'overhead of istio-cni beyond that trivial plugin',
          value: overhead - pairedOverhead(extraPlugin),
          unit: 'ms',
          note: 'plugin start, pod lookup, rule programming, log forwarding',
        },
        {
          metric: `${COUNT} concurrent meshed sandboxes: failures`,
          value: failures,
          unit: 'count',
          budget: 0,
        },
        { metric: `${COUNT} concurrent meshed sandboxes: wall`, value: burstWall, unit: 'ms' },
      ],
    };
  } finally {
    await extraPluginNode?.close();
    await node?.close();
    await floorNode.close();
  }
}
