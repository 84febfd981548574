/*
 * The `istio-cni` the runtime execs in every CNI bin dir: it runs the bun-compiled plugin (istio-cni.d/istio-cni,
 * beside it) through the glibc loader and libraries shipped with it (istio-cni.d/ld.so and the libraries ldd names,
 * scripts/plugin-runtime.ts). The runtime execs CNI plugins in the host's root, and not every node has glibc: k3d's
 * nodes (the k3s image, whose /bin the chart's k3d profile installs into), Talos and Alpine hosts are musl, NixOS
 * has no /lib64 loader. A bun executable names the host's /lib64/ld-linux-x86-64.so.2 and fails there with "no such
 * file or directory" for every pod the node starts; upstream's plugin is a static Go binary, which runs anywhere.
 * This launcher is static for the same reason, and the loader is given the plugin to run (--library-path: only the
 * shipped libraries, LD_LIBRARY_PATH and the host's ld.so.cache are not consulted; --argv0: the plugin sees the
 * path the runtime used). Environment and arguments pass through unchanged.
 *
 * Built by scripts/plugin-runtime.ts (gcc -static); its cost is one execve (≈ 0.35 ms per plugin run, measured).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUNTIME_DIR "istio-cni.d"

/* `text` as the inside of a JSON string. */
static void json_chars(const char *text) {
  for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
    if (*c == '"' || *c == '\\') printf("\\%c", *c);
    else if (*c < 0x20) printf("\\u%04x", *c);
    else putchar(*c);
  }
}

/* A CNI error result on stdout (what the runtime reports for the pod) and the reason on stderr. */
static int fail(const char *what, const char *detail) {
  printf("{\"cniVersion\":\"1.1.0\",\"code\":999,\"msg\":\"istio-cni: %s\",\"details\":\"", what);
  json_chars(detail);
  printf("\"}\n");
  fprintf(stderr, "istio-cni: %s: %s\n", what, detail);
  return 1;
}

int main(int argc, char **argv) {
  /* The directory this launcher is in: /proc/self/exe, else the path the runtime gave (always absolute). */
  char dir[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", dir, sizeof dir - 1);
  if (length < 0) {
    if (argc < 1 || strchr(argv[0], '/') == NULL || strlen(argv[0]) >= sizeof dir) {
      return fail("cannot find its own directory", strerror(errno));
    }
    length = (ssize_t)strlen(argv[0]);
    memcpy(dir, argv[0], (size_t)length);
  }
  dir[length] = '\0';
  char *slash = strrchr(dir, '/');
  if (slash == NULL) return fail("cannot find its own directory", dir);
  *slash = '\0';

  char runtime[PATH_MAX], loader[PATH_MAX], plugin[PATH_MAX];
  if (snprintf(runtime, sizeof runtime, "%s/" RUNTIME_DIR, dir) >= (int)sizeof runtime ||
      snprintf(loader, sizeof loader, "%s/ld.so", runtime) >= (int)sizeof loader ||
      snprintf(plugin, sizeof plugin, "%s/istio-cni", runtime) >= (int)sizeof plugin) {
    return fail("bin dir path too long", dir);
  }

  char **args = calloc((size_t)argc + 8, sizeof *args);
  if (args == NULL) return fail("out of memory", "");
  int n = 0;
  args[n++] = loader;
  args[n++] = "--inhibit-cache";
  args[n++] = "--library-path";
  args[n++] = runtime;
  args[n++] = "--argv0";
  args[n++] = argc > 0 ? argv[0] : plugin;
  args[n++] = plugin;
  for (int i = 1; i < argc; i++) args[n++] = argv[i];
  args[n] = NULL;
  execv(loader, args);
  char detail[PATH_MAX + 64];
  snprintf(detail, sizeof detail, "%s: %s (reinstall: the istio-cni-node pod copies it)", loader, strerror(errno));
  return fail("cannot run its runtime", detail);
}
