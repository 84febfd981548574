// Port of upstream cni/pkg/repair/repair_test.go TestMatchesFilter (behaviour §5.5) plus odd-status inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBrokenPod, type BrokenPodFilter } from '../../../src/repair/detect.ts';
import { repairPodFromManifest } from '../../../src/repair/pod.ts';
import { brokenPodManifest, podManifest, type InitStatusInput } from '../../support/repair-pods.ts';

const defaults: BrokenPodFilter = {
  sidecarAnnotation: 'sidecar.istio.io/status',
  initContainerName: 'istio-validation',
  initContainerTerminationMessage: '',
  initContainerExitCode: 126,
};

function pod(manifest: unknown) {
  const parsed = repairPodFromManifest(manifest);
  assert.ok(parsed);
  return parsed;
}

const completed = { terminated: { exitCode: 0, reason: 'Completed', message: '' } };
/** istio-validation as brokenPodManifest has it: waiting to restart, last exit 126. */
const crashLooping: InitStatusInput = {
  name: 'istio-validation',
  state: { waiting: { reason: 'CrashLoopBackOff' } },
  lastState: { terminated: { exitCode: 126, reason: 'Error', message: '' } },
};

const cases: { name: string; manifest: unknown; filter?: Partial<BrokenPodFilter>; want: boolean }[] = [
  {
    name: 'OK pod (validation completed)',
    manifest: podManifest({ initStatuses: [{ name: 'istio-validation', state: completed }] }),
    want: false,
  },
  {
    name: 'pod that failed before but is now completed',
    manifest: podManifest({
      initStatuses: [
        {
          name: 'istio-validation',
          state: completed,
          lastState: { terminated: { exitCode: 126, reason: 'Error', message: '' } },
        },
      ],
    }),
    want: false,
  },
  {
    // §3.3: reason Completed or exit code 0, either one, means not currently failing.
    name: 'currently terminated with reason Completed but a non-zero exit code, last exit 126',
    manifest: podManifest({
      initStatuses: [
        {
          name: 'istio-validation',
          state: { terminated: { exitCode: 1, reason: 'Completed', message: '' } },
          lastState: { terminated: { exitCode: 126, reason: 'Error', message: '' } },
        },
      ],
    }),
    want: false,
  },
  {
    name: 'currently terminated with exit code 0 but another reason, last exit 126',
    manifest: podManifest({
      initStatuses: [
        {
          name: 'istio-validation',
          state: { terminated: { exitCode: 0, reason: 'Error', message: '' } },
          lastState: { terminated: { exitCode: 126, reason: 'Error', message: '' } },
        },
      ],
    }),
    want: false,
  },
  { name: 'crash-looping (waiting) with last exit 126', manifest: brokenPodManifest(), want: true },
  {
    name: 'currently terminated with error, last exit 126',
    manifest: podManifest({
      initStatuses: [
        {
          name: 'istio-validation',
          state: { terminated: { exitCode: 126, reason: 'Error', message: '' } },
          lastState: { terminated: { exitCode: 126, reason: 'Error', message: '' } },
        },
      ],
    }),
    want: true,
  },
  {
    name: 'exit-code filter 55',
    manifest: brokenPodManifest(),
    filter: { initContainerExitCode: 55 },
    want: false,
  },
  { name: 'no sidecar annotation', manifest: brokenPodManifest({ annotations: {} }), want: false },
  {
    name: 'termination message filter mismatch',
    manifest: brokenPodManifest({ lastMessage: 'Died for some reason' }),
    filter: { initContainerTerminationMessage: 'Termination Message' },
    want: false,
  },
  {
    name: 'termination message filter match',
    manifest: brokenPodManifest({ lastMessage: 'Termination Message' }),
    filter: { initContainerTerminationMessage: 'Termination Message' },
    want: true,
  },
  {
    name: 'termination message match with surrounding spaces',
    manifest: brokenPodManifest({ lastMessage: '  Termination Message \n' }),
    filter: { initContainerTerminationMessage: ' Termination Message  ' },
    want: true,
  },
  { name: 'exit code 121 vs filter 126', manifest: brokenPodManifest({ lastExitCode: 121 }), want: false },
  { name: 'exit code 126 vs filter 126', manifest: brokenPodManifest({ lastExitCode: 126 }), want: true },
  {
    name: 'exit code filter 0 matches any',
    manifest: brokenPodManifest({ lastExitCode: 3 }),
    filter: { initContainerExitCode: 0 },
    want: true,
  },
  { name: 'empty container status', manifest: podManifest({ initStatuses: [] }), want: false },
  {
    name: 'other init container name is ignored',
    manifest: brokenPodManifest({ containerName: 'istio-init' }),
    want: false,
  },
  {
    name: 'empty init container name filter matches any container',
    manifest: brokenPodManifest({ containerName: 'istio-init' }),
    filter: { initContainerName: '' },
    want: true,
  },
  {
    name: 'empty sidecar annotation filter considers every pod',
    manifest: brokenPodManifest({ annotations: {} }),
    filter: { sidecarAnnotation: '' },
    want: true,
  },
  {
    // §3.3: an empty message filter matches any last termination message (the kubelet fills it in).
    name: 'no termination message filter: a non-empty last message still matches',
    manifest: brokenPodManifest({ lastMessage: 'iptables rules are not in place' }),
    want: true,
  },
  {
    name: 'the crash-looping validation container listed after another init container',
    manifest: podManifest({
      initStatuses: [{ name: 'app-init', state: { running: {} } }, crashLooping],
    }),
    want: true,
  },
  {
    name: 'any init container (empty name filter): a completed one before the crash-looping one',
    manifest: podManifest({
      initStatuses: [
        {
          name: 'app-init',
          state: completed,
          lastState: { terminated: { exitCode: 126, reason: 'Error', message: '' } },
        },
        crashLooping,
      ],
    }),
    filter: { initContainerName: '' },
    want: true,
  },
  {
    name: 'any init container (empty name filter): one never restarted before the crash-looping one',
    manifest: podManifest({
      initStatuses: [
        { name: 'app-init', state: { terminated: { exitCode: 126, reason: 'Error', message: '' } } },
        crashLooping,
      ],
    }),
    filter: { initContainerName: '' },
    want: true,
  },
  {
    name: 'first failure only (no lastState) is not broken',
    manifest: podManifest({
      initStatuses: [{ name: 'istio-validation', state: { terminated: { exitCode: 126, reason: 'Error' } } }],
    }),
    want: false,
  },
];

for (const c of cases) {
  test(`isBrokenPod: ${c.name}`, () => {
    assert.equal(isBrokenPod(pod(c.manifest), { ...defaults, ...c.filter }), c.want);
  });
}

test('odd status fields are tolerated, never thrown', () => {
  const odd: unknown[] = [
    { metadata: { name: 'a' } },
    { metadata: { name: 'a' }, status: null },
    { metadata: { name: 'a' }, status: { initContainerStatuses: 'nope' } },
    {
      metadata: { name: 'a', annotations: { 'sidecar.istio.io/status': 1 } },
      status: { initContainerStatuses: [null, 3, {}] },
    },
    {
      metadata: { name: 'a', annotations: { 'sidecar.istio.io/status': '{}' } },
      status: {
        initContainerStatuses: [
          { name: 'istio-validation', state: 'x', lastState: { terminated: { exitCode: '126' } } },
        ],
      },
    },
  ];
  for (const manifest of odd) {
    assert.equal(isBrokenPod(pod(manifest), defaults), false);
  }
  assert.equal(repairPodFromManifest({ metadata: {} }), undefined);
  assert.equal(repairPodFromManifest(null), undefined);
  assert.equal(repairPodFromManifest('pod'), undefined);
});
