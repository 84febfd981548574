// One request written whole into a unix stream socket, synchronously, through libc (the bun-compiled plugin's log
// POST). The plugin writes its records and goes without reading the answer (src/sys/log-forwarder.ts); through
// Bun's socket API that costs an event-loop round for the connect and the socket client's modules, ≈ 1 ms of every
// ADD between printing the result and the exit the runtime waits for. A unix stream connect completes or fails at
// once (it never returns EINPROGRESS), and the socket buffer takes a usual request at once; only a larger one, or
// an agent that does not read, waits, in poll(2), bounded by the caller's timeout.
import type { Libc } from './libc.ts';
import { loadLibc } from './libc.ts';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const POLLOUT = 0x4;
const EINTR = 4;
const EAGAIN = 11;
/** struct sockaddr_un: sa_family (2 bytes) + sun_path (108 bytes, NUL-terminated). */
const SUN_PATH_BYTES = 108;

/** `sent`: every byte is in the peer's socket. `failed`: nothing listens there (ENOENT, ECONNREFUSED, a full
 * backlog), or the peer did not take it all within the timeout. `unsupported`: no FFI or a path longer than a
 * sockaddr_un holds: the caller sends another way. */
export type UnixSendOutcome = 'sent' | 'failed' | 'unsupported';

export async function sendOverUnixSocket(
  socketPath: string,
  bytes: Uint8Array,
  timeoutMs: number,
): Promise<UnixSendOutcome> {
  const pathBytes = new TextEncoder().encode(socketPath);
  if (pathBytes.byteLength >= SUN_PATH_BYTES) return 'unsupported';
  let libc: Libc;
  try {
    libc = await loadLibc();
  } catch {
    return 'unsupported';
  }
  const address = new Uint8Array(2 + SUN_PATH_BYTES);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(pathBytes, 2);
  const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 'unsupported';
  try {
    if (libc.connect(fd, address, address.byteLength) !== 0) return 'failed';
    const deadline = Date.now() + timeoutMs;
    const pollFd = new Uint8Array(8);
    new DataView(pollFd.buffer).setInt32(0, fd, true);
    new DataView(pollFd.buffer).setInt16(4, POLLOUT, true);
    let offset = 0;
    while (offset < bytes.byteLength) {
      const count = libc.send(
        fd,
        bytes.subarray(offset),
        bytes.byteLength - offset,
        MSG_DONTWAIT | MSG_NOSIGNAL,
      );
      if (count >= 0) {
        offset += count;
        continue;
      }
      const errno = libc.errno();
      if (errno === EINTR) continue;
      if (errno !== EAGAIN) return 'failed';
      const left = deadline - Date.now();
      if (left <= 0 || libc.poll(pollFd, 1, left) === 0) return 'failed';
    }
    return 'sent';
  } finally {
    libc.close(fd);
  }
}
