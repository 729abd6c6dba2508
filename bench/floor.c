/*
 * floor.c - the scratchbox benchmark's lower bound.
 *
 * Runs N containers one after another and prints how long each took, in
 * microseconds, one number per line on stdout. A "container" here is the
 * least work that still gives the isolation scratchbox gives by default:
 *
 *   clone(CLONE_VM|CLONE_VFORK + new mount, pid, uts, ipc, net namespaces)
 *   child: make "/" recursively private, mount a tmpfs over the rootfs path,
 *          put an overlay (lower = the rootfs, opened before the tmpfs went
 *          on top) at tmpfs/root, mount proc, /dev (tmpfs), /dev/pts,
 *          /dev/shm, /dev/mqueue, /sys (ro), a recursive read-only bind of
 *          the host's /sys/fs/cgroup, create the default device nodes and
 *          /dev symlinks, write /etc/hostname, /etc/hosts, /etc/resolv.conf,
 *          link /etc/mtab, bring "lo" up, set the hostname, pivot_root,
 *          mark every descriptor above 2 close-on-exec and execve the program.
 *   parent: waitpid on the child.
 *
 * The time of one iteration runs from just before clone() to just after
 * waitpid() returned, i.e. create + start + exit + delete (the kernel tears
 * the namespaces and mounts down when the last process in them exits).
 *
 * With --base, the technique scratchbox uses: a mount namespace made once
 * that holds only an empty read-only tmpfs (the "base"); the child builds
 * its root detached (tmpfs + overlay by fd) while it still sees the host,
 * clones the /sys/fs/cgroup tree, setns()es into the base and unshares,
 * attaches the root on "/", does the same mounts, devices and files in it,
 * and chroots instead of pivot_root.
 *
 * Usage: floor ROOTFS N [--no-net] [--base] [--exec PATH] [--verbose]
 *              [--hold K --hold-rootfs DIR --hold-exec PATH]
 *
 *   --no-net      keep the host network namespace (no CLONE_NEWNET, no lo)
 *   --base        a copy of a base mount namespace and chroot (see above)
 *   --exec PATH   program to run inside (default /true); with --verbose its
 *                 stdout/stderr are inherited, otherwise they go to /dev/null
 *   --hold K      before timing, start K long-lived containers running
 *                 --hold-exec (default /sleep) from --hold-rootfs (default
 *                 ROOTFS), print "# held K memavail_kb_delta=D" on stderr,
 *                 then time the N runs, then SIGTERM and reap the holders.
 *
 * Exit status: 0 if every child exited 0, 1 otherwise (a failure names the
 * setup step and errno on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STACK_SIZE (256 * 1024)

struct job {
  const char *rootfs;  /* host path of the rootfs directory */
  const char *exec;    /* program inside the container */
  int net;             /* new network namespace + lo up */
  int quiet;           /* stdio of the program -> /dev/null */
  int devnull;         /* fd of /dev/null when quiet */
  int base_ns;         /* --base: the base mount namespace; -1 otherwise */
  const char *resolv;  /* contents for /etc/resolv.conf */
  size_t resolv_len;
  /* written by the child on failure (CLONE_VM: shared with the parent) */
  volatile const char *fail_step;
  volatile int fail_errno;
};

static char *const child_env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                  "HOSTNAME=floor", NULL};

#define TRY(step, expr)          \
  do {                           \
    if ((expr) < 0) {            \
      j->fail_step = (step);     \
      j->fail_errno = errno;     \
      _exit(127);                \
    }                            \
  } while (0)

static int write_file(const char *path, const char *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return -1;
  ssize_t n = write(fd, data, len);
  int e = errno;
  close(fd);
  if (n != (ssize_t)len) {
    errno = n < 0 ? e : EIO;
    return -1;
  }
  return 0;
}

static int lo_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int r = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (r == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    r = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  close(s);
  errno = e;
  return r;
}

static int clone_cgroup(void) {
  return open_tree(AT_FDCWD, "/sys/fs/cgroup", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
}

/* fd: a clone of the host's /sys/fs/cgroup tree (consumed). */
static int bind_cgroup_ro(int fd, const char *target) {
  if (fd < 0) return -1;
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
  int r = mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr);
  if (r == 0) r = move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
  int e = errno;
  close(fd);
  errno = e;
  return r;
}

/* A copy of the host's mount namespace: make it private, a tmpfs over the
 * rootfs path, the overlay at tmpfs/root; cwd ends in the new root. */
static void host_root(struct job *j) {
  char opts[256];
  TRY("make / private", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));

  /* The overlay's lower layer is the rootfs directory as it was before the
   * tmpfs covered its path. The fd has to be opened here, in the child's
   * mount namespace: overlayfs refuses a lower path whose mount belongs to
   * another namespace. CLOEXEC keeps it out of the container. */
  int rootfs_fd = open(j->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  TRY("open rootfs", rootfs_fd);

  /* A fresh tmpfs over the rootfs path holds the overlay's upper/work dirs
   * and the mount point of the new root. */
  TRY("tmpfs over rootfs", mount("tmpfs", j->rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
  TRY("chdir tmpfs", chdir(j->rootfs));
  TRY("mkdir upper", mkdir("upper", 0755));
  TRY("mkdir work", mkdir("work", 0755));
  TRY("mkdir root", mkdir("root", 0755));
  snprintf(opts, sizeof opts, "lowerdir=/proc/self/fd/%d,upperdir=upper,workdir=work", rootfs_fd);
  TRY("overlay", mount("overlay", "root", "overlay", 0, opts));
  TRY("chdir root", chdir("root"));
}

/* --base: the root built detached in the host's namespace, then a copy of the
 * base namespace with the root attached on "/"; cwd ends in the new root. */
static void base_root(struct job *j, int *cgroup_fd) {
  int lower = open(j->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  TRY("open rootfs", lower);
  int tfs = fsopen("tmpfs", FSOPEN_CLOEXEC);
  TRY("fsopen tmpfs", tfs);
  TRY("tmpfs mode", fsconfig(tfs, FSCONFIG_SET_STRING, "mode", "0755", 0));
  TRY("tmpfs create", fsconfig(tfs, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
  int t = fsmount(tfs, FSMOUNT_CLOEXEC, 0);
  TRY("fsmount tmpfs", t);
  TRY("mkdir upper", mkdirat(t, "upper", 0755));
  TRY("mkdir work", mkdirat(t, "work", 0755));
  int up = openat(t, "upper", O_PATH | O_DIRECTORY | O_CLOEXEC), wk = openat(t, "work", O_PATH | O_DIRECTORY | O_CLOEXEC);
  TRY("open upper", up);
  TRY("open work", wk);
  int ofs = fsopen("overlay", FSOPEN_CLOEXEC);
  TRY("fsopen overlay", ofs);
  TRY("overlay lower", fsconfig(ofs, FSCONFIG_SET_FD, "lowerdir+", NULL, lower));
  TRY("overlay upper", fsconfig(ofs, FSCONFIG_SET_FD, "upperdir", NULL, up));
  TRY("overlay work", fsconfig(ofs, FSCONFIG_SET_FD, "workdir", NULL, wk));
  TRY("overlay create", fsconfig(ofs, FSCONFIG_CMD_CREATE, NULL, NULL, 0));
  int o = fsmount(ofs, FSMOUNT_CLOEXEC, 0);
  TRY("fsmount overlay", o);
  *cgroup_fd = clone_cgroup(); /* the last look at the host */
  TRY("clone /sys/fs/cgroup", *cgroup_fd);
  TRY("setns base", setns(j->base_ns, CLONE_NEWNS));
  TRY("unshare mount ns", unshare(CLONE_NEWNS));
  TRY("attach tmpfs", move_mount(t, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH));
  TRY("attach overlay", move_mount(o, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH));
  TRY("chdir root", fchdir(o));
}

static int child_main(void *arg) {
  struct job *j = arg;
  int cgroup_fd = -1;

  if (j->base_ns >= 0)
    base_root(j, &cgroup_fd);
  else
    host_root(j);

  umask(0);
  TRY("mkdir proc", mkdir("proc", 0555));
  TRY("mount proc", mount("proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL));
  TRY("mkdir dev", mkdir("dev", 0755));
  TRY("mount dev", mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"));
  TRY("mkdir dev/pts", mkdir("dev/pts", 0755));
  TRY("mount dev/pts", mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                             "newinstance,ptmxmode=0666,mode=0620,gid=5"));
  TRY("mkdir dev/shm", mkdir("dev/shm", 01777));
  TRY("mount dev/shm", mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
                             "mode=1777,size=65536k"));
  TRY("mkdir dev/mqueue", mkdir("dev/mqueue", 0755));
  TRY("mount dev/mqueue", mount("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL));
  TRY("mkdir sys", mkdir("sys", 0555));
  TRY("mount sys", mount("sysfs", "sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL));
  TRY("bind sys/fs/cgroup", bind_cgroup_ro(cgroup_fd >= 0 ? cgroup_fd : clone_cgroup(), "sys/fs/cgroup"));

  static const struct { const char *name; unsigned maj, min; } devs[] = {
      {"dev/null", 1, 3}, {"dev/zero", 1, 5}, {"dev/full", 1, 7},
      {"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0},
  };
  for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++)
    TRY(devs[i].name, mknod(devs[i].name, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)));
  static const struct { const char *target, *link; } links[] = {
      {"/proc/self/fd", "dev/fd"},     {"/proc/self/fd/0", "dev/stdin"},
      {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
      {"pts/ptmx", "dev/ptmx"},        {"/proc/kcore", "dev/core"},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    TRY(links[i].link, symlink(links[i].target, links[i].link));

  umask(022);
  TRY("mkdir etc", mkdir("etc", 0755));
  static const char hostname[] = "floor\n";
  static const char hosts[] =
      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tfloor\n";
  TRY("etc/hostname", write_file("etc/hostname", hostname, sizeof hostname - 1));
  TRY("etc/hosts", write_file("etc/hosts", hosts, sizeof hosts - 1));
  TRY("etc/resolv.conf", write_file("etc/resolv.conf", j->resolv, j->resolv_len));
  TRY("etc/mtab", symlink("/proc/mounts", "etc/mtab"));

  if (j->net) TRY("lo up", lo_up());
  TRY("sethostname", sethostname("floor", 5));

  if (j->base_ns >= 0) {
    TRY("chroot", chroot("."));
  } else {
    TRY("pivot_root", syscall(SYS_pivot_root, ".", "."));
    TRY("umount old root", umount2(".", MNT_DETACH));
  }
  TRY("chdir /", chdir("/"));

  if (j->quiet) {
    TRY("stdout", dup2(j->devnull, 1));
    TRY("stderr", dup2(j->devnull, 2));
  }
  /* Nothing but stdio may reach the container: descriptors the floor
   * inherited without O_CLOEXEC would otherwise leak into it. */
  TRY("close_range", close_range(3, ~0U, CLOSE_RANGE_CLOEXEC));
  char *const argv[] = {(char *)j->exec, NULL};
  execve(j->exec, argv, child_env);
  j->fail_step = "execve";
  j->fail_errno = errno;
  _exit(127);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *stack_top;

/* Starts one container; returns its pid (the child has exec'd or exited when
 * this returns, because of CLONE_VFORK). */
static pid_t start_one(struct job *j) {
  int flags = CLONE_VM | CLONE_VFORK | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  if (j->base_ns < 0) flags |= CLONE_NEWNS; /* --base: the child unshares after setns */
  if (j->net) flags |= CLONE_NEWNET;
  j->fail_step = NULL;
  j->fail_errno = 0;
  return clone(child_main, stack_top, flags, j);
}

static int check_exit(struct job *j, pid_t pid, int status) {
  if (j->fail_step) {
    fprintf(stderr, "floor: container %d failed at %s: %s\n", pid, j->fail_step, strerror(j->fail_errno));
    return -1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "floor: container %d: %s %d\n", pid, WIFEXITED(status) ? "exit status" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return -1;
  }
  return 0;
}

static long memavail_kb(void) {
  FILE *f = fopen("/proc/meminfo", "re");
  if (!f) return -1;
  char line[256];
  long v = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %ld kB", &v) == 1) break;
  fclose(f);
  return v;
}

/* --base: a mount namespace holding only the kernel's initial rootfs and an
 * empty read-only tmpfs on it, made once by a short-lived child. */
static int make_base(void) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    int fs = -1, m = -1;
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(1);
    if ((fs = fsopen("tmpfs", FSOPEN_CLOEXEC)) < 0 || fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0555", 0) < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
        (m = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)) < 0 ||
        move_mount(m, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0 || fchdir(m) < 0 ||
        syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0)
      _exit(1);
    if (write(p[1], "k", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(p[1]);
  char c;
  int ns = -1;
  if (pid > 0 && read(p[0], &c, 1) == 1) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
    ns = open(path, O_RDONLY | O_CLOEXEC);
  }
  close(p[0]);
  if (pid > 0) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  return ns;
}

static void usage(void) {
  fprintf(stderr,
          "usage: floor ROOTFS N [--no-net] [--base] [--exec PATH] [--verbose]\n"
          "             [--hold K [--hold-rootfs DIR] [--hold-exec PATH]]\n");
  exit(2);
}

static int open_job(struct job *j, const char *rootfs) {
  struct stat st;
  j->rootfs = rootfs;
  if (stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "floor: %s: not a directory\n", rootfs);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) usage();
  struct job j;
  memset(&j, 0, sizeof j);
  char rootfs_abs[4096];
  if (!realpath(argv[1], rootfs_abs)) {
    fprintf(stderr, "floor: %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  long n = strtol(argv[2], NULL, 10);
  if (n < 0) usage();
  j.exec = "/true";
  j.net = 1;
  j.base_ns = -1;
  int base = 0;
  j.quiet = 1;
  long hold = 0;
  const char *hold_rootfs = NULL, *hold_exec = "/sleep";
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--no-net")) j.net = 0;
    else if (!strcmp(argv[i], "--base")) base = 1;
    else if (!strcmp(argv[i], "--verbose")) j.quiet = 0;
    else if (!strcmp(argv[i], "--exec") && i + 1 < argc) j.exec = argv[++i];
    else if (!strcmp(argv[i], "--hold") && i + 1 < argc) hold = strtol(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--hold-rootfs") && i + 1 < argc) hold_rootfs = argv[++i];
    else if (!strcmp(argv[i], "--hold-exec") && i + 1 < argc) hold_exec = argv[++i];
    else usage();
  }
  if (open_job(&j, rootfs_abs) < 0) return 2;
  if (base && (j.base_ns = make_base()) < 0) {
    fprintf(stderr, "floor: cannot make the base mount namespace\n");
    return 2;
  }

  j.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  static char resolv[4096];
  int rfd = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
  ssize_t rl = rfd >= 0 ? read(rfd, resolv, sizeof resolv) : -1;
  if (rfd >= 0) close(rfd);
  if (rl <= 0) rl = snprintf(resolv, sizeof resolv, "nameserver 127.0.0.1\n");
  j.resolv = resolv;
  j.resolv_len = (size_t)rl;

  /* One stack for every child: with CLONE_VFORK only one child runs on it at
   * a time, and it is done with it once it has exec'd. */
  char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return 2;
  stack_top = stack + STACK_SIZE;

  /* Optional long-lived containers, for the scale scenario's baseline. */
  pid_t *held = NULL;
  int rc = 0;
  if (hold > 0) {
    struct job h = j;
    char hold_abs[4096];
    if (!realpath(hold_rootfs ? hold_rootfs : rootfs_abs, hold_abs) || open_job(&h, hold_abs) < 0) return 2;
    h.exec = hold_exec;
    h.quiet = 1;
    held = calloc((size_t)hold, sizeof *held);
    long before = memavail_kb();
    uint64_t t0 = now_ns();
    for (long i = 0; i < hold; i++) {
      held[i] = start_one(&h);
      if (held[i] < 0 || h.fail_step) {
        fprintf(stderr, "floor: holder %ld failed at %s: %s\n", i, h.fail_step ? h.fail_step : "clone",
                strerror(h.fail_step ? h.fail_errno : errno));
        hold = i + (held[i] > 0);
        rc = 1;
        break;
      }
    }
    uint64_t t1 = now_ns();
    long after = memavail_kb();
    fprintf(stderr, "# held %ld memavail_kb_delta=%ld start_ms=%.1f\n", hold, before - after,
            (double)(t1 - t0) / 1e6);
  }

  for (long i = 0; i < n && rc == 0; i++) {
    uint64_t t0 = now_ns();
    pid_t pid = start_one(&j);
    if (pid < 0) {
      fprintf(stderr, "floor: clone: %s\n", strerror(errno));
      rc = 1;
      break;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    uint64_t t1 = now_ns();
    if (check_exit(&j, pid, status) < 0) {
      rc = 1;
      break;
    }
    printf("%.1f\n", (double)(t1 - t0) / 1e3);
  }
  fflush(stdout);

  for (long i = 0; i < hold; i++)
    if (held[i] > 0) kill(held[i], SIGTERM);
  for (long i = 0; i < hold; i++) {
    int status;
    if (held[i] > 0)
      while (waitpid(held[i], &status, 0) < 0 && errno == EINTR) {
      }
  }
  return rc;
}
