// Sandbox creation through CRI on the lab node: 20 pods on the node's bridge chain alone (the floor), then 20
// meshed pods once the agent has merged istio-cni (the plugin's pod lookup + rule programming is the overhead),
// then 20 meshed sandboxes created at once (all must succeed).
import os from 'node:os';
import { median, percentile } from './report.ts';
import type { BenchSection } from './report.ts';
import type { TestNode } from '../test/support/lab/node.ts';
import { meshedPod, plainPod, startNode } from '../test/support/lab/node.ts';

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
  try {
    node = await startNode();
    await node.waitForChain(true);
    const floor: number[] = [];
    const meshedTimes: number[] = [];
    const passThrough: number[] = [];
    const created: Array<[TestNode, string]> = [];
    for (let i = -3; i < COUNT; i++) {
      const plain = await timedPod(floorNode, `plain-${i + 3}`, false);
      const meshed = await timedPod(node, `meshed-${i + 3}`, true);
      const unmeshed = await timedPod(node, `unmeshed-${i + 3}`, false);
      created.push([floorNode, plain.id], [node, meshed.id], [node, unmeshed.id]);
      if (i < 0) continue; // warm-up
      floor.push(plain.ms);
      meshedTimes.push(meshed.ms);
      passThrough.push(unmeshed.ms);
    }
    for (const [owner, id] of created) await owner.lab.removePod(id);

    const manifests = Array.from({ length: COUNT }, (_, i) => meshedPod('default', `burst-${i}`));
    for (const manifest of manifests) node.api.upsertPod(manifest);
    const burstStart = performance.now();
    const results = await Promise.allSettled(manifests.map((m) => node!.createPod(m, { register: false })));
    const burstWall = performance.now() - burstStart;
    const failures = results.filter((r) => r.status === 'rejected').length;

    const overhead = median(meshedTimes) - median(floor);
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
          metric: 'median overhead of istio-cni',
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
          metric: `${COUNT} concurrent meshed sandboxes: failures`,
          value: failures,
          unit: 'count',
          budget: 0,
        },
        { metric: `${COUNT} concurrent meshed sandboxes: wall`, value: burstWall, unit: 'ms' },
      ],
    };
  } finally {
    await node?.close();
    await floorNode.close();
  }
}
