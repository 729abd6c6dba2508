/* Debug payload: prints what a process inside the container sees - its pid,
 * hostname, mount table, the entries of /, /dev and /etc, the /etc files and
 * the loopback flags and its open file descriptors - so the bench can check the floor really sets up the
 * same container as the runtimes it is compared with. Built with gcc -static. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void cat(const char *path) {
  printf("== %s\n", path);
  int fd = open(path, O_RDONLY);
  if (fd < 0) { perror(path); return; }
  char buf[8192];
  ssize_t n;
  fflush(stdout);
  while ((n = read(fd, buf, sizeof buf)) > 0) write(1, buf, (size_t)n);
  close(fd);
}

static void ls(const char *dir) {
  printf("== ls %s\n", dir);
  DIR *d = opendir(dir);
  if (!d) { perror(dir); return; }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[512], l[256];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) < 0) { printf("%s ?\n", e->d_name); continue; }
    if (S_ISLNK(st.st_mode)) {
      ssize_t n = readlink(p, l, sizeof l - 1);
      l[n < 0 ? 0 : n] = 0;
      printf("%s -> %s\n", e->d_name, l);
    } else if (S_ISCHR(st.st_mode)) {
      printf("%s c %u:%u %04o\n", e->d_name, major(st.st_rdev), minor(st.st_rdev), st.st_mode & 07777);
    } else {
      printf("%s %s %04o\n", e->d_name, S_ISDIR(st.st_mode) ? "d" : "f", st.st_mode & 07777);
    }
  }
  closedir(d);
}

/* Open file descriptors other than the one used to list them: anything
 * beyond 0, 1, 2 is a descriptor the runtime leaked into the container. */
static void fds(void) {
  printf("== fds\n");
  DIR *d = opendir("/proc/self/fd");
  if (!d) { perror("/proc/self/fd"); return; }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d)) continue;
    char p[300], l[512];
    snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(p, l, sizeof l - 1);
    l[n < 0 ? 0 : n] = 0;
    printf("%s -> %s\n", e->d_name, l);
  }
  closedir(d);
}

int main(void) {
  char host[256] = "";
  gethostname(host, sizeof host);
  printf("pid %d hostname %s\n", getpid(), host);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0)
    printf("lo %s\n", (ifr.ifr_flags & IFF_UP) ? "UP" : "DOWN");
  if (s >= 0) close(s);
  fds();
  ls("/");
  ls("/dev");
  ls("/etc");
  cat("/etc/hostname");
  cat("/etc/hosts");
  cat("/etc/resolv.conf");
  cat("/proc/self/mountinfo");
  fflush(stdout);
  return 0;
}
