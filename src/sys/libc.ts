// The few libc calls the bun-compiled plugin needs and neither Node nor Bun offer (namespace ioctl, setns, a
// synchronous unix-socket send), through Bun's FFI. Loaded on first use and shared: the owner probe
// (netns-owner.ts), the spawner's netns switch (thread-netns.ts) and the log POST (unix-send.ts) run on the same
// meshed ADD.

export const O_RDONLY = 0;
export const O_CLOEXEC = 0o2000000;

export interface Libc {
  /** `path`: NUL-terminated bytes (bun passes a typed array as its pointer). */
  readonly open: (path: Uint8Array, flags: number) => number;
  readonly close: (fd: number) => number;
  readonly ioctl: (fd: number, request: number, arg: number) => number;
  readonly setns: (fd: number, nstype: number) => number;
  /** Returns the byte count, 0 at end of file, -1 on error. */
  readonly read: (fd: number, buffer: Uint8Array, count: number) => number;
  readonly socket: (domain: number, type: number, protocol: number) => number;
  /** `address`: a struct sockaddr's bytes. */
  readonly connect: (fd: number, address: Uint8Array, length: number) => number;
  /** Returns the byte count taken, -1 on error. */
  readonly send: (fd: number, buffer: Uint8Array, count: number, flags: number) => number;
  /** `fds`: struct pollfd entries (8 bytes each); returns the ready count, 0 on timeout, -1 on error. */
  readonly poll: (fds: Uint8Array, count: number, timeoutMs: number) => number;
  /** errno of the last failed call on this thread, read right after it. */
  readonly errno: () => number;
}

interface NativeFfi {
  readonly dlopen: DlOpen;
  readonly read: { readonly i32: (pointer: number) => number };
}
type DlOpen = (
  library: string,
  symbols: Record<string, { args: string[]; returns: string }>,
) => { readonly symbols: Record<string, (...args: never[]) => unknown> };

let libc: Libc | undefined;

/** NUL-terminated bytes of a path, as open() takes them. */
export function cPath(path: string): Uint8Array {
  return new TextEncoder().encode(`${path}\0`);
}

/** Rejects outside bun (Node has no FFI). */
export async function loadLibc(): Promise<Libc> {
  if (libc !== undefined) return libc;
  // `Bun.FFI` holds the native functions bun:ffi wraps (bun 1.4: path normalisation only); using them directly
  // skips loading the bun:ffi module (≈ 0.6 ms).
  let ffi = (globalThis as { Bun?: { FFI?: Partial<NativeFfi> } }).Bun?.FFI;
  if (typeof ffi?.dlopen !== 'function' || typeof ffi.read?.i32 !== 'function') {
    // A computed specifier: esbuild leaves the import alone and bun resolves its built-in module at run time.
    const specifier = ['bun', 'ffi'].join(':');
    ffi = (await import(specifier)) as NativeFfi;
  }
  const { dlopen, read } = ffi as NativeFfi;
  const symbols = dlopen('libc.so.6', {
    open: { args: ['ptr', 'i32'], returns: 'i32' },
    close: { args: ['i32'], returns: 'i32' },
    ioctl: { args: ['i32', 'u64', 'u64'], returns: 'i32' },
    setns: { args: ['i32', 'i32'], returns: 'i32' },
    read: { args: ['i32', 'ptr', 'u64'], returns: 'i32' },
    socket: { args: ['i32', 'i32', 'i32'], returns: 'i32' },
    connect: { args: ['i32', 'ptr', 'u32'], returns: 'i32' },
    send: { args: ['i32', 'ptr', 'u64', 'i32'], returns: 'i64' },
    poll: { args: ['ptr', 'u64', 'i32'], returns: 'i32' },
    __errno_location: { args: [], returns: 'ptr' },
  }).symbols as unknown as Omit<Libc, 'errno'> & { __errno_location: () => number };
  libc = {
    open: symbols.open,
    close: symbols.close,
    ioctl: symbols.ioctl,
    setns: symbols.setns,
    read: symbols.read,
    socket: symbols.socket,
    connect: symbols.connect,
    send: (fd, buffer, count, flags) => Number(symbols.send(fd, buffer, count, flags)),
    poll: symbols.poll,
    errno: () => read.i32(symbols.__errno_location()),
  };
  return libc;
}

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: 'operation not permitted',
  2: 'no such file or directory',
  13: 'permission denied',
  22: 'invalid argument (not a network namespace?)',
};

export function errnoText(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}
