/*
 * timer.c - times a command the way a caller pays for it: fork + execve +
 * waitpid, N times in a row, printing each run's wall time in microseconds,
 * one number per line on stdout. It keeps Node's own spawn cost out of the
 * numbers for crun, runc, bubblewrap and a plain exec of /true.
 *
 * Usage: timer [--id PREFIX] N -- COMMAND [ARG...]
 *
 *   --id PREFIX  every "{ID}" inside an argument is replaced, per run, by
 *                PREFIX-<run index> (unique container ids for OCI runtimes)
 *
 * The command's stdout goes to /dev/null; its stderr is inherited. The first
 * run that does not exit 0 stops the loop and makes timer exit 1.
 *
 * timer is a child subreaper: processes the command leaves behind (bubblewrap
 * as root exits before its pid-namespace init has been reaped, for one) are
 * re-parented to timer, and a run only ends once all of them are reaped too,
 * so a run is charged for everything it started and leaves no zombies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Copies src into dst, replacing each "{ID}" with id. */
static char *subst(const char *src, const char *id) {
  size_t cap = strlen(src) + 1, idlen = strlen(id);
  for (const char *p = src; (p = strstr(p, "{ID}")); p += 4) cap += idlen;
  char *dst = malloc(cap), *o = dst;
  if (!dst) return NULL;
  while (*src) {
    if (!strncmp(src, "{ID}", 4)) {
      memcpy(o, id, idlen);
      o += idlen;
      src += 4;
    } else {
      *o++ = *src++;
    }
  }
  *o = 0;
  return dst;
}

static void usage(void) {
  fprintf(stderr, "usage: timer [--id PREFIX] N -- COMMAND [ARG...]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *prefix = NULL;
  int i = 1;
  if (i + 1 < argc && !strcmp(argv[i], "--id")) {
    prefix = argv[i + 1];
    i += 2;
  }
  if (i + 2 >= argc || strcmp(argv[i + 1], "--")) usage();
  long n = strtol(argv[i], NULL, 10);
  char **cmd = argv + i + 2;
  int cmdc = argc - i - 2;
  if (n < 0 || cmdc < 1) usage();

  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    perror("timer: PR_SET_CHILD_SUBREAPER");
    return 1;
  }
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  char **args = calloc((size_t)cmdc + 1, sizeof *args);
  char id[256];
  for (long r = 0; r < n; r++) {
    if (prefix) {
      snprintf(id, sizeof id, "%s-%ld", prefix, r);
      for (int k = 0; k < cmdc; k++) args[k] = subst(cmd[k], id);
    } else {
      for (int k = 0; k < cmdc; k++) args[k] = cmd[k];
    }
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
      perror("timer: fork");
      return 1;
    }
    if (pid == 0) {
      dup2(devnull, 1);
      execvp(args[0], args);
      fprintf(stderr, "timer: exec %s: %s\n", args[0], strerror(errno));
      _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    /* Then whatever the command left behind, until timer has no children. */
    int other;
    while (waitpid(-1, &other, 0) > 0 || errno == EINTR) {
    }
    uint64_t t1 = now_ns();
    if (prefix)
      for (int k = 0; k < cmdc; k++) free(args[k]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fflush(stdout);
      fprintf(stderr, "timer: run %ld of %s: %s %d\n", r, cmd[0], WIFEXITED(status) ? "exit status" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      return 1;
    }
    printf("%.1f\n", (double)(t1 - t0) / 1e3);
  }
  return 0;
}
