// ProcessIO as values for dispatch tests (skel_test.go style): env map, stdin string, captured stdout/stderr.
import type { ProcessIO } from '../../src/cni/dispatch.ts';

export interface FakeProcessIO extends ProcessIO {
  readonly stdout: string[];
  readonly stderr: string[];
  stdinReads: number;
}

export function fakeProcessIO(
  env: Record<string, string | undefined>,
  stdin: string | Error = '',
  options: { ownNetns?: string } = {},
): FakeProcessIO {
  const io: FakeProcessIO = {
    env,
    stdout: [],
    stderr: [],
    stdinReads: 0,
    readStdin: () => {
      io.stdinReads += 1;
      return stdin instanceof Error ? Promise.reject(stdin) : Promise.resolve(stdin);
    },
    writeStdout: (text) => {
      io.stdout.push(text);
    },
    writeStderr: (text) => {
      io.stderr.push(text);
    },
    isOwnNetns: (netns) => Promise.resolve(options.ownNetns !== undefined && netns === options.ownNetns),
  };
  return io;
}

/** The standard CNI env for a command. */
export function cniEnv(
  command: string,
  extra: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'c0ffee',
    CNI_NETNS: '/var/run/netns/ia-test',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=app-1',
    ...extra,
  };
}
