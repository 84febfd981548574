// Which user namespace owns a pod's network namespace (behaviour §2.8 step 6, `hostUsers: false` pods). The
// owner matters because xt_owner (`-m owner --uid-owner 1337`) only accepts rules written from the netns's own
// user namespace (the kernel rejects them with EINVAL otherwise) and reads the uid in that namespace: rules for a
// user-namespaced pod must be written through `nsenter --user=<owner> --net=<netns>`.
//
// Linux answers with ioctl(fd of the netns, NS_GET_USERNS), which returns a new fd of the owning user namespace;
// its inode is compared with /proc/self/ns/user's. Node has no ioctl, so only the bun-compiled plugin can ask
// (FFI, loaded on first use: ≈ 0.2 ms, paid only for a pod whose rules are programmed or checked). Under Node
// (unit tests) the answer is 'unknown' and the rules are written from the plugin's own user namespace, as before.
import { closeSync, constants, fstatSync, openSync, statSync } from 'node:fs';

export type NetnsUserns =
  /** The netns belongs to the plugin's own user namespace: no wrap. */
  | { readonly kind: 'same' }
  /** Another user namespace owns it; `path` opens that namespace while this process lives. */
  | { readonly kind: 'other'; readonly path: string }
  /** Not detectable here (Node, no libc, not a namespace file): no wrap, upstream's host behaviour. */
  | { readonly kind: 'unknown'; readonly reason: string };

/** `_IO(0xb7, 0x1)` from linux/nsfs.h. */
const NS_GET_USERNS = 0xb701;
const O_CLOEXEC = 0o2000000;

type Ioctl = (fd: number, request: number, arg: number) => number;

interface Libc {
  readonly symbols: { readonly ioctl: Ioctl };
}
type DlOpen = (library: string, symbols: Record<string, { args: string[]; returns: string }>) => Libc;

let ioctl: Ioctl | undefined;

async function loadIoctl(): Promise<Ioctl> {
  if (ioctl !== undefined) return ioctl;
  // `Bun.FFI.dlopen` is the native function that bun:ffi's dlopen wraps (bun 1.4: path normalisation only);
  // calling it directly skips loading the bun:ffi module (≈ 0.6 ms → the whole detection costs ≈ 0.2 ms).
  const native = (globalThis as { Bun?: { FFI?: { dlopen?: unknown } } }).Bun?.FFI?.dlopen;
  let dlopen: DlOpen;
  if (typeof native === 'function') {
    dlopen = native as DlOpen;
  } else {
    // A computed specifier: esbuild leaves the import alone and bun resolves its built-in module at run time.
    const specifier = ['bun', 'ffi'].join(':');
    dlopen = ((await import(specifier)) as { dlopen: DlOpen }).dlopen;
  }
  ioctl = dlopen('libc.so.6', { ioctl: { args: ['i32', 'u64', 'u64'], returns: 'i32' } }).symbols.ioctl;
  return ioctl;
}

/** Finds the user namespace owning `netnsPath` (CNI_NETNS). Never throws. */
export async function netnsUserns(netnsPath: string): Promise<NetnsUserns> {
  if (!('Bun' in globalThis)) return { kind: 'unknown', reason: 'no ioctl outside the compiled plugin' };
  let call: Ioctl;
  try {
    call = await loadIoctl();
  } catch (error) {
    return { kind: 'unknown', reason: `bun:ffi unavailable: ${String(error)}` };
  }
  let netnsFd: number;
  try {
    netnsFd = openSync(netnsPath, constants.O_RDONLY | O_CLOEXEC);
  } catch (error) {
    return { kind: 'unknown', reason: `cannot open ${netnsPath}: ${String(error)}` };
  }
  let usernsFd: number;
  try {
    usernsFd = call(netnsFd, NS_GET_USERNS, 0);
  } catch (error) {
    return { kind: 'unknown', reason: `ioctl(NS_GET_USERNS): ${String(error)}` };
  } finally {
    closeSync(netnsFd);
  }
  // ENOTTY (not a namespace file) or EPERM (the owner lies outside this process's user namespace).
  if (usernsFd < 0) return { kind: 'unknown', reason: `ioctl(NS_GET_USERNS) failed on ${netnsPath}` };
  try {
    if (fstatSync(usernsFd).ino === statSync('/proc/self/ns/user').ino) {
      closeSync(usernsFd);
      return { kind: 'same' };
    }
  } catch (error) {
    closeSync(usernsFd);
    return { kind: 'unknown', reason: String(error) };
  }
  // The fd stays open (close-on-exec) until the plugin exits: nsenter, its child, opens it through /proc.
  return { kind: 'other', path: `/proc/${process.pid}/fd/${usernsFd}` };
}
