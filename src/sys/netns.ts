// Pure: the argv that runs a command inside a pod's network (and optionally user) namespace. Domain code never
// builds nsenter argv itself; SpawnExec calls this whenever a request names a netns.

/** `nsenter [--user=<userns>] --net=<netns> -- <argv…>`; argv unchanged when no namespace is given. */
export function nsenterArgv(
  argv: readonly string[],
  namespaces: { readonly netns?: string | undefined; readonly userns?: string | undefined },
): string[] {
  if (namespaces.netns === undefined && namespaces.userns === undefined) return [...argv];
  const out = ['nsenter'];
  if (namespaces.userns !== undefined) out.push(`--user=${namespaces.userns}`);
  if (namespaces.netns !== undefined) out.push(`--net=${namespaces.netns}`);
  out.push('--', ...argv);
  return out;
}

/** Debian package that provides a host binary (for "missing binary" errors). */
export function debianPackageFor(binary: string): string {
  const name = binary.slice(binary.lastIndexOf('/') + 1);
  if (/^ip6?tables/.test(name) || name.startsWith('xtables')) return 'iptables';
  if (name === 'nft') return 'nftables';
  if (name === 'ip' || name === 'tc') return 'iproute2';
  if (name === 'nsenter' || name === 'unshare' || name === 'setpriv') return 'util-linux';
  if (name === 'head' || name === 'cat') return 'coreutils';
  return 'the package providing it';
}
