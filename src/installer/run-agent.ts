// The agent's main process (behaviour §1.2, §1.3, §1.10): servers, log sink, the install loop, the repair
// controller once the install is first valid, and cleanup on shutdown — with every host adapter injected by the
// composition root (bin/install-cni.ts), which is the only place that touches the real process.
import type { AgentConfig } from '../config/load.ts';
import { errorFields } from '../errors.ts';
import { addOutcomeOf, type AgentLogging, type RelayedRecord } from '../log/agent-logger.ts';
import type { RepairHandle, startRepairController } from '../repair/controller.ts';
import type { Metrics } from '../sys/ports.ts';
import { VERSION } from '../version.ts';
import { Installer, cleanupNode, type WatchDir } from './agent.ts';
import type { AgentFs } from './fs-port.ts';

/** A cleanup that takes longer than this is abandoned (the entry is removed first, so the node stays usable). */
const CLEANUP_TIMEOUT_MS = 20_000;
/** Then the repair controller gets this long to stop; with the cleanup's 20 s it stays inside the 30 s grace period. */
const REPAIR_STOP_TIMEOUT_MS = 5_000;

/** Whether `work` settles (either way) within `ms`; the work is not cancelled, only no longer waited for. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = work.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface AgentRuntime {
  readonly logging: AgentLogging;
  readonly fs: AgentFs;
  readonly metrics: Metrics & { render(): string };
  readonly watchDir: WatchDir;
  startMetricsServer(port: number, host: string, render: () => string): Promise<RunningServer>;
  startHealthServer(port: number, host: string, isReady: () => boolean): Promise<RunningServer>;
  startLogSink(
    runDir: string,
    onRecords: (records: RelayedRecord[]) => void,
    onProblem: (problem: string) => void,
  ): Promise<{ close(): Promise<void> }>;
  /** Loaded lazily: the API client is not paid for at start-up, before the plugin is installed. */
  loadRepairController(): Promise<typeof startRepairController>;
  /** Registers the shutdown listener (SIGTERM/SIGINT in the real process). */
  onShutdownSignal(listener: (name: string) => void): void;
  /** How long the repair controller gets to stop at shutdown; default 5 s (tests shorten it). */
  readonly repairStopTimeoutMs?: number;
}

export async function runAgent(config: AgentConfig, runtime: AgentRuntime): Promise<number> {
  const { logging: logs, fs, metrics } = runtime;
  const { logger } = logs;
  logger.info(
    { version: VERSION, config },
    'starting install-cni (ambient mode is not supported by this agent)',
  );

  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: string): void => {
    signals++;
    if (signals === 1) {
      logger.info({ signal: name }, 'shutting down: removing the istio-cni entry, kubeconfig and binary');
      controller.abort();
    } else {
      logger.warn({ signal: name }, 'cleanup already in progress; it will finish (or time out) before exit');
    }
  };
  runtime.onShutdownSignal(onSignal);

  const servers: RunningServer[] = [];
  let sink: { close(): Promise<void> } | undefined;
  let repair: RepairHandle | undefined;
  let installer: Installer | undefined;
  let exitCode = 0;
  try {
    if (config.monitoringPort > 0) {
      try {
        const server = await runtime.startMetricsServer(config.monitoringPort, config.listenAddress, () =>
          metrics.render(),
        );
        servers.push(server);
        logger.info({ port: server.port }, 'metrics server listening');
      } catch (error) {
        logger.error(
          { port: config.monitoringPort, ...errorFields(error) },
          'cannot start the metrics server; continuing without /metrics (set MONITORING_PORT to a free port, or 0 to disable)',
        );
      }
    }
    try {
      sink = await runtime.startLogSink(
        config.runDir,
        (records) => {
          logs.relay(records);
          for (const record of records) {
            const outcome = addOutcomeOf(record);
            if (outcome !== undefined) {
              metrics.increment('istio_cni_plugin_adds_total', 'CNI ADD outcomes reported by the plugin.', {
                outcome,
              });
            }
          }
        },
        (problem) => logger.warn(problem),
      );
    } catch (error) {
      logger.error(
        errorFields(error),
        `cannot start the log server at ${config.runDir}/log.sock; check CNI_AGENT_RUN_DIR is a writable host path`,
      );
      return 1;
    }
    installer = new Installer(config, {
      fs,
      watchDir: runtime.watchDir,
      logger,
      metrics,
    });
    const health = installer;
    try {
      const server = await runtime.startHealthServer(
        config.readinessPort,
        config.listenAddress,
        () => health.state.ready,
      );
      servers.push(server);
      logger.info({ port: server.port }, 'health server listening');
    } catch (error) {
      logger.error(
        { port: config.readinessPort, ...errorFields(error) },
        `cannot listen on READINESS_PORT ${config.readinessPort}: set READINESS_PORT (and the readiness probe) to a free port`,
      );
      return 1;
    }
    installer.onFirstReady(() => {
      // The controller handles REPAIR_ENABLED=false itself and still removes the not-ready taint (issue 8).
      // Loaded lazily: the API client is not paid for at start-up, before the plugin is installed.
      runtime
        .loadRepairController()
        .then((startRepairController) => {
          if (controller.signal.aborted) return;
          repair = startRepairController(config, {
            logger: logs.scoped('repair', config.repairLogLevel),
            metrics,
            signal: controller.signal,
          });
        })
        .catch((error: unknown) => {
          logger.error(errorFields(error), 'cannot start the repair controller');
        });
    });
    try {
      await installer.run(controller.signal);
    } catch (error) {
      logger.error(errorFields(error), 'installer failed; cleaning up and exiting');
      exitCode = 1;
    }
    const cleanup = cleanupNode(config, fs, logger, installer.state.trackedConfig).then(
      () => true,
      (error: unknown) => {
        logger.error(
          errorFields(error),
          'cleanup failed (later steps skipped so the config never names a missing binary)',
        );
        return false;
      },
    );
    // A failed or timed-out cleanup is logged, not an exit status: SIGTERM exits 0 (contract.md), as upstream.
    if (!(await settlesWithin(cleanup, CLEANUP_TIMEOUT_MS))) logger.error('cleanup timed out; exiting');
    return exitCode;
  } finally {
    controller.abort();
    // A hung API request (no answer, no reset) must not hold the exit past the pod's grace period.
    const repairStopBound = runtime.repairStopTimeoutMs ?? REPAIR_STOP_TIMEOUT_MS;
    if (repair !== undefined && !(await settlesWithin(repair.stop(), repairStopBound)))
      logger.warn('the repair controller did not stop in time; exiting anyway');
    await Promise.all(servers.map((server) => server.close()));
    await sink?.close();
  }
}
