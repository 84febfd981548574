// Pure helpers of the repair controller's settings (kept apart from controller.ts so they are testable without
// the API client).
import type { AgentConfig } from '../config/load.ts';
import { ConfigError } from '../errors.ts';
import type { IptablesVariant } from '../rules/apply.ts';
import type { PodSelectors } from './api.ts';

/** Field/label selectors of the pod informer (§3.1). Quirk §8.5: upstream always appends
 * `spec.nodeName=<REPAIR_NODE_NAME>`, so an empty value watches only unscheduled pods. We fall back to the
 * agent's node name when REPAIR_NODE_NAME is empty (a DaemonSet must only act on its own node's pods): NODE_NAME,
 * then KUBERNETES_NODE_NAME, then the host name (config/load.ts), so the selector always names a node. */
export function podSelectors(config: Pick<AgentConfig, 'repair' | 'nodeName'>): PodSelectors {
  const nodeName = config.repair.nodeName !== '' ? config.repair.nodeName : config.nodeName;
  const fields = [config.repair.fieldSelectors, `spec.nodeName=${nodeName}`].filter((part) => part !== '');
  return { fieldSelector: fields.join(','), labelSelector: config.repair.labelSelectors };
}

export function iptablesVariantFrom(value: string): IptablesVariant | undefined {
  if (value === '') return undefined;
  if (value === 'legacy' || value === 'nft') return value;
  throw new ConfigError(`invalid FORCE_IPTABLES_BINARY ${JSON.stringify(value)}: want "legacy" or "nft"`);
}
