// The plugin's CNI handlers (behaviour §2.5, style-anchors §D4). `add` follows upstream's order; everything that
// costs time (kubeconfig read, TLS, rule programming) happens only once a pod really has to be looked up.
import type { Logger } from 'pino';
import type { CmdArgs, CniHandlers } from '../cni/dispatch.ts';
import { parseCniArgs } from '../cni/cni-args.ts';
import { emptyResult, encodeResult, parsePrevResult } from '../cni/result.ts';
import { AppError, errorMessage } from '../errors.ts';
import type { ApplyDeps, ApplyOutcome, RuleTarget } from '../rules/apply.ts';
import type { CaptureConfig } from '../rules/capture-config.ts';
import type { Clock, Exec } from '../sys/ports.ts';
import type { PluginConfig, PluginLogLevel } from './config.ts';
import { parsePluginConfig } from './config.ts';
import { decideBeforeLookup, decideForPod } from './decide.ts';
import type { LookupPolicy, PodGetter } from './pod-lookup.ts';
import { DEFAULT_LOOKUP_POLICY, lookupPod } from './pod-lookup.ts';
import { captureConfigFromPodWithWarnings, podInfoFromManifest } from './redirect.ts';

export const KUBECONFIG_FILE = 'istio-cni-kubeconfig';
export const LOG_SOCKET_FILE = 'log.sock';

export interface PluginLoggingControl {
  readonly logger: Logger;
  readonly setLevel: (level: PluginLogLevel) => void;
  /** Called once the run dir is known: turn on forwarding when `<run dir>/log.sock` exists. */
  configureForwarding(runDir: string): void;
}

export interface PodSourceHandle extends PodGetter {
  close(): void;
}

export interface PluginDeps {
  /** The plugin process's environment (ISTIO_OUTBOUND_OWNER_GROUPS & co., §2.8 step 2). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logging: PluginLoggingControl;
  readonly clock: Clock;
  readonly exec: Exec;
  /** Reads the kubeconfig and builds the pod source; throws when it is missing or invalid. */
  openPodSource(kubeconfigPath: string, requestTimeoutMs: number): Promise<PodSourceHandle>;
  applyCaptureRules(config: CaptureConfig, target: RuleTarget, deps: ApplyDeps): Promise<ApplyOutcome>;
  readonly lookupPolicy?: LookupPolicy;
}

function joinPath(dir: string, file: string): string {
  return dir === '' ? file : `${dir.replace(/\/+$/, '')}/${file}`;
}

function policyFor(config: PluginConfig, base: LookupPolicy): LookupPolicy {
  if (config.podLookupDeadlineSeconds === undefined) return base;
  const deadlineMs = config.podLookupDeadlineSeconds * 1000;
  return { ...base, deadlineMs, requestTimeoutMs: Math.min(base.requestTimeoutMs, deadlineMs) };
}

export function createHandlers(deps: PluginDeps): CniHandlers {
  const basePolicy = deps.lookupPolicy ?? DEFAULT_LOOKUP_POLICY;

  async function add(args: CmdArgs): Promise<string> {
    let config: PluginConfig;
    let output: string;
    try {
      config = parsePluginConfig(args.netConf, args.cniVersion);
      output = encodeResult(
        config.prevResult === undefined || config.prevResult === null
          ? emptyResult(args.cniVersion)
          : parsePrevResult(config.prevResult, args.cniVersion).json,
      );
    } catch (error) {
      throw new AppError('CONFIG_INVALID', errorMessage(error), { cause: error });
    }
    if (config.pluginLogLevel !== undefined) deps.logging.setLevel(config.pluginLogLevel);
    deps.logging.configureForwarding(config.cniAgentRunDir);

    let k8sArgs;
    try {
      k8sArgs = parseCniArgs(args.args);
    } catch (error) {
      throw new AppError('CNI_PROTOCOL', `failed to load args: ${errorMessage(error)}`, { cause: error });
    }
    const logger = deps.logging.logger.child({
      pod: `${k8sArgs.K8S_POD_NAMESPACE}/${k8sArgs.K8S_POD_NAME}`,
      containerID: args.containerId,
      netns: args.netns,
    });
    const early = decideBeforeLookup(k8sArgs, config);
    if (early.action === 'skip') {
      logger.info(`skipping: ${early.reason}`);
      return output;
    }
    if (config.ambientEnabled) {
      logger.warn(
        'ambient_enabled is set but this plugin implements the sidecar path only; continuing as sidecar',
      );
    }

    const policy = policyFor(config, basePolicy);
    let source: PodSourceHandle;
    try {
      source = await deps.openPodSource(
        joinPath(config.cniAgentRunDir, KUBECONFIG_FILE),
        policy.requestTimeoutMs,
      );
    } catch (error) {
      throw new AppError('KUBECONFIG_INVALID', `failed to createNewK8sClient: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    let manifest: unknown;
    try {
      manifest = await lookupPod(
        source,
        k8sArgs.K8S_POD_NAMESPACE,
        k8sArgs.K8S_POD_NAME,
        policy,
        deps.clock,
        (error, attempt, waitMs) => {
          logger.warn(`pod lookup attempt ${attempt} failed, retrying in ${waitMs} ms: ${error.message}`);
        },
      );
    } finally {
      source.close();
    }
    const pod = podInfoFromManifest(manifest);
    const decision = decideForPod(pod);
    if (decision.action === 'skip') {
      logger.info(`skipping: ${decision.reason}`);
      return output;
    }
    const { config: capture, warnings } = captureConfigFromPodWithWarnings(pod, deps.env);
    for (const warning of warnings) logger.warn(warning);
    logger.info(
      `============= Start ${config.nativeNftables ? 'nftables' : 'iptables'} configuration for ${pod.name}`,
    );
    const outcome = await deps.applyCaptureRules(
      capture,
      { netns: args.netns, backend: config.nativeNftables ? 'nftables' : 'iptables' },
      { exec: deps.exec, logger },
    );
    logger.info(
      `redirect rules ${outcome.changed ? 'programmed' : 'already present'} (ipv6: ${outcome.ipv6})`,
    );
    return output;
  }

  return {
    add,
    // No cleanup on DEL: the netns is being destroyed with its rules (upstream). Idempotent, and it succeeds when
    // the netns is already gone.
    del: () => Promise.resolve(),
    // Upstream's CHECK is a no-op success.
    check: () => Promise.resolve(),
    status: () => Promise.resolve(),
    gc: () => Promise.resolve(),
  };
}
