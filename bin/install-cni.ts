// install-cni: the node agent (DaemonSet main process) and its subcommands (contract.md). Composition root: the
// only agent file that reads process.*; builds the real adapters and hands them to src/installer.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { loadAgentConfig, type AgentConfig } from '../src/config/load.ts';
import { LOG_FLAGS, SETTINGS } from '../src/config/settings.ts';
import { ConfigError, errorFields } from '../src/errors.ts';
import { cleanupNode } from '../src/installer/agent.ts';
import { runAgent } from '../src/installer/run-agent.ts';
import { createAgentLogging, type AgentLogging } from '../src/log/agent-logger.ts';
import { createNodeFs } from '../src/sys/fs.ts';
import { startHealthServer, startMetricsServer } from '../src/sys/http-servers.ts';
import { startLogSink } from '../src/sys/log-sink.ts';
import { PrometheusMetrics } from '../src/sys/metrics.ts';
import { renderProcessMetrics, sampleProcess } from '../src/sys/process-metrics.ts';
import { watchDirectory } from '../src/sys/watch.ts';
import { VERSION } from '../src/version.ts';
import { errorMessage } from '../src/errors.ts';
import type { VersionOutput } from '../src/version-info.ts';

function camel(flag: string): string {
  return flag.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());
}

function buildProgram(): Command {
  const program = new Command('install-cni')
    .description('Istio CNI node agent: installs the istio-cni plugin, its CNI config entry and kubeconfig')
    .version(VERSION, '--version')
    .usage('[options] [command]')
    // One line, not the 80-line settings list, after an error.
    .showHelpAfterError('(install-cni --help lists every setting and command)');
  for (const setting of SETTINGS) {
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
  const agentLogging = createAgentLogging({
    level: config.logLevel,
    pluginLevel: config.pluginLogLevel,
    json: config.logAsJson,
    write: (line) => process.stdout.write(line),
  });
  if (config.logOutputLevelError !== undefined)
    agentLogging.logger.error({ err: config.logOutputLevelError }, 'failed to configure logging');
  for (const warning of config.settingWarnings) agentLogging.logger.warn(warning);
  return agentLogging;
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

async function runUninstall(config: AgentConfig): Promise<number> {
  const { logger } = logging(config);
  try {
    const removed = await cleanupNode(config, createNodeFs(), logger);
    // Silence would read as success when the paths point at the wrong tree.
    if (removed.length === 0) {
      logger.warn(
        { netDir: config.netDir, binDirs: config.binTargetDirs, runDir: config.runDir },
        'uninstall found nothing of istio-cni to remove (check MOUNTED_CNI_NET_DIR, CNI_BIN_TARGET_DIRS, CNI_AGENT_RUN_DIR)',
      );
    }
    return 0;
  } catch (error) {
    logger.error(errorFields(error), 'uninstall failed');
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
  let versionOptions: { short?: boolean; output?: string } = {};
  program
    .command('version')
    .description('Print build version information')
    .option('-s, --short', 'Displays a short form of the version information')
    .option('-o, --output <format>', "One of 'yaml' or 'json'.")
    .action((options: { short?: boolean; output?: string }) => {
      mode = 'version';
      versionOptions = options;
    });
  // Listed for --help; its flags are istio-iptables' and are parsed above, so it is only reached when a flag of
  // ours comes before it.
  program
    .command('rules')
    .description('Print the redirect rules the plugin would program (dry run; `install-cni rules --help`)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      program.error('install-cni: `rules` must come first: install-cni rules [istio-iptables flags]');
    });
  program.argument('[command]').action((command: string | undefined) => {
    if (command !== undefined) program.error(`install-cni: unknown command "${command}"`);
    mode = 'agent';
  });
  // Go bool flags never consume the next argument: `--log_as_json uninstall` is the flag plus a subcommand.
  const boolFlags = new Set([
    ...SETTINGS.filter((setting) => setting.kind === 'bool').map((setting) => `--${setting.flag}`),
    '--log_as_json',
  ]);
  await program.parseAsync(
    args.map((arg) => (boolFlags.has(arg) ? `${arg}=true` : arg)),
    { from: 'user' },
  );
  if (mode === 'version') {
    // Loaded here: the agent does not pay for the YAML library at start-up.
    const { parseVersionOutput, renderVersion } = await import('../src/version-info.ts');
    let output: VersionOutput = '';
    try {
      output = parseVersionOutput(versionOptions.output);
    } catch (error) {
      program.error(`install-cni: ${errorMessage(error)}`);
    }
    const runtime =
      process.versions.bun === undefined ? `node ${process.version}` : `bun ${process.versions.bun}`;
    process.stdout.write(renderVersion({ version: VERSION, runtime }, versionOptions.short === true, output));
    return;
  }
  const config = loadOrExit(program, mode);
  if (config === undefined) return;
  const code =
    mode === 'uninstall'
      ? await runUninstall(config)
      : await runAgent(config, {
          logging: logging(config),
          fs: createNodeFs(),
          metrics: new PrometheusMetrics(),
          watchDir: watchDirectory,
          // The Go client's process_* metrics follow the agent's own, as on upstream's /metrics.
          startMetricsServer: (port, address, render) =>
            startMetricsServer(port, address, () => render() + renderProcessMetrics(sampleProcess())),
          startHealthServer,
          startLogSink,
          loadRepairController: async () =>
            (await import('../src/repair/controller.ts')).startRepairController,
          onShutdownSignal: (listener) => {
            process.on('SIGTERM', () => listener('SIGTERM'));
            process.on('SIGINT', () => listener('SIGINT'));
          },
        });
  process.exitCode = code;
  // Whatever still holds the loop (e.g. the API client of the repair controller) must not keep a dying pod alive.
  setTimeout(() => process.exit(code), 2000).unref();
}

await main();
