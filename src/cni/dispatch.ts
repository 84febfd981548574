// Our skel (containernetworking/cni v1.3.0 pkg/skel): the process boundary as values. Validates the CNI_*
// environment per command, reads stdin once, checks the netconf's name and cniVersion, routes the command and
// converts every failure to exactly one CNI error JSON on stdout (style-anchors §D4, §D5).
import { AppError, KubeError, errorMessage } from '../errors.ts';
import { goField } from './go-field.ts';
import type { CniCommand } from './spec.ts';
import { CNI_ERROR, CniError, CURRENT_VERSION, SUPPORTED_VERSIONS, encodeCniError } from './spec.ts';
import { assertSupportedVersion, configVersion, versionAtLeast } from './version.ts';

/** The process, as values: only bin/ (through src/sys/process-io.ts) builds the real one. */
export interface ProcessIO {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads all of stdin. Rejects (message says why) on I/O failure or when the input exceeds the size limit. */
  readonly readStdin: () => Promise<string>;
  readonly writeStdout: (text: string) => void;
  readonly writeStderr: (text: string) => void;
  /** Whether `netnsPath` is the plugin's own network namespace (false when it cannot be checked). */
  readonly isOwnNetns: (netnsPath: string) => Promise<boolean>;
}

export interface CmdArgs {
  readonly command: CniCommand;
  readonly containerId: string;
  readonly netns: string;
  readonly ifName: string;
  readonly args: string;
  readonly path: string;
  readonly stdinData: string;
  /** stdin parsed as a JSON object (validated: non-empty `name`, supported `cniVersion`). */
  readonly netConf: Readonly<Record<string, unknown>>;
  readonly cniVersion: string;
}

export interface CniHandlers {
  /** Returns the result JSON text to print. */
  add(args: CmdArgs): Promise<string>;
  del(args: CmdArgs): Promise<void>;
  check(args: CmdArgs): Promise<void>;
  /** Optional like skel's: absent means success. */
  status?(args: CmdArgs): Promise<void>;
  gc?(args: CmdArgs): Promise<void>;
}

type Requirement = readonly CniCommand[];
const ENV_TABLE: readonly (readonly [string, Requirement])[] = [
  ['CNI_COMMAND', ['ADD', 'CHECK', 'DEL', 'GC', 'STATUS']],
  ['CNI_CONTAINERID', ['ADD', 'CHECK', 'DEL']],
  ['CNI_NETNS', ['ADD', 'CHECK']],
  ['CNI_IFNAME', ['ADD', 'CHECK', 'DEL']],
  ['CNI_ARGS', []],
  ['CNI_PATH', ['ADD', 'CHECK', 'DEL', 'GC', 'STATUS']],
  ['CNI_NETNS_OVERRIDE', []],
];

const COMMANDS: readonly string[] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'];
const VALID_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function validateContainerId(containerId: string): void {
  if (!VALID_NAME.test(containerId)) {
    throw new CniError(
      CNI_ERROR.INVALID_ENVIRONMENT_VARIABLES,
      'invalid characters in containerID',
      containerId,
    );
  }
}

/** '/', ':' and Go's unicode.IsSpace (which, unlike JavaScript's \s, includes U+0085 and excludes U+FEFF). */
const IFNAME_FORBIDDEN = /[/:\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

function validateIfName(ifName: string): void {
  const fail = (msg: string, details = '') =>
    new CniError(CNI_ERROR.INVALID_ENVIRONMENT_VARIABLES, msg, details);
  // IFNAMSIZ counts bytes, as Go's len() does.
  if (Buffer.byteLength(ifName, 'utf8') > 15)
    throw fail('interface name is too long', 'interface name should be less than 16 characters');
  if (ifName === '.' || ifName === '..') throw fail('interface name is . or ..');
  if (IFNAME_FORBIDDEN.test(ifName)) throw fail('interface name contains / or : or whitespace characters');
}

/** skel's validateConfig: the decoder's reason is part of the message ("error unmarshall network config: …"). */
function unmarshallError(reason: string): CniError {
  return new CniError(CNI_ERROR.DECODING_FAILURE, `error unmarshall network config: ${reason}`);
}

function parseNetConf(stdinData: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdinData);
  } catch (error) {
    throw unmarshallError(errorMessage(error));
  }
  if (parsed === null) parsed = {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw unmarshallError(
      `expected a JSON object, got ${Array.isArray(parsed) ? 'an array' : typeof parsed}`,
    );
  }
  const netConf = parsed as Record<string, unknown>;
  const name = goField(netConf, 'name');
  if (name !== undefined && name !== null && typeof name !== 'string') {
    throw unmarshallError('"name" must be a string');
  }
  if (name === undefined || name === null || name === '') {
    throw new CniError(CNI_ERROR.INVALID_NETWORK_CONFIG, 'missing network name');
  }
  if (!VALID_NAME.test(name)) {
    throw new CniError(CNI_ERROR.INVALID_NETWORK_CONFIG, 'invalid characters found in network name', name);
  }
  return netConf;
}

/** CHECK / GC / STATUS need a minimum config version (and a plugin version at least as new). */
function assertCommandAllowed(command: 'CHECK' | 'GC' | 'STATUS', version: string): void {
  const minimum = command === 'CHECK' ? '0.4.0' : '1.1.0';
  if (!versionAtLeast(version, minimum)) {
    throw new CniError(CNI_ERROR.INCOMPATIBLE_VERSION, `config version does not allow ${command}`);
  }
  if (!SUPPORTED_VERSIONS.some((supported) => versionAtLeast(supported, version))) {
    throw new CniError(CNI_ERROR.INCOMPATIBLE_VERSION, `plugin version does not allow ${command}`);
  }
}

/** The one conversion to CNI terms: CniError kept, retryable Kubernetes errors → 11, everything else → 999. An
 * error none of our boundaries raised is a bug: it gets upstream's panic wording (without the stack, which
 * would reach the pod's events), e.g. "istio-cni panicked during cmdAdd: …". */
export function toCniError(error: unknown, command = ''): CniError {
  if (error instanceof CniError) return error;
  if (error instanceof KubeError && error.retryable) {
    return new CniError(CNI_ERROR.TRY_AGAIN_LATER, error.message, error.code);
  }
  if (error instanceof AppError) return new CniError(CNI_ERROR.INTERNAL, error.message, error.code);
  const during = command === '' ? '' : ` during cmd${command[0]}${command.slice(1).toLowerCase()}`;
  return new CniError(CNI_ERROR.INTERNAL, `istio-cni panicked${during}: ${errorMessage(error)}`);
}

function versionInfoText(): string {
  return `${JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS })}\n`;
}

/** Runs one CNI invocation. Returns the process exit code; writes only the result or one error to stdout. */
export async function dispatch(io: ProcessIO, handlers: CniHandlers, about: string): Promise<number> {
  try {
    const command = io.env['CNI_COMMAND'] ?? '';
    const missing = ENV_TABLE.filter(
      ([name, requiredFor]) =>
        (io.env[name] ?? '') === '' &&
        (name === 'CNI_COMMAND' || requiredFor.includes(command as CniCommand)),
    ).map(([name]) => name);
    if (missing.length > 0) {
      if (command === '') {
        io.writeStderr(`${about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`);
        return 0;
      }
      throw new CniError(
        CNI_ERROR.INVALID_ENVIRONMENT_VARIABLES,
        `required env variables [${missing.join(',')}] missing`,
      );
    }
    if (command === 'VERSION') {
      io.writeStdout(versionInfoText());
      return 0;
    }
    const env = (name: string) => io.env[name] ?? '';
    // skel's own-netns check for ADD/DEL, started now and awaited after the netconf checks (whose errors come
    // first): in the compiled plugin its stat runs on a worker thread while stdin is read and parsed.
    const override = env('CNI_NETNS_OVERRIDE');
    const ownNetns =
      (command === 'ADD' || command === 'DEL') &&
      override !== '1' &&
      override.toLowerCase() !== 'true' &&
      env('CNI_NETNS') !== ''
        ? io.isOwnNetns(env('CNI_NETNS')).catch(() => false)
        : Promise.resolve(false);
    let stdinData: string;
    try {
      stdinData = await io.readStdin();
    } catch (error) {
      throw new CniError(CNI_ERROR.IO_FAILURE, `error reading from stdin: ${errorMessage(error)}`);
    }
    const netConf = parseNetConf(stdinData);
    // skel's order: the netconf (6/7) first, then the container ID and the interface name (4).
    if (command === 'ADD' || command === 'CHECK' || command === 'DEL') {
      validateContainerId(env('CNI_CONTAINERID'));
      validateIfName(env('CNI_IFNAME'));
    }
    if (!COMMANDS.includes(command)) {
      throw new CniError(CNI_ERROR.INVALID_ENVIRONMENT_VARIABLES, `unknown CNI_COMMAND: ${command}`);
    }
    const version = configVersion(netConf);
    if (command === 'CHECK' || command === 'GC' || command === 'STATUS')
      assertCommandAllowed(command, version);
    assertSupportedVersion(version);
    const args: CmdArgs = Object.freeze({
      command: command as CniCommand,
      containerId: env('CNI_CONTAINERID'),
      netns: env('CNI_NETNS'),
      ifName: env('CNI_IFNAME'),
      args: env('CNI_ARGS'),
      path: env('CNI_PATH'),
      stdinData,
      netConf: Object.freeze(netConf),
      cniVersion: version,
    });
    if (await ownNetns) {
      throw new CniError(
        CNI_ERROR.INVALID_NETNS,
        "plugin's netns and netns from CNI_NETNS should not be the same",
      );
    }
    switch (command as CniCommand) {
      case 'ADD':
        io.writeStdout(await handlers.add(args));
        break;
      case 'DEL':
        await handlers.del(args);
        break;
      case 'CHECK':
        await handlers.check(args);
        break;
      case 'STATUS':
        await handlers.status?.(args);
        break;
      case 'GC':
        await handlers.gc?.(args);
        break;
      case 'VERSION':
        break;
    }
    return 0;
  } catch (error) {
    io.writeStdout(encodeCniError(toCniError(error, io.env['CNI_COMMAND'] ?? '')));
    return 1;
  }
}
