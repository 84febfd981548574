// The ADD decision flow (behaviour §2.5) as pure functions: before the lookup (steps 3, 6, 7) and after it
// (steps 11–16). "Skip" = success, pass-through result, no side effects.
import type { K8sArgs } from '../cni/cni-args.ts';
import type { PluginConfig } from './config.ts';
import type { PodInfo } from './redirect.ts';
import { parseGoBool } from '../go-bool.ts';

export type PreLookupDecision =
  { readonly action: 'skip'; readonly reason: string } | { readonly action: 'lookup' };

export type PodDecision =
  { readonly action: 'skip'; readonly reason: string } | { readonly action: 'redirect' };

/** Step 3: the agent's own pod, which must start before its kubeconfig exists. */
export function isCniPod(args: K8sArgs, config: PluginConfig): boolean {
  return args.K8S_POD_NAME.startsWith('istio-cni-node-') && args.K8S_POD_NAMESPACE === config.podNamespace;
}

/** Steps 3, 6, 7 — decided before any credential is read (quirk §8.8 fixed: the kubeconfig is read only after). */
export function decideBeforeLookup(args: K8sArgs, config: PluginConfig): PreLookupDecision {
  if (isCniPod(args, config)) return { action: 'skip', reason: 'the pod is the Istio CNI agent itself' };
  if (args.K8S_POD_NAMESPACE === '' || args.K8S_POD_NAME === '') {
    return { action: 'skip', reason: 'not a kubernetes pod' };
  }
  if (config.excludeNamespaces.includes(args.K8S_POD_NAMESPACE)) {
    return { action: 'skip', reason: `excluded namespace ${args.K8S_POD_NAMESPACE}` };
  }
  return { action: 'lookup' };
}

/** Steps 11–16 on the looked-up pod. */
export function decideForPod(pod: PodInfo): PodDecision {
  if (pod.containers.includes('istio-init')) {
    return { action: 'skip', reason: 'excluded due to being an istio-init pod (it programs itself)' };
  }
  const disableEnvoy = pod.proxyEnvironments['DISABLE_ENVOY'];
  if (disableEnvoy !== undefined && parseGoBool(disableEnvoy) === true) {
    return { action: 'skip', reason: 'excluded due to DISABLE_ENVOY on istio-proxy (proxyless)' };
  }
  if (!pod.containers.includes('istio-proxy')) {
    return {
      action: 'skip',
      reason: `excluded because it does not have istio-proxy container (have ${pod.containers.join(',')})`,
    };
  }
  if (pod.proxyType !== '' && pod.proxyType !== 'sidecar') {
    return { action: 'skip', reason: `excluded since proxy type is ${pod.proxyType}, not sidecar` };
  }
  let inject = pod.annotations['sidecar.istio.io/inject'];
  const label = pod.labels['sidecar.istio.io/inject'];
  if (label !== undefined) inject = label;
  if (inject !== undefined && parseGoBool(inject) === false) {
    return { action: 'skip', reason: `excluded due to inject-disabled (sidecar.istio.io/inject=${inject})` };
  }
  if (pod.annotations['sidecar.istio.io/status'] === undefined) {
    return {
      action: 'skip',
      reason: 'excluded due to not containing sidecar annotation (sidecar.istio.io/status)',
    };
  }
  return { action: 'redirect' };
}
