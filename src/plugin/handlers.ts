// The plugin's CNI handlers (behaviour §2.5, style-anchors §D4). `add` follows upstream's order; everything that
// costs time (kubeconfig read, TLS, rule programming) happens only once a pod really has to be looked up. `check`
// runs the same decision flow and, for a pod that must be meshed, verifies the rules instead of applying them.
import type { Logger } from 'pino';
import type { CmdArgs, CniHandlers } from '../cni/dispatch.ts';
import { parseCniArgs } from '../cni/cni-args.ts';
import type { ResultIp } from '../cni/result.ts';
import { emptyResult, encodeResult, parsePrevResult } from '../cni/result.ts';
import { AppError, errorMessage } from '../errors.ts';
import type { ApplyDeps, ApplyOutcome, RuleTarget } from '../rules/apply.ts';
import type { CaptureConfig } from '../rules/capture-config.ts';
import type { Clock, Exec } from '../sys/ports.ts';
import type { NetnsUserns } from '../sys/netns-owner.ts';
import type { PluginConfig, PluginLogLevel } from './config.ts';
import { parsePluginConfig } from './config.ts';
import { decideBeforeLookup, decideForPod, isCniPod } from './decide.ts';
import { NO_OP_COMMANDS } from './no-op-commands.ts';
import { EVENT_SOCKET_FILE, KUBECONFIG_FILE } from '../run-dir.ts';
import type { LookupPolicy, PodGetter } from './pod-lookup.ts';
import type { PodInfo } from './redirect.ts';
import type * as PodLookupModule from './pod-lookup.ts';
import type * as RedirectModule from './redirect.ts';
import type * as AmbientModule from './ambient.ts';

export interface PluginLoggingControl {
  readonly logger: Logger;
  readonly setLevel: (level: PluginLogLevel) => void;
  /** Called once the run dir is known: relay the records to the agent at exit (`<run dir>/log.sock`), or to the
   * rolling `<run dir>/istio-cni.log` when the agent does not take them. */
  configureForwarding(runDir: string): void;
}

export interface PodSourceHandle extends PodGetter {
  getNamespace(name: string): Promise<unknown>;
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
  /** CHECK: rejects (AppError 'RULES_INVALID') when the netns does not hold exactly the expected rules. */
  checkCaptureRules(config: CaptureConfig, target: RuleTarget, deps: ApplyDeps): Promise<void>;
  /** The user namespace owning CNI_NETNS (§2.8 step 6); asked only for a pod whose rules are applied/checked. */
  netnsUserns(netns: string): Promise<NetnsUserns>;
  /** Ambient: POST the add event to `<run dir>/pluginevent.sock` (rejects on transport error or non-200). */
  postCniEvent(socketPath: string, body: string): Promise<void>;
}

function joinPath(dir: string, file: string): string {
  return dir === '' ? file : `${dir.replace(/\/+$/, '')}/${file}`;
}

function policyFor(config: PluginConfig, base: LookupPolicy): LookupPolicy {
  if (config.podLookupDeadlineSeconds === undefined) return base;
  const deadlineMs = config.podLookupDeadlineSeconds * 1000;
  return { ...base, deadlineMs, requestTimeoutMs: Math.min(base.requestTimeoutMs, deadlineMs) };
}

function labelsOf(object: unknown): Record<string, string> {
  const labels = (object as { metadata?: { labels?: unknown } } | null)?.metadata?.labels;
  if (typeof labels !== 'object' || labels === null) return {};
  return Object.fromEntries(
    Object.entries(labels).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}

/** The lookup-and-redirect half of the flow, loaded once a pod is really looked up: a pass-through ADD (excluded
 * namespace, not a Kubernetes pod, the agent's own pod) never evaluates it. */
type LookupModules = typeof PodLookupModule & typeof RedirectModule & typeof AmbientModule;
let lookupModules: Promise<LookupModules> | undefined;
function loadLookupModules(): Promise<LookupModules> {
  lookupModules ??= Promise.all([
    import('./pod-lookup.ts'),
    import('./redirect.ts'),
    import('./ambient.ts'),
  ]).then(([lookup, redirect, ambient]) => ({ ...lookup, ...redirect, ...ambient }));
  return lookupModules;
}

export function createHandlers(deps: PluginDeps): CniHandlers {
  /** §2.6.2: pod + namespace GET per attempt, constant 1 s backoff, 2 attempts (31 with the retry flag). */
  async function detectAmbient(
    m: LookupModules,
    source: PodSourceHandle,
    config: PluginConfig,
    namespace: string,
    name: string,
    logger: Logger,
  ): Promise<{ isAmbient: boolean }> {
    // §2.5 step 8a: a detection error fails the ADD only with the retry flag; otherwise the pod is not ambient.
    const detectionFailed = (message: string): { isAmbient: boolean } => {
      if (config.enableAmbientDetectionRetry) throw new AppError('KUBE_API', message);
      logger.error(`${message}; treating the pod as not ambient`);
      return { isAmbient: false };
    };
    let selectors: ReturnType<LookupModules['compileEnablementSelectors']>;
    try {
      selectors = m.compileEnablementSelectors(config.enablementSelectors);
    } catch (error) {
      return detectionFailed(errorMessage(error));
    }
    const attempts = config.enableAmbientDetectionRetry ? 31 : 2;
    let podErr = '<nil>';
    let nsErr = '<nil>';
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      const [podResult, nsResult] = await Promise.allSettled([
        source.getPod(namespace, name),
        source.getNamespace(namespace),
      ]);
      if (podResult.status === 'fulfilled' && nsResult.status === 'fulfilled') {
        try {
          const pod = m.podInfoFromManifest(podResult.value);
          return { isAmbient: m.isAmbientPod(pod, labelsOf(nsResult.value), selectors) };
        } catch (error) {
          return detectionFailed(`failed to read pod ${namespace}/${name}: ${errorMessage(error)}`);
        }
      }
      podErr = podResult.status === 'rejected' ? errorMessage(podResult.reason) : '<nil>';
      nsErr = nsResult.status === 'rejected' ? errorMessage(nsResult.reason) : '<nil>';
      if (attempt < attempts) await deps.clock.sleep(1000);
    }
    return detectionFailed(`failed to get pod or namespace info: podErr=${podErr}, nsErr=${nsErr}`);
  }

  /**
   * ADD and CHECK share the decision flow (same skips, same lookup, same parameters). ADD applies the rules and
   * posts the ambient event; CHECK verifies the rules and posts nothing. Only ADD's records carry `add_outcome`
   * (the agent counts ADD outcomes from them).
   */
  async function steps(args: CmdArgs, mode: 'add' | 'check'): Promise<string> {
    const outcome = (label: 'skipped' | 'redirected' | 'ambient'): { add_outcome?: string } =>
      mode === 'add' ? { add_outcome: label } : {};
    let config: PluginConfig;
    let output: string;
    let ips: readonly ResultIp[] | undefined;
    try {
      config = parsePluginConfig(args.netConf, args.cniVersion);
      if (config.prevResult === undefined || config.prevResult === null) {
        output = encodeResult(emptyResult(args.cniVersion));
      } else {
        const prev = parsePrevResult(config.prevResult, args.cniVersion);
        output = encodeResult(prev.json);
        ips = prev.ips;
      }
    } catch (error) {
      throw new AppError('CONFIG_INVALID', errorMessage(error), { cause: error });
    }
    let k8sArgs;
    try {
      k8sArgs = parseCniArgs(args.args);
    } catch (error) {
      throw new AppError('CNI_PROTOCOL', `failed to load args: ${errorMessage(error)}`, { cause: error });
    }
    // §2.5 step 5: the plugin's level and the forwarding to the agent are set up after CNI_ARGS and the
    // self-detection, as upstream does: records about the agent's own pod (whose agent is not up yet) stay on stderr.
    if (!isCniPod(k8sArgs, config)) {
      if (config.pluginLogLevel !== undefined) deps.logging.setLevel(config.pluginLogLevel);
      deps.logging.configureForwarding(config.cniAgentRunDir);
    }
    const logger = deps.logging.logger.child({
      pod: `${k8sArgs.K8S_POD_NAMESPACE}/${k8sArgs.K8S_POD_NAME}`,
      containerID: args.containerId,
      netns: args.netns,
    });
    const early = decideBeforeLookup(k8sArgs, config);
    if (early.action === 'skip') {
      logger.info(outcome('skipped'), `skipping: ${early.reason}`);
      return output;
    }
    const m = await loadLookupModules();
    const policy = policyFor(config, m.DEFAULT_LOOKUP_POLICY);
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
    let pod: PodInfo;
    try {
      if (config.ambientEnabled) {
        const ambient = await detectAmbient(
          m,
          source,
          config,
          k8sArgs.K8S_POD_NAMESPACE,
          k8sArgs.K8S_POD_NAME,
          logger,
        );
        if (ambient.isAmbient && mode === 'check') {
          logger.info('pod is enabled for ambient: no redirect rules to check in its netns');
          return output;
        }
        if (ambient.isAmbient) {
          const body = JSON.stringify(
            m.cniAddEvent(args.netns, k8sArgs.K8S_POD_NAME, k8sArgs.K8S_POD_NAMESPACE, ips),
          );
          try {
            await deps.postCniEvent(joinPath(config.cniAgentRunDir, EVENT_SOCKET_FILE), body);
          } catch (error) {
            throw new AppError(
              'CNI_PROTOCOL',
              `istio-cni cmdAdd failed to contact node Istio CNI agent: ${errorMessage(error)}`,
              { cause: error },
            );
          }
          logger.info(outcome('ambient'), 'pod is enabled for ambient: sent the add event to the node agent');
          return output;
        }
      }
      const manifest = await m.lookupPod(
        source,
        k8sArgs.K8S_POD_NAMESPACE,
        k8sArgs.K8S_POD_NAME,
        policy,
        deps.clock,
        (error, attempt, waitMs) => {
          logger.warn(`pod lookup attempt ${attempt} failed, retrying in ${waitMs} ms: ${error.message}`);
        },
      );
      pod = m.podInfoFromManifest(manifest);
    } finally {
      source.close();
    }
    const decision = decideForPod(pod);
    if (decision.action === 'skip') {
      logger.info(outcome('skipped'), `skipping: ${decision.reason}`);
      return output;
    }
    const { config: capture, warnings } = m.captureConfigFromPodWithWarnings(pod, deps.env);
    for (const warning of warnings) logger.warn(warning);
    // `hostUsers: false` pods: their netns belongs to the pod's user namespace, and `-m owner` rules must be
    // written from there (the kernel rejects them from the host's, and the uid is the pod's view).
    const owner = await deps.netnsUserns(args.netns);
    if (owner.kind === 'other') {
      logger.info(
        `the pod netns belongs to a non-initial user namespace: writing the rules through ${owner.path}`,
      );
    } else if (owner.kind === 'unknown') {
      logger.debug(`owning user namespace not detected (${owner.reason}): writing the rules from this one`);
    }
    const target: RuleTarget = {
      netns: args.netns,
      backend: config.nativeNftables ? 'nftables' : 'iptables',
      ...(owner.kind === 'other' ? { userns: owner.path } : {}),
    };
    if (mode === 'check') {
      await deps.checkCaptureRules(capture, target, { exec: deps.exec, logger });
      logger.info(`redirect rules for ${pod.name} are present (${target.backend})`);
      return output;
    }
    logger.info(`============= Start ${target.backend} configuration for ${pod.name}`);
    const applied = await deps.applyCaptureRules(capture, target, { exec: deps.exec, logger });
    logger.info(
      outcome('redirected'),
      `redirect rules ${applied.changed ? 'programmed' : 'already present'} (ipv6: ${applied.ipv6})`,
    );
    return output;
  }

  async function add(args: CmdArgs): Promise<string> {
    try {
      return await steps(args, 'add');
    } catch (error) {
      // Also in the logs (stderr, log.sock): the agent counts ADD outcomes from these records.
      deps.logging.logger.error(
        { add_outcome: 'failed', containerID: args.containerId, netns: args.netns },
        `ADD failed: ${errorMessage(error)}`,
      );
      throw error;
    }
  }

  return {
    ...NO_OP_COMMANDS,
    add,
    // Upstream's CHECK is a no-op success; ours verifies the rules of a pod that must be meshed.
    async check(args: CmdArgs): Promise<void> {
      try {
        await steps(args, 'check');
      } catch (error) {
        deps.logging.logger.error(
          { containerID: args.containerId, netns: args.netns },
          `CHECK failed: ${errorMessage(error)}`,
        );
        throw error;
      }
    },
  };
}
