// Applies a CaptureConfig inside a pod network namespace (behaviour §2.8, §2.9.5, §2.11).
// PLACEHOLDER SIGNATURE: the rule-engine work (issue 4) replaces the body; callers code against this shape.
import type { Logger } from 'pino';
import type { CaptureConfig } from './capture-config.ts';
import type { Exec } from '../sys/ports.ts';
import { AppError } from '../errors.ts';

export type RuleBackend = 'iptables' | 'nftables';
export type IptablesVariant = 'legacy' | 'nft';

export interface RuleTarget {
  /** Network namespace path (CNI_NETNS, /proc/<pid>/ns/net, …). */
  readonly netns: string;
  readonly backend: RuleBackend;
  /** Force an iptables variant instead of detecting it (FORCE_IPTABLES_BINARY on the agent side). */
  readonly iptablesVariant?: IptablesVariant;
  /** For pods in a non-initial user namespace: that namespace's path. */
  readonly userns?: string;
}

export interface ApplyOutcome {
  /** False when identical rules were already present (idempotent re-ADD). */
  readonly changed: boolean;
  readonly ipv6: boolean;
}

export interface ApplyDeps {
  readonly exec: Exec;
  readonly logger: Logger;
}

/** `config.enableIpv6` is ignored: IPv6 is decided by local IP detection inside the netns. */
export function applyCaptureRules(
  _config: CaptureConfig,
  _target: RuleTarget,
  _deps: ApplyDeps,
): Promise<ApplyOutcome> {
  return Promise.reject(new AppError('RULES_INVALID', 'rule engine not implemented yet'));
}
