// Repair controller (behaviour §3) and node readiness taint removal.
// PLACEHOLDER SIGNATURE: the repair work (issue 8) replaces the body; the agent (bin/install-cni.ts via
// src/installer) calls it after the first successful install, never before (an unreachable API server must not
// block the install).
import type { Logger } from 'pino';
import type { Metrics } from '../sys/ports.ts';

export interface RepairHandle {
  /** Stops informers and the work queue; resolves when idle. */
  stop(): Promise<void>;
}

export interface RepairStartOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly signal: AbortSignal;
}

export function startRepairController(_config: unknown, _options: RepairStartOptions): RepairHandle {
  return { stop: () => Promise.resolve() };
}
