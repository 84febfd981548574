// Sandbox creation through CRI on the lab node: 20 pods on the node's bridge chain alone (the floor), then 20
// meshed pods once the agent has merged istio-cni (the plugin's pod lookup + rule programming is the overhead),
// then 20 meshed sandboxes created at once (all must succeed).
import { median, percentile } from './report.ts';
import type { BenchSection } from './report.ts';
import type { TestNode } from '../test/support/lab/node.ts';
import { meshedPod, plainPod, startNode } from '../test/support/lab/node.ts';

const COUNT = 20;

async function timeSequential(node: TestNode, prefix: string, meshed: boolean): Promise<number[]> {
  const times: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const manifest = meshed ? meshedPod('default', `${prefix}-${i}`) : plainPod('default', `${prefix}-${i}`);
    node.api.upsertPod(manifest);
    const start = performance.now();
    const pod = await node.createPod(manifest, { register: false });
    times.push(performance.now() - start);
    ids.push(pod.id);
  }
  for (const id of ids) await node.lab.removePod(id);
  return times;
}

export async function runBench(): Promise<BenchSection> {
  const node = await startNode({ startAgent: false });
  try {
    await timeSequential(node, 'warm', false);
    const floor = await timeSequential(node, 'plain', false);
    await node.startAgent();
    await node.waitForChain(true);
    const meshedTimes = await timeSequential(node, 'meshed', true);

    const manifests = Array.from({ length: COUNT }, (_, i) => meshedPod('default', `burst-${i}`));
    for (const manifest of manifests) node.api.upsertPod(manifest);
    const burstStart = performance.now();
    const results = await Promise.allSettled(manifests.map((m) => node.createPod(m, { register: false })));
    const burstWall = performance.now() - burstStart;
    const failures = results.filter((r) => r.status === 'rejected').length;

    const overhead = median(meshedTimes) - median(floor);
    return {
      title:
        'End to end: sandbox creation through CRI (containerd + bridge + host-local + portmap [+ istio-cni])',
      rows: [
        {
          metric: 'meshed sandbox median',
          value: median(meshedTimes),
          floor: median(floor),
          unit: 'ms',
          note: `${COUNT} sequential; floor = same chain without istio-cni`,
        },
        {
          metric: 'meshed sandbox p90',
          value: percentile(meshedTimes, 90),
          floor: percentile(floor, 90),
          unit: 'ms',
        },
        { metric: 'median overhead of istio-cni', value: overhead, unit: 'ms', budget: 30 },
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
    await node.close();
  }
}
