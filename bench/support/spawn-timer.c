/* Times whole processes the way a container runtime starts a CNI plugin: posix_spawn, its stdin a pipe written
 * by us, stdout/stderr to /dev/null, wait4. Node's child_process adds ~3 ms of its own to every spawn (event loop,
 * pipes), which would hide the floor; this measures the process only.
 *
 *   spawn-timer RUNS ENV_FILE STDIN_FILE BINARY [ENV_FILE STDIN_FILE BINARY ...]
 *
 * ENV_FILE holds NUL-separated KEY=VALUE entries. Invocations are interleaved (a, b, a, b, ...) so machine drift hits
 * all alike. Prints one line per invocation: "<median wall ms> <max RSS KiB> <failures>". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct invocation {
  char *binary;
  char **env;
  char *input;
  size_t input_length;
  double *wall_ms;
  long max_rss_kib;
  int failures;
};

static char *read_file(const char *path, size_t *length) {
  FILE *file = fopen(path, "rb");
  if (file == NULL) { perror(path); exit(2); }
  size_t capacity = 4096, used = 0;
  char *data = malloc(capacity + 1);
  size_t count;
  while ((count = fread(data + used, 1, capacity - used, file)) > 0) {
    used += count;
    if (used == capacity) { capacity *= 2; data = realloc(data, capacity + 1); }
  }
  fclose(file);
  data[used] = '\0';
  *length = used;
  return data;
}

static char **split_env(char *data, size_t length) {
  size_t count = 0;
  for (size_t i = 0; i < length; i++) if (data[i] == '\0') count++;
  char **env = calloc(count + 2, sizeof *env);
  size_t n = 0, start = 0;
  for (size_t i = 0; i < length; i++) {
    if (data[i] == '\0') { if (i > start) env[n++] = data + start; start = i + 1; }
  }
  if (start < length) env[n++] = data + start;
  env[n] = NULL;
  return env;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void run_once(struct invocation *inv, int index) {
  int in[2];
  if (pipe(in) != 0) { perror("pipe"); exit(2); }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_addclose(&actions, in[1]);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  char *argv[] = {inv->binary, NULL};
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  pid_t pid;
  if (posix_spawn(&pid, inv->binary, &actions, NULL, argv, inv->env) != 0) { perror(inv->binary); exit(2); }
  close(in[0]);
  for (size_t done = 0; done < inv->input_length;) {
    ssize_t written = write(in[1], inv->input + done, inv->input_length - done);
    if (written <= 0) break; /* the child stopped reading: its exit status tells */
    done += (size_t)written;
  }
  close(in[1]);
  int status;
  struct rusage usage;
  wait4(pid, &status, 0, &usage);
  clock_gettime(CLOCK_MONOTONIC, &end);
  posix_spawn_file_actions_destroy(&actions);
  inv->wall_ms[index] = (double)(end.tv_sec - start.tv_sec) * 1e3 + (double)(end.tv_nsec - start.tv_nsec) / 1e6;
  if (usage.ru_maxrss > inv->max_rss_kib) inv->max_rss_kib = usage.ru_maxrss;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) inv->failures++;
}

int main(int argc, char **argv) {
  if (argc < 5 || (argc - 2) % 3 != 0) {
    fprintf(stderr, "usage: spawn-timer RUNS ENV_FILE STDIN_FILE BINARY [ENV_FILE STDIN_FILE BINARY ...]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int runs = atoi(argv[1]);
  int count = (argc - 2) / 3;
  struct invocation *invocations = calloc((size_t)count, sizeof *invocations);
  for (int i = 0; i < count; i++) {
    size_t env_length;
    char *env_data = read_file(argv[2 + 3 * i], &env_length);
    invocations[i].env = split_env(env_data, env_length);
    invocations[i].input = read_file(argv[3 + 3 * i], &invocations[i].input_length);
    invocations[i].binary = argv[4 + 3 * i];
    invocations[i].wall_ms = calloc((size_t)runs, sizeof(double));
    run_once(&invocations[i], 0); /* warm the page cache; not counted */
    invocations[i].failures = 0;
  }
  for (int r = 0; r < runs; r++)
    for (int i = 0; i < count; i++) run_once(&invocations[i], r);
  for (int i = 0; i < count; i++) {
    qsort(invocations[i].wall_ms, (size_t)runs, sizeof(double), compare);
    printf("%.3f %ld %d\n", invocations[i].wall_ms[runs / 2], invocations[i].max_rss_kib, invocations[i].failures);
  }
  return 0;
}
