// The CNI plugin executable (contract.md "istio-cni"): composition only — build the real process, run one
// dispatch, set the exit code (never process.exit(): let stdout/log writes finish). The ADD machinery (pino, zod,
// the rule engine) and the HTTPS client are loaded only by the commands that use them (esbuild keeps dynamically
// imported modules lazy in the bundle), so VERSION, DEL, STATUS and GC start without them, and a pass-through ADD
// (or CHECK) loads neither the HTTPS client, the process spawner nor the rule engine.
import type { CniHandlers } from '../src/cni/dispatch.ts';
import type { ApplyDeps } from '../src/rules/apply.ts';
import { dispatch } from '../src/cni/dispatch.ts';
import { NO_OP_COMMANDS } from '../src/plugin/no-op-commands.ts';
import { LOG_FILE, LOG_SOCKET_FILE } from '../src/run-dir.ts';
import { realProcessIO, systemClock } from '../src/sys/process-io.ts';
import type { Exec } from '../src/sys/ports.ts';
import { VERSION } from '../src/version.ts';

const io = realProcessIO();
let flushLogs: () => Promise<void> = () => Promise.resolve();

/** The netns probe's /proc/net reads, in-process (src/sys/thread-netns.ts) instead of a `head` inside the netns;
 * none (the probe spawns `head`) if this runtime had no FFI. */
async function procNetReader(): Promise<Pick<ApplyDeps, 'readProcNet'>> {
  const switcher = await (await import('../src/sys/thread-netns.ts')).threadNetns();
  if (switcher === undefined) return {};
  return {
    readProcNet: (netns, names) => {
      const files = switcher.readFiles(
        netns,
        names.map((name) => `/proc/thread-self/net/${name}`),
      );
      return Promise.resolve(
        new Map([...files].map(([file, text]) => [file.slice(file.lastIndexOf('/') + 1), text])),
      );
    },
  };
}

async function loadHandlers(): Promise<CniHandlers> {
  // The log forwarder too: every ADD with a run dir POSTs its records to the agent at the end.
  const [{ createHandlers }, { createPluginLogging }, forwarder] = await Promise.all([
    import('../src/plugin/handlers.ts'),
    import('../src/log/plugin-logger.ts'),
    import('../src/sys/log-forwarder.ts'),
  ]);
  const logging = createPluginLogging(io.writeStderr);
  let exec: Exec | undefined;
  return createHandlers({
    env: io.env,
    clock: systemClock,
    exec: {
      run: async (request) => {
        exec ??= new (await import('../src/sys/bun-spawn-exec.ts')).BunSpawnExec();
        return exec.run(request);
      },
    },
    applyCaptureRules: async (config, target, deps) => {
      const [rules, reader] = await Promise.all([import('../src/rules/apply.ts'), procNetReader()]);
      return rules.applyCaptureRules(config, target, { ...deps, ...reader });
    },
    checkCaptureRules: async (config, target, deps) => {
      const [rules, reader] = await Promise.all([import('../src/rules/apply.ts'), procNetReader()]);
      return rules.checkCaptureRules(config, target, { ...deps, ...reader });
    },
    logging: {
      logger: logging.logger,
      setLevel: logging.setLevel,
      configureForwarding(runDir) {
        if (runDir === '') return;
        const dir = runDir.replace(/\/+$/, '');
        const socket = `${dir}/${LOG_SOCKET_FILE}`;
        logging.keepRecords();
        flushLogs = async () => {
          const records = logging.takeRecords();
          if (records.length === 0) return;
          // No log.sock (the agent is not running) fails the connect at once.
          const delivered = await forwarder.forwardLogs(socket, records, 1000);
          if (!delivered) {
            (await import('../src/sys/plugin-log-file.ts')).appendToPluginLogFile(
              `${dir}/${LOG_FILE}`,
              records,
            );
          }
        };
      },
    },
    netnsUserns: async (netns) => (await import('../src/sys/netns-owner.ts')).netnsUserns(netns),
    postCniEvent: forwarder.postCniEvent,
    openPodSource: async (path, requestTimeoutMs) =>
      (await import('../src/kube/pod-source.ts')).createHttpsPodSource(path, {
        userAgent: `istio-cni/${VERSION}`,
        requestTimeoutMs,
      }),
  });
}

// ADD and CHECK start loading their machinery at once: its evaluation (≈ 3 ms of JavaScript) then overlaps the
// own-netns stat, which runs on Bun's worker pool, and the wait for stdin (measured ≈ 0.45 ms less per ADD than
// loading it after them). Any failure surfaces when the handler awaits it.
const command = io.env['CNI_COMMAND'];
const preloaded = command === 'ADD' || command === 'CHECK' ? loadHandlers() : undefined;
preloaded?.catch(() => undefined);
const handlers: CniHandlers = {
  add: async (args) => (await (preloaded ?? loadHandlers())).add(args),
  // CHECK runs ADD's decision flow and verifies the rules of a meshed pod.
  check: async (args) => (await (preloaded ?? loadHandlers())).check(args),
  // Upstream's DEL, STATUS and GC do nothing: answered without loading anything.
  ...NO_OP_COMMANDS,
};

void dispatch(io, handlers, `CNI plugin istio-cni ${VERSION}`).then(async (exitCode) => {
  process.exitCode = exitCode;
  await flushLogs();
  if (!(await io.drained())) process.exitCode = 1;
});
