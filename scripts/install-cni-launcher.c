/*
 * The image's /usr/local/bin/install-cni: execs the bun-compiled agent (/usr/local/lib/istio-cni/install-cni) with
 * the variables that would let the environment change what runs removed. A bun executable honours BUN_OPTIONS
 * (`--preload FILE` runs any file before our code; `-e` needs no file) and BUN_BE_BUN (it becomes the bun CLI), bun
 * reads NODE_OPTIONS, NODE_TLS_REJECT_UNAUTHORIZED and NODE_EXTRA_CA_CERTS, and the agent is linked against glibc,
 * whose loader honours LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH and the rest of LD_*. The DaemonSet takes its
 * environment from the istio-cni-config ConfigMap (envFrom), so without this write access to that ConfigMap would be
 * code execution as root, with the agent's capabilities, on every node; upstream's static Go binary reads none of
 * these. Everything else (NODE_NAME included) passes through unchanged, and so do the arguments.
 *
 * Built by scripts/image-rootfs.ts (gcc -static); test/integration/image-rootfs.test.ts runs it in the image root.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define AGENT "/usr/local/lib/istio-cni/install-cni"

extern char **environ;

static int dropped(const char *entry) {
  static const char *const exact[] = {"NODE_OPTIONS=", "NODE_TLS_REJECT_UNAUTHORIZED=", "NODE_EXTRA_CA_CERTS="};
  if (strncmp(entry, "BUN_", 4) == 0 || strncmp(entry, "LD_", 3) == 0) return 1;
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
    if (strncmp(entry, exact[i], strlen(exact[i])) == 0) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  (void)argc;
  char **kept = environ;
  for (char **entry = environ; *entry != NULL; entry++) {
    if (!dropped(*entry)) *kept++ = *entry;
  }
  *kept = NULL;
  execv(AGENT, argv);
  fprintf(stderr, "install-cni: cannot run %s: %s\n", AGENT, strerror(errno));
  return 127;
}
