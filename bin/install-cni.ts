// install-cni: the node agent (DaemonSet main process) and its subcommands (contract.md). Composition root: the
// only agent file that reads process.*; builds the real adapters and hands them to src/installer.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { loadAgentConfig, type AgentConfig } from '../src/config/load.ts';
import { LOG_FLAGS, SETTINGS } from '../src/config/settings.ts';
import { ConfigError, errorMessage } from '../src/errors.ts';
import { Installer, cleanupNode } from '../src/installer/agent.ts';
import { createAgentLogging, type AgentLogging } from '../src/log/agent-logger.ts';
import type { RepairHandle } from '../src/repair/controller.ts';
import { createNodeFs } from '../src/sys/fs.ts';
import { startHealthServer, startMetricsServer, type RunningServer } from '../src/sys/http-servers.ts';
import { addOutcomeOf, startLogSink, type LogSink } from '../src/sys/log-sink.ts';
import { PrometheusMetrics } from '../src/sys/metrics.ts';
import { watchDirectory } from '../src/sys/watch.ts';
import { VERSION } from '../src/version.ts';

/** A cleanup that takes longer than this is abandoned (the entry is removed first, so the node stays usable). */
const CLEANUP_TIMEOUT_MS = 20_000;

function camel(flag: string): string {
  return flag.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());
}

function buildProgram(): Command {
  const program = new Command('install-cni')
    .description('Istio CNI node agent: installs the istio-cni plugin, its CNI config entry and kubeconfig')
    .version(VERSION, '--version')
    .showHelpAfterError();
  for (const setting of SETTINGS) {
    if (setting.envOnly) continue;
    const spec = setting.kind === 'bool' ? `--${setting.flag} [bool]` : `--${setting.flag} <value>`;
    program.addOption(new Option(spec, `${setting.description} (env ${setting.env})`));
  }
  for (const flag of LOG_FLAGS) {
    const spec = flag.flag === 'log_as_json' ? `--${flag.flag} [bool]` : `--${flag.flag} <value>`;
    program.addOption(new Option(spec, flag.description));
  }
  return program;
}

function configFrom(program: Command, mode: 'agent' | 'uninstall'): AgentConfig {
  const opts = program.opts<Record<string, string | boolean | undefined>>();
  const flags: Record<string, string> = {};
  for (const setting of SETTINGS) {
    if (setting.envOnly) continue;
    const value = opts[camel(setting.flag)];
    if (value !== undefined) flags[setting.env] = value === true ? 'true' : String(value);
  }
  const logAsJson = opts['log_as_json'];
  return loadAgentConfig({
    env: process.env,
    flags,
    logOutputLevel: typeof opts['log_output_level'] === 'string' ? opts['log_output_level'] : undefined,
    logAsJson: logAsJson === true ? true : typeof logAsJson === 'string' ? logAsJson : undefined,
    hostname: hostname(),
    mode,
  });
}

function logging(config: AgentConfig): AgentLogging {
  return createAgentLogging({
    level: config.logLevel,
    pluginLevel: config.pluginLogLevel,
    json: config.logAsJson,
    write: (line) => process.stdout.write(line),
  });
}

function loadOrExit(program: Command, mode: 'agent' | 'uninstall'): AgentConfig | undefined {
  try {
    return configFrom(program, mode);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`install-cni: ${error.message}\n`);
    process.exitCode = 1;
    return undefined;
  }
}

async function runAgent(config: AgentConfig): Promise<number> {
  const logs = logging(config);
  const { logger } = logs;
  const fs = createNodeFs();
  const metrics = new PrometheusMetrics();
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
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  const servers: RunningServer[] = [];
  let sink: LogSink | undefined;
  let repair: RepairHandle | undefined;
  let installer: Installer | undefined;
  let exitCode = 0;
  try {
    if (config.monitoringPort > 0) {
      try {
        const server = await startMetricsServer(config.monitoringPort, config.listenAddress, () =>
          metrics.render(),
        );
        servers.push(server);
        logger.info({ port: server.port }, 'metrics server listening');
      } catch (error) {
        logger.error(
          { port: config.monitoringPort, err: errorMessage(error) },
          'cannot start the metrics server; continuing without /metrics (set MONITORING_PORT to a free port, or 0 to disable)',
        );
      }
    }
    try {
      sink = await startLogSink(
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
        { err: errorMessage(error) },
        `cannot start the log server at ${config.runDir}/log.sock; check CNI_AGENT_RUN_DIR is a writable host path`,
      );
      return 1;
    }
    installer = new Installer(config, {
      fs,
      watchDir: watchDirectory,
      logger,
      metrics,
    });
    const health = installer;
    try {
      const server = await startHealthServer(
        config.readinessPort,
        config.listenAddress,
        () => health.state.ready,
      );
      servers.push(server);
      logger.info({ port: server.port }, 'health server listening');
    } catch (error) {
      logger.error(
        { port: config.readinessPort, err: errorMessage(error) },
        `cannot listen on READINESS_PORT ${config.readinessPort}: set READINESS_PORT (and the readiness probe) to a free port`,
      );
      return 1;
    }
    installer.onFirstReady(() => {
      // The controller handles REPAIR_ENABLED=false itself and still removes the not-ready taint (issue 8).
      // Loaded lazily: the API client is not paid for at start-up, before the plugin is installed.
      import('../src/repair/controller.ts')
        .then(({ startRepairController }) => {
          if (controller.signal.aborted) return;
          repair = startRepairController(config, {
            logger: logger.child({ scope: 'repair' }),
            metrics,
            signal: controller.signal,
          });
        })
        .catch((error: unknown) => {
          logger.error({ err: errorMessage(error) }, 'cannot start the repair controller');
        });
    });
    try {
      await installer.run(controller.signal);
    } catch (error) {
      logger.error({ err: errorMessage(error) }, 'installer failed; cleaning up and exiting');
      exitCode = 1;
    }
    const cleanup = cleanupNode(config, fs, logger, installer.state.trackedConfig).then(
      () => true,
      (error: unknown) => {
        logger.error(
          { err: errorMessage(error) },
          'cleanup failed (later steps skipped so the config never names a missing binary)',
        );
        return false;
      },
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        logger.error('cleanup timed out; exiting');
        resolve(false);
      }, CLEANUP_TIMEOUT_MS);
    });
    const cleaned = await Promise.race([cleanup, timedOut]);
    clearTimeout(timer);
    if (!cleaned) exitCode = 1;
    return exitCode;
  } finally {
    controller.abort();
    await repair?.stop().catch(() => undefined);
    await Promise.all(servers.map((server) => server.close()));
    await sink?.close();
  }
}

async function runUninstall(config: AgentConfig): Promise<number> {
  const { logger } = logging(config);
  try {
    await cleanupNode(config, createNodeFs(), logger);
    return 0;
  } catch (error) {
    logger.error({ err: errorMessage(error) }, 'uninstall failed');
    return 1;
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === 'rules') {
    // Raw args go to the rule CLI (istio-iptables flag forms); loaded lazily to keep the agent's start-up lean.
    const { runRulesCommand } = await import('../src/rules/cli.ts');
    const result = await runRulesCommand(args.slice(1), {
      env: process.env,
      readStdin: async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks).toString('utf8');
      },
      readFile: (file) => readFile(file, 'utf8'),
    });
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    process.exitCode = result.exitCode;
    return;
  }
  const program = buildProgram();
  let mode = 'agent' as 'agent' | 'uninstall' | 'version';
  program
    .command('uninstall')
    .description('One-shot cleanup of this node (the SIGTERM path, without the agent)')
    .action(() => {
      mode = 'uninstall';
    });
  program
    .command('version')
    .description('Print the version')
    .action(() => {
      mode = 'version';
    });
  program.action(() => {
    mode = 'agent';
  });
  // Go bool flags never consume the next argument: `--log_as_json uninstall` is the flag plus a subcommand.
  const boolFlags = new Set([
    ...SETTINGS.filter((setting) => setting.kind === 'bool' && !setting.envOnly).map(
      (setting) => `--${setting.flag}`,
    ),
    '--log_as_json',
  ]);
  await program.parseAsync(
    args.map((arg) => (boolFlags.has(arg) ? `${arg}=true` : arg)),
    { from: 'user' },
  );
  if (mode === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const config = loadOrExit(program, mode);
  if (config === undefined) return;
  const code = mode === 'uninstall' ? await runUninstall(config) : await runAgent(config);
  process.exitCode = code;
  // Whatever still holds the loop (e.g. the API client of the repair controller) must not keep a dying pod alive.
  setTimeout(() => process.exit(code), 2000).unref();
}

await main();
