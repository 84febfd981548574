// The CNI plugin executable (contract.md "istio-cni"): composition only — build the real process, logging and
// adapters, run one dispatch, set the exit code (never process.exit(): let stdout/log writes finish).
import { dispatch } from '../src/cni/dispatch.ts';
import { createHttpsPodSource } from '../src/kube/pod-source.ts';
import { createPluginLogging } from '../src/log/plugin-logger.ts';
import { LOG_SOCKET_FILE, createHandlers } from '../src/plugin/handlers.ts';
import { applyCaptureRules } from '../src/rules/apply.ts';
import { forwardLogs, logSocketExists } from '../src/sys/log-forwarder.ts';
import { realProcessIO, systemClock } from '../src/sys/process-io.ts';
import { SpawnExec } from '../src/sys/spawn-exec.ts';
import { VERSION } from '../src/version.ts';

const io = realProcessIO();
const logging = createPluginLogging(io.writeStderr);
let logSocket: string | undefined;
const handlers = createHandlers({
  env: io.env,
  clock: systemClock,
  exec: new SpawnExec(),
  applyCaptureRules,
  logging: {
    logger: logging.logger,
    setLevel: logging.setLevel,
    configureForwarding(runDir) {
      const socket = `${runDir.replace(/\/+$/, '')}/${LOG_SOCKET_FILE}`;
      if (runDir !== '' && logSocketExists(socket)) {
        logSocket = socket;
        logging.startForwarding();
      }
    },
  },
  openPodSource: (path, requestTimeoutMs) =>
    createHttpsPodSource(path, { userAgent: `istio-cni/${VERSION}`, requestTimeoutMs }),
});
void dispatch(io, handlers, `CNI plugin istio-cni ${VERSION}`).then(async (exitCode) => {
  process.exitCode = exitCode;
  if (logSocket !== undefined) await forwardLogs(logSocket, logging.takeForwardRecords(), 1000);
});
