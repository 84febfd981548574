// Which user namespace owns a pod's network namespace (behaviour §2.8 step 6, `hostUsers: false` pods). The
// owner matters because xt_owner (`-m owner --uid-owner 1337`) only accepts rules written from the netns's own
// user namespace (the kernel rejects them with EINVAL otherwise) and reads the uid in that namespace: rules for a
// user-namespaced pod must be written through `nsenter --user=<owner> --net=<netns>`.
//
// Linux answers with ioctl(fd of the netns, NS_GET_USERNS), which returns a new fd of the owning user namespace;
// its inode is compared with /proc/self/ns/user's. Node has no ioctl, so only the bun-compiled plugin can ask
// (FFI, loaded on first use: ≈ 0.2 ms, paid only for a pod whose rules are programmed or checked). Under Node
// (unit tests) the answer is 'unknown' and the rules are written from the plugin's own user namespace, as before.
// open/close go through the same FFI and the inodes through Bun's stat: loading node:fs for them doubled the cost
// of this step (1.5 → 0.75 ms per meshed ADD, in-process marks).

import { bunFiles } from './process-io.ts';
import type { Libc } from './libc.ts';
import { O_CLOEXEC, O_RDONLY, cPath, loadLibc } from './libc.ts';

export type NetnsUserns =
  /** The netns belongs to the plugin's own user namespace: no wrap. */
  | { readonly kind: 'same' }
  /** Another user namespace owns it; `path` opens that namespace while this process lives. */
  | { readonly kind: 'other'; readonly path: string }
  /** Not detectable here (Node, no libc, not a namespace file): no wrap, upstream's host behaviour. */
  | { readonly kind: 'unknown'; readonly reason: string };

/** `_IO(0xb7, 0x1)` from linux/nsfs.h. */
const NS_GET_USERNS = 0xb701;

async function inode(path: string): Promise<number | bigint> {
  return (await bunFiles().file(path).stat()).ino;
}

/** Finds the user namespace owning `netnsPath` (CNI_NETNS). Never throws. */
export async function netnsUserns(netnsPath: string): Promise<NetnsUserns> {
  if (!('Bun' in globalThis)) return { kind: 'unknown', reason: 'no ioctl outside the compiled plugin' };
  let c: Libc;
  try {
    c = await loadLibc();
  } catch (error) {
    return { kind: 'unknown', reason: `bun:ffi unavailable: ${String(error)}` };
  }
  const netnsFd = c.open(cPath(netnsPath), O_RDONLY | O_CLOEXEC);
  if (netnsFd < 0) return { kind: 'unknown', reason: `cannot open ${netnsPath}` };
  let usernsFd: number;
  try {
    usernsFd = c.ioctl(netnsFd, NS_GET_USERNS, 0);
  } catch (error) {
    return { kind: 'unknown', reason: `ioctl(NS_GET_USERNS): ${String(error)}` };
  } finally {
    c.close(netnsFd);
  }
  // ENOTTY (not a namespace file) or EPERM (the owner lies outside this process's user namespace).
  if (usernsFd < 0) return { kind: 'unknown', reason: `ioctl(NS_GET_USERNS) failed on ${netnsPath}` };
  const ownerPath = `/proc/${process.pid}/fd/${usernsFd}`;
  try {
    const [owner, own] = await Promise.all([inode(ownerPath), inode('/proc/self/ns/user')]);
    if (owner === own) {
      c.close(usernsFd);
      return { kind: 'same' };
    }
  } catch (error) {
    c.close(usernsFd);
    return { kind: 'unknown', reason: String(error) };
  }
  // The fd stays open (close-on-exec) until the plugin exits: nsenter, its child, opens it through /proc.
  return { kind: 'other', path: ownerPath };
}
