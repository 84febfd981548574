// `install-cni rules [--pod FILE|-] [istio-iptables flags]` (contract.md): a dry run that prints the restore
// document(s) the plugin would feed to iptables-restore (IPv4, then IPv6 when enabled), or with --nft the
// nftables transaction. The process boundary is a value: args/env/stdin/files in, {exitCode, stdout, stderr} out.
import { parse as parseYaml } from 'yaml';
import type { CaptureConfig, InterceptionMode } from './capture-config.ts';
import { DEFAULT_CAPTURE_CONFIG } from './capture-config.ts';
import { buildCaptureRules } from './build.ts';
import { renderRestoreDocument } from './render-iptables.ts';
import { renderNftTransaction } from './render-nft.ts';
import {
  captureConfigFromPodWithWarnings,
  outboundEnvConfig,
  podInfoFromManifest,
} from '../plugin/redirect.ts';
import { decideForPod } from '../plugin/decide.ts';
import { errorMessage, errorReason } from '../errors.ts';
import { parseGoBool } from '../go-bool.ts';

export interface RulesCommandIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readStdin: () => Promise<string>;
  readonly readFile: (path: string) => Promise<string>;
}

export interface RulesCommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

type StringField = Exclude<
  {
    [K in keyof CaptureConfig]: CaptureConfig[K] extends string ? K : never;
  }[keyof CaptureConfig],
  'inboundInterceptionMode'
>;

/** istio-iptables long flag → CaptureConfig field (short aliases as upstream). */
const VALUE_FLAGS: ReadonlyArray<readonly [string, string, StringField | 'inboundInterceptionMode']> = [
  ['envoy-port', 'p', 'proxyPort'],
  ['inbound-capture-port', 'z', 'inboundCapturePort'],
  ['inbound-tunnel-port', 'e', 'inboundTunnelPort'],
  ['proxy-uid', 'u', 'proxyUid'],
  ['proxy-gid', 'g', 'proxyGid'],
  ['istio-inbound-interception-mode', 'm', 'inboundInterceptionMode'],
  ['istio-inbound-ports', 'b', 'inboundPortsInclude'],
  ['istio-local-exclude-ports', 'd', 'inboundPortsExclude'],
  ['istio-exclude-interfaces', 'c', 'excludeInterfaces'],
  ['istio-service-cidr', 'i', 'outboundIpRangesInclude'],
  ['istio-service-exclude-cidr', 'x', 'outboundIpRangesExclude'],
  ['istio-outbound-ports', 'q', 'outboundPortsInclude'],
  ['istio-local-outbound-ports-exclude', 'o', 'outboundPortsExclude'],
  ['kube-virt-interfaces', 'k', 'rerouteVirtualInterfaces'],
  ['istio-inbound-tproxy-mark', 't', 'inboundTProxyMark'],
  ['istio-inbound-tproxy-route-table', 'r', 'inboundTProxyRouteTable'],
];

const BOOL_FLAGS = ['redirect-dns', 'capture-all-dns', 'drop-invalid', 'dual-stack', 'ipv6', 'nft'] as const;
type BoolFlag = (typeof BOOL_FLAGS)[number];
const LIST_FLAGS = ['dns-servers-v4', 'dns-servers-v6'] as const;
type ListFlag = (typeof LIST_FLAGS)[number];

export const RULES_USAGE = `Usage: install-cni rules [--pod FILE|-] [istio-iptables flags]

Prints the iptables-restore document(s) the istio-cni plugin would apply (IPv4, then IPv6 when enabled).
  --pod FILE|-            derive parameters from a pod manifest (JSON or YAML; - = stdin) as the plugin does
  --ipv6                  act as if the pod had an IPv6 address
  --nft                   print the nftables transaction instead (native_nftables)
  --dns-servers-v4=a,b    DNS servers istio-iptables would read from resolv.conf (IPv4)
  --dns-servers-v6=a,b    (IPv6)
istio-iptables flags: ${VALUE_FLAGS.map(([long]) => `--${long}`).join(', ')}, ${BOOL_FLAGS.slice(0, 4)
  .map((flag) => `--${flag}`)
  .join(', ')}
Env: ISTIO_OUTBOUND_OWNER_GROUPS, ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE, ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR
`;

class UsageError extends Error {}

interface ParsedArgs {
  pod?: string;
  values: Map<StringField | 'inboundInterceptionMode', string>;
  bools: Map<BoolFlag, boolean>;
  lists: Map<ListFlag, string[]>;
  help: boolean;
}

function parseBool(flag: string, text: string): boolean {
  // Go's strconv.ParseBool, as cobra/pflag use for bool flags.
  const value = parseGoBool(text);
  if (value === undefined) throw new UsageError(`invalid argument "${text}" for "--${flag}": not a boolean`);
  return value;
}

export function parseRulesArgs(args: readonly string[]): ParsedArgs {
  const parsed: ParsedArgs = { values: new Map(), bools: new Map(), lists: new Map(), help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      parsed.help = true;
      continue;
    }
    const long = /^--([^=]+)(?:=([\s\S]*))?$/.exec(arg);
    const short = long === null ? /^-([a-zA-Z])(?:=?([\s\S]+))?$/.exec(arg) : null;
    if (long === null && short === null) throw new UsageError(`unexpected argument "${arg}"`);
    const name = long?.[1] ?? short?.[1] ?? '';
    const inline = long !== null ? long[2] : short?.[2];
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = args[i + 1];
      if (next === undefined) throw new UsageError(`flag needs an argument: --${name}`);
      i++;
      return next;
    };
    if (long !== null && name === 'pod') {
      parsed.pod = takeValue();
      continue;
    }
    if (long !== null && (BOOL_FLAGS as readonly string[]).includes(name)) {
      parsed.bools.set(name as BoolFlag, inline === undefined ? true : parseBool(name, inline));
      continue;
    }
    if (long !== null && (LIST_FLAGS as readonly string[]).includes(name)) {
      parsed.lists.set(
        name as ListFlag,
        takeValue()
          .split(',')
          .filter((item) => item !== ''),
      );
      continue;
    }
    const entry = VALUE_FLAGS.find(
      ([flagLong, flagShort]) => (long !== null ? flagLong : flagShort) === name,
    );
    if (entry === undefined) throw new UsageError(`unknown flag: ${arg.split('=')[0]}`);
    parsed.values.set(entry[2], takeValue());
  }
  return parsed;
}

async function configFromArgs(
  parsed: ParsedArgs,
  io: RulesCommandIo,
): Promise<{ config: CaptureConfig; warnings: readonly string[] } | { skipped: string }> {
  if (parsed.pod !== undefined) {
    const conflicting = [
      ...[...parsed.values.keys()].map(
        (field) => VALUE_FLAGS.find((entry) => entry[2] === field)?.[0] ?? field,
      ),
      ...[...parsed.bools.keys()].filter((flag) => flag !== 'ipv6' && flag !== 'nft'),
      ...parsed.lists.keys(),
    ];
    if (conflicting.length > 0) {
      throw new UsageError(
        `--pod derives parameters from the pod; it cannot be combined with --${conflicting.join(', --')}`,
      );
    }
    const source = parsed.pod === '-' ? 'stdin' : parsed.pod;
    let text: string;
    try {
      text = parsed.pod === '-' ? await io.readStdin() : await io.readFile(parsed.pod);
    } catch (error) {
      throw new Error(`--pod ${source}: cannot read it: ${errorReason(error)}`, {
        cause: error,
      });
    }
    let manifest: unknown;
    try {
      manifest = parseYaml(text);
    } catch (error) {
      // A multi-document file is the usual cause: `kubectl get pod -o yaml` of one pod gives a single document.
      throw new Error(`--pod ${source}: not one YAML or JSON document: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    const pod = podInfoFromManifest(manifest);
    // The plugin's own decision (§2.5 steps 11–16): a pod it leaves alone gets no rules from it either.
    const decision = decideForPod(pod);
    if (decision.action === 'skip') return { skipped: decision.reason };
    const derived = captureConfigFromPodWithWarnings(pod, io.env);
    return {
      config: { ...derived.config, enableIpv6: parsed.bools.get('ipv6') ?? false },
      warnings: derived.warnings,
    };
  }
  const config: Record<string, unknown> = { ...DEFAULT_CAPTURE_CONFIG, ...outboundEnvConfig(io.env) };
  for (const [field, value] of parsed.values) config[field] = value;
  const mode = config['inboundInterceptionMode'] as string;
  if (mode !== 'REDIRECT' && mode !== 'TPROXY') {
    throw new UsageError(`invalid --istio-inbound-interception-mode "${mode}": must be REDIRECT or TPROXY`);
  }
  const result: CaptureConfig = {
    ...(config as unknown as CaptureConfig),
    inboundInterceptionMode: mode satisfies InterceptionMode,
    redirectDns: parsed.bools.get('redirect-dns') ?? false,
    captureAllDns: parsed.bools.get('capture-all-dns') ?? false,
    dropInvalid: parsed.bools.get('drop-invalid') ?? false,
    dualStack: parsed.bools.get('dual-stack') ?? false,
    enableIpv6: parsed.bools.get('ipv6') ?? false,
    dnsServersV4: parsed.lists.get('dns-servers-v4') ?? [],
    dnsServersV6: parsed.lists.get('dns-servers-v6') ?? [],
  };
  return { config: result, warnings: [] };
}

export async function runRulesCommand(
  args: readonly string[],
  io: RulesCommandIo,
): Promise<RulesCommandResult> {
  let parsed: ParsedArgs;
  try {
    parsed = parseRulesArgs(args);
  } catch (error) {
    return { exitCode: 2, stdout: '', stderr: `Error: ${errorMessage(error)}\n${RULES_USAGE}` };
  }
  if (parsed.help) return { exitCode: 0, stdout: RULES_USAGE, stderr: '' };
  try {
    const derived = await configFromArgs(parsed, io);
    if ('skipped' in derived) {
      return {
        exitCode: 0,
        stdout: '',
        stderr: `the plugin programs no rules for this pod: ${derived.skipped}\n`,
      };
    }
    const { config, warnings } = derived;
    const built = buildCaptureRules(config);
    const stderr = [...warnings, ...built.warnings].map((warning) => `warning: ${warning}\n`).join('');
    const stdout =
      parsed.bools.get('nft') === true
        ? renderNftTransaction(built.rules)
        : renderRestoreDocument(built.rules.v4) + renderRestoreDocument(built.rules.v6);
    return { exitCode: 0, stdout, stderr };
  } catch (error) {
    return {
      exitCode: error instanceof UsageError ? 2 : 1,
      stdout: '',
      stderr: `Error: ${errorMessage(error)}\n`,
    };
  }
}
