/*
 * The plan interpreter: runs in the cloned child, between clone3 and execve.
 *
 * Rules for every line in this file (see docs/child-safety.md):
 *  - The child shares the Node process's memory (CLONE_VM) and the calling thread's TLS. It writes
 *    only to its own stack. No malloc, no locks, no stdio, no errno, no exceptions, no N-API, no
 *    libc wrappers that keep state: raw system calls only (sys.h), on data the parent prepared.
 *  - All signals stay blocked until just before execve, and every handler is reset to SIG_DFL
 *    first, so no Node signal handler ever runs on this stack.
 *  - A failure is reported once, as {stage, op, errno} over the sync socket, then the child exits.
 *  - Paths inside the new root are resolved with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)
 *    from the root's fd: a symlink in the rootfs can never redirect a mount, a device node or a
 *    file onto the host. Such a path fails with ELOOP.
 */
#define _GNU_SOURCE
#include "child.h"

#include <fcntl.h>
#include <linux/errno.h> /* constants only: the child never reads or writes errno */
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <linux/stat.h>
#include <net/if.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "sys.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif

#define SBX_PATH_MAX 4096

/* ---- clone3 trampoline ------------------------------------------------------------------- */
/* long sbx_clone3(void *args, unsigned long size, int (*fn)(void *), void *arg)
 * The parent returns the pid (or -errno). The child starts on the new stack with no frame: it
 * calls fn(arg) and exits with its return value. Registers kept across the syscall carry fn/arg. */
#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl sbx_clone3\n"
    ".type sbx_clone3,@function\n"
    "sbx_clone3:\n"
    "  mov %rdx, %r9\n"   /* fn  */
    "  mov %rcx, %r8\n"   /* arg */
    "  mov $435, %eax\n"  /* __NR_clone3 */
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  xor %ebp, %ebp\n"  /* child: outermost frame */
    "  mov %r8, %rdi\n"
    "  call *%r9\n"
    "  mov %eax, %edi\n"
    "  mov $231, %eax\n"  /* __NR_exit_group */
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  ret\n"
    ".size sbx_clone3, .-sbx_clone3\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".globl sbx_clone3\n"
    ".type sbx_clone3,%function\n"
    "sbx_clone3:\n"
    "  mov x10, x2\n"
    "  mov x11, x3\n"
    "  mov x8, #435\n"
    "  svc #0\n"
    "  cbnz x0, 1f\n"
    "  mov x29, xzr\n"
    "  mov x30, xzr\n"
    "  mov x0, x11\n"
    "  blr x10\n"
    "  mov x8, #94\n"
    "  svc #0\n"
    "1:\n"
    "  ret\n"
    ".size sbx_clone3, .-sbx_clone3\n");
#endif

/* ---- tiny async-signal-safe helpers ------------------------------------------------------ */

static size_t s_len(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/* Appends src to buf[*pos]; returns -ENAMETOOLONG when it does not fit (with the NUL). */
static int s_append(char *buf, size_t cap, size_t *pos, const char *src, size_t n) {
  if (*pos + n + 1 > cap) return -ENAMETOOLONG;
  for (size_t i = 0; i < n; i++) buf[*pos + i] = src[i];
  *pos += n;
  buf[*pos] = 0;
  return 0;
}

static int s_append_int(char *buf, size_t cap, size_t *pos, long v) {
  char tmp[24];
  int n = 0;
  if (v < 0) return -EINVAL;
  do {
    tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return s_append(buf, cap, pos, tmp + sizeof tmp - n, (size_t)n);
}

static long sys_close(int fd) { return sbx_sys1(SYS_close, fd); }

/* ---- state ------------------------------------------------------------------------------- */

struct child_state {
  const struct sbx_child_args *a;
  int based;     /* the mount namespace is a copy of the base one (one empty tmpfs), not the host's */
  int attach_fd; /* where the upper tmpfs and then the overlay are attached: the rootfs directory
                    (host copy) or the base's root (based), until ENTER_ROOT */
  int tmpfs_fd;  /* the tmpfs holding the overlay's upper and work dirs, until ROOT_OVERLAY */
  int rootfd;    /* where paths resolve: upper/ after ROOT_UPPER, the overlay after ROOT_OVERLAY */
  int dir_fd;    /* one-entry cache of the last parent directory opened under the root */
  char dir_path[256];
  char exec_path[SBX_PATH_MAX]; /* the binary found by RESOLVE_EXEC */
  int netns_ready;              /* joined the parent's fresh netns: loopback is up already */
  int sysfs_used;               /* the pooled sysfs mount is attached */
  int slots[SBX_MAX_SLOTS];     /* detached trees from CLONE_TREE, until BIND (or ENTER_ROOT) */
  int fd[SBX_FD_COUNT_];        /* what MSG_FDS brought, -1 for what it did not */
};

static const char *str(const struct child_state *st, uint32_t off) {
  return off == SBX_NO_STRING ? (const char *)0 : st->a->strtab + off;
}

static void dir_cache_drop(struct child_state *st) {
  if (st->dir_fd >= 0) sys_close(st->dir_fd);
  st->dir_fd = -1;
  st->dir_path[0] = 0;
}

/* Opens `path` (relative to the new root) without following any symlink or leaving the root. */
static int open_beneath(int rootfd, const char *path, int flags) {
  struct open_how how = {0};
  /* No O_NOFOLLOW: with O_PATH it would return the symlink itself; without it,
   * RESOLVE_NO_SYMLINKS makes a trailing symlink fail with ELOOP like any other. */
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return (int)sbx_sys4(SYS_openat2, rootfd, (path && *path) ? path : ".", &how, sizeof how);
}

/* Splits `path` into its directory (opened, cached) and its last component (copied to base). */
static int open_parent(struct child_state *st, const char *path, char *base, size_t base_cap) {
  size_t n = s_len(path), cut = n;
  while (cut > 0 && path[cut - 1] != '/') cut--;
  size_t blen = n - cut;
  if (blen == 0 || blen + 1 > base_cap) return -EINVAL;
  for (size_t i = 0; i < blen; i++) base[i] = path[cut + i];
  base[blen] = 0;
  size_t dlen = cut ? cut - 1 : 0; /* without the trailing slash */
  if (dlen + 1 > sizeof st->dir_path) return -ENAMETOOLONG;
  if (st->dir_fd >= 0) {
    size_t i = 0;
    while (i < dlen && st->dir_path[i] == path[i]) i++;
    if (i == dlen && st->dir_path[dlen] == 0) return st->dir_fd;
  }
  dir_cache_drop(st);
  char dir[256];
  for (size_t i = 0; i < dlen; i++) dir[i] = path[i];
  dir[dlen] = 0;
  int fd = open_beneath(st->rootfd, dir, O_PATH | O_DIRECTORY);
  if (fd < 0) return fd;
  for (size_t i = 0; i <= dlen; i++) st->dir_path[i] = dir[i];
  st->dir_fd = fd;
  return fd;
}

/* Opens `path` under the root, creating missing components as directories (and the last one as
 * an empty file when `as_file`). Every component is checked: no symlinks, no escape. */
static int ensure_path(struct child_state *st, const char *path, int as_file) {
  int fd = open_beneath(st->rootfd, path, O_PATH);
  if (fd != -ENOENT) return fd;
  char buf[SBX_PATH_MAX];
  size_t n = s_len(path);
  if (n + 1 > sizeof buf) return -ENAMETOOLONG;
  for (size_t i = 0; i <= n; i++) buf[i] = path[i];
  int cur = st->rootfd, owned = 0;
  char *comp = buf;
  for (;;) {
    char *end = comp;
    while (*end && *end != '/') end++;
    int last = (*end == 0);
    *end = 0;
    if (*comp) {
      int next = open_beneath(cur, comp, O_PATH);
      if (next == -ENOENT) {
        long r;
        if (last && as_file) {
          r = sbx_sys4(SYS_openat, cur, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
          if (r >= 0) sys_close((int)r);
        } else {
          r = sbx_sys3(SYS_mkdirat, cur, comp, 0755);
        }
        if (r < 0 && r != -EEXIST) {
          if (owned) sys_close(cur);
          return (int)r;
        }
        next = open_beneath(cur, comp, O_PATH);
      }
      if (owned) sys_close(cur);
      if (next < 0) return next;
      cur = next;
      owned = 1;
    }
    if (last) break;
    comp = end + 1;
  }
  if (!owned) return open_beneath(st->rootfd, ".", O_PATH);
  return cur;
}

/* ---- ops --------------------------------------------------------------------------------- */

/* The namespaces clone3 did not make. A network namespace may come ready-made from the parent
 * (made ahead on a thread of its own, used by this container only): join it instead. */
static int op_unshare(struct child_state *st, const struct sbx_op *op) {
  uint64_t flags = op->mflags;
  if (op->n[0] == 1 && st->fd[SBX_FD_NETNS] < 0 && (flags & CLONE_NEWNET)) return -ENOENT; /* no shared netns */
  if (st->based) {
    /* Enter the base mount namespace first: the unshare below then copies its two mounts instead
     * of every mount of the host, and the new root needs no pivot_root (see ENTER_ROOT). From
     * here on the host's paths are out of sight: CLONE_TREE, ROOT_UPPER and ROOT_OVERLAY took
     * what the plan needs of them. */
    if (st->fd[SBX_FD_BASE_MNTNS] < 0 || !(flags & CLONE_NEWNS)) return -EINVAL;
    long r = sbx_sys2(SYS_setns, st->fd[SBX_FD_BASE_MNTNS], CLONE_NEWNS);
    if (r < 0) return (int)r;
    sys_close(st->fd[SBX_FD_BASE_MNTNS]);
    st->fd[SBX_FD_BASE_MNTNS] = -1;
  }
  if (st->fd[SBX_FD_NETNS] >= 0 && (flags & CLONE_NEWNET)) {
    long r = sbx_sys2(SYS_setns, st->fd[SBX_FD_NETNS], CLONE_NEWNET);
    if (r < 0) return (int)r;
    sys_close(st->fd[SBX_FD_NETNS]); /* this copy only: the parent keeps a shared one */
    st->fd[SBX_FD_NETNS] = -1;
    st->netns_ready = 1;
    flags &= ~(uint64_t)CLONE_NEWNET;
  }
  return (int)sbx_sys1(SYS_unshare, flags);
}

/* The copied host mounts stop propagating to and from the host. A copy of the base namespace has
 * no host mount in it, and the base's own mount is private already. */
static int op_make_private(struct child_state *st, const struct sbx_op *op) {
  if (st->based) return 0;
  return (int)sbx_sys5(SYS_mount, 0, "/", 0, op->mflags, 0);
}

/* A detached copy of a host tree (a bind source), taken while the child still shares
 * the host's mount namespace, and cut from the host's peer groups at once: nothing mounted in it
 * later can propagate back to the host. ENOENT with F_IGNORE_MISSING leaves the slot empty. */
static int op_clone_tree(struct child_state *st, const struct sbx_op *op) {
  unsigned rec = op->n[0] ? AT_RECURSIVE : 0;
  long fd = sbx_sys3(SYS_open_tree, AT_FDCWD, str(st, op->s[0]), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
  if (fd < 0) return (op->flags & SBX_F_IGNORE_MISSING) && fd == -ENOENT ? 0 : (int)fd;
  struct mount_attr attr = {0};
  attr.propagation = MS_PRIVATE;
  long r = sbx_sys5(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | rec, &attr, sizeof attr);
  if (r < 0) {
    sys_close((int)fd);
    return (int)r;
  }
  st->slots[op->n[1]] = (int)fd;
  return 0;
}

static void close_slot(struct child_state *st, uint32_t i) {
  if (st->slots[i] >= 0) sys_close(st->slots[i]);
  st->slots[i] = -1;
}

/* The new root is an overlay: the user's rootfs as its lower layer, a fresh tmpfs as its upper
 * layer, so mount points, device nodes and /etc files never touch the rootfs on disk.
 *
 * ROOT_UPPER makes the tmpfs (upper/ and work/ in it) and points the root fd at upper/. The ops
 * that follow until ROOT_OVERLAY (mount points, /etc files) write straight into the empty upper
 * layer: plain tmpfs calls, and whatever the image has at those paths (a symlink included) is
 * simply covered. ROOT_OVERLAY then makes the overlay and points the root fd at it.
 *
 * Based (H_BASE), both run before UNSHARE, in the host's mount namespace, and leave the tmpfs and
 * the overlay detached (fsmount): the overlay takes its lower layer from the host's mount of the
 * rootfs there, as a private clone of its own that is in no namespace. ATTACH_ROOT, after UNSHARE,
 * puts the tmpfs and then the overlay on "/" of the copy of the base namespace (attached, neither
 * is ever dissolved: closing the last fd of a detached mount waits for an RCU grace period), and
 * ENTER_ROOT chroots into the overlay.
 *
 * Otherwise (a copy of the host's namespace) both run after UNSHARE and attach at once, on the
 * rootfs directory itself, and ENTER_ROOT does pivot_root. */
static int op_root_upper(struct child_state *st) {
  long r, tfs, tfd, ufd;

  if (!st->based) {
    /* Opened here, not in the parent: a mount can only be attached to, or layered on, a mount of
     * the caller's own namespace, and this child has a new one. */
    long attach = sbx_sys4(SYS_openat, AT_FDCWD, st->a->strtab + st->a->hdr->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (attach < 0) return (int)attach;
    st->attach_fd = (int)attach;
  }
  tfs = sbx_sys2(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
  if (tfs < 0) return (int)tfs;
  r = sbx_sys5(SYS_fsconfig, tfs, FSCONFIG_SET_STRING, "mode", "0755", 0);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, tfs, FSCONFIG_CMD_CREATE, 0, 0, 0);
  tfd = r < 0 ? r : sbx_sys3(SYS_fsmount, tfs, FSMOUNT_CLOEXEC, 0);
  sys_close((int)tfs);
  if (tfd < 0) return (int)tfd;
  st->tmpfs_fd = (int)tfd;
  r = sbx_sys3(SYS_mkdirat, tfd, "upper", 0755);
  if (r >= 0) r = sbx_sys3(SYS_mkdirat, tfd, "work", 0700);
  if (r >= 0 && !st->based)
    r = sbx_sys5(SYS_move_mount, tfd, "", st->attach_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  if (r < 0) return (int)r;
  ufd = open_beneath((int)tfd, "upper", O_PATH | O_DIRECTORY);
  if (ufd < 0) return (int)ufd;
  st->rootfd = (int)ufd;
  return 0;
}

/* Copy of the host's namespace: the layers by path. "/proc/self/fd/N" is a magic link: it names
 * the directory itself, not what is now mounted over it, so the lower layer stays the rootfs. */
static long overlay_layers_by_path(struct child_state *st, long ofs) {
  char p[64];
  size_t pos = 0;
  s_append(p, sizeof p, &pos, "/proc/self/fd/", 14);
  s_append_int(p, sizeof p, &pos, st->attach_fd);
  long r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_STRING, "lowerdir", p, 0);
  pos = 0;
  s_append(p, sizeof p, &pos, "/proc/self/fd/", 14);
  s_append_int(p, sizeof p, &pos, st->tmpfs_fd);
  size_t base = pos;
  s_append(p, sizeof p, &pos, "/upper", 6);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_STRING, "upperdir", p, 0);
  pos = base;
  s_append(p, sizeof p, &pos, "/work", 5);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_STRING, "workdir", p, 0);
  return r;
}

/* Based: the layers by O_PATH fd (the upper tmpfs is detached, so it has no path): the rootfs
 * directory as the host's namespace shows it, upper/ and work/ in the tmpfs. */
static long overlay_layers_by_fd(struct child_state *st, long ofs) {
  long lower = sbx_sys4(SYS_openat, AT_FDCWD, st->a->strtab + st->a->hdr->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (lower < 0) return lower;
  long work = open_beneath(st->tmpfs_fd, "work", O_PATH | O_DIRECTORY);
  long r = work;
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_FD, "lowerdir+", 0, lower);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_FD, "upperdir", 0, st->rootfd); /* upper/ */
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_FD, "workdir", 0, work);
  if (work >= 0) sys_close((int)work);
  sys_close((int)lower);
  return r;
}

static int op_root_overlay(struct child_state *st, const struct sbx_op *op) {
  dir_cache_drop(st); /* it holds directories of the upper layer */
  long ofs = sbx_sys2(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (ofs < 0) return (int)ofs;
  long r = st->based ? overlay_layers_by_fd(st, ofs) : overlay_layers_by_path(st, ofs);
  if (r >= 0 && (op->flags & SBX_F_USERXATTR))
    r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_FLAG, "userxattr", 0, 0);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_CMD_CREATE, 0, 0, 0);
  long ofd = r < 0 ? r : sbx_sys3(SYS_fsmount, ofs, FSMOUNT_CLOEXEC, 0);
  sys_close((int)ofs);
  if (ofd < 0) return (int)ofd;
  sys_close(st->rootfd); /* the upper dir */
  st->rootfd = (int)ofd;
  if (st->based) return 0; /* ATTACH_ROOT attaches both, then closes the tmpfs fd */
  r = sbx_sys5(SYS_move_mount, ofd, "", st->attach_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  sys_close(st->tmpfs_fd);
  st->tmpfs_fd = -1;
  return (int)r;
}

/* Based, after UNSHARE: the tmpfs, then the overlay on top of it, on "/" of the new namespace (the
 * copy of the base's empty tmpfs). */
static int op_attach_root(struct child_state *st) {
  if (!st->based || st->tmpfs_fd < 0 || st->rootfd < 0) return -EINVAL;
  long attach = sbx_sys4(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (attach < 0) return (int)attach;
  st->attach_fd = (int)attach;
  long r = sbx_sys5(SYS_move_mount, st->tmpfs_fd, "", attach, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  if (r >= 0) r = sbx_sys5(SYS_move_mount, st->rootfd, "", attach, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  sys_close(st->tmpfs_fd);
  st->tmpfs_fd = -1;
  return (int)r;
}

static int s_eq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

/* MS_* flags of a new mount → MOUNT_ATTR_* (the low four bits are the same in both). */
static uint64_t attrs_of(uint64_t ms) {
  uint64_t a = ms & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  if (ms & MS_NOATIME) a |= MOUNT_ATTR_NOATIME;
  if (ms & MS_STRICTATIME) a |= MOUNT_ATTR_STRICTATIME;
  if (ms & MS_NODIRATIME) a |= MOUNT_ATTR_NODIRATIME;
  return a;
}

/* sysfs for a pooled network namespace: the parent's helper thread mounted it (detached) while
 * inside that namespace. Give it the op's attributes and attach it on the target. */
static int mount_pooled_sysfs(struct child_state *st, const struct sbx_op *op, int target) {
  struct mount_attr attr = {0};
  attr.attr_set = attrs_of(op->mflags);
  attr.attr_clr = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR__ATIME |
                  MOUNT_ATTR_NODIRATIME;
  long r = sbx_sys5(SYS_mount_setattr, st->fd[SBX_FD_SYSFS], "", AT_EMPTY_PATH, &attr, sizeof attr);
  if (r >= 0)
    r = sbx_sys5(SYS_move_mount, st->fd[SBX_FD_SYSFS], "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  sys_close(st->fd[SBX_FD_SYSFS]);
  st->fd[SBX_FD_SYSFS] = -1;
  st->sysfs_used = 1;
  return (int)r;
}

static int op_mount(struct child_state *st, const struct sbx_op *op) {
  int fd = ensure_path(st, str(st, op->s[1]), (op->flags & SBX_F_MKFILE) != 0);
  if (fd < 0) return fd;
  if (st->netns_ready && st->fd[SBX_FD_SYSFS] >= 0 && !st->sysfs_used && s_eq(str(st, op->s[2]), "sysfs")) {
    int r = mount_pooled_sysfs(st, op, fd);
    sys_close(fd);
    dir_cache_drop(st);
    return r;
  }
  /* Mount on the directory we just resolved safely: fchdir to it and mount on ".". */
  long r = sbx_sys1(SYS_fchdir, fd);
  if (r >= 0) r = sbx_sys5(SYS_mount, str(st, op->s[0]), ".", str(st, op->s[2]), op->mflags, str(st, op->s[3]));
  sys_close(fd);
  dir_cache_drop(st); /* a cached directory may now be covered by this mount */
  return (int)r;
}

/* Bind: the host tree CLONE_TREE cloned into slot n2 (recursively when n0): set attributes on every
 * mount in it (MOUNT_ATTR_* in mflags, e.g. read-only; propagation in n1), attach it on the target
 * in one move. */
static int op_bind(struct child_state *st, const struct sbx_op *op) {
  unsigned rec = op->n[0] ? AT_RECURSIVE : 0;
  int src = st->slots[op->n[2]];
  if (src < 0) return (op->flags & SBX_F_IGNORE_MISSING) ? 0 : -EBADF; /* CLONE_TREE found nothing */
  st->slots[op->n[2]] = -1;
  long r = 0;
  if (op->mflags || op->n[1]) {
    struct mount_attr attr = {0};
    attr.attr_set = op->mflags;
    /* An atime mode is a value, not a bit: setting one needs the whole atime field cleared. */
    if (op->mflags & MOUNT_ATTR__ATIME) attr.attr_clr = MOUNT_ATTR__ATIME;
    attr.propagation = op->n[1];
    r = sbx_sys5(SYS_mount_setattr, src, "", AT_EMPTY_PATH | rec, &attr, sizeof attr);
  }
  if (r >= 0) {
    int fd = ensure_path(st, str(st, op->s[1]), (op->flags & SBX_F_MKFILE) != 0);
    r = fd;
    if (fd >= 0) {
      r = sbx_sys5(SYS_move_mount, src, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
      sys_close(fd);
    }
  }
  sys_close(src);
  dir_cache_drop(st);
  return (int)r;
}

static int op_mknod(struct child_state *st, const struct sbx_op *op) {
  char base[256];
  int dfd = open_parent(st, str(st, op->s[0]), base, sizeof base);
  if (dfd < 0) return dfd;
  unsigned long dev = ((op->n[1] & 0xfffu) << 8) | (op->n[2] & 0xffu) | ((op->n[2] & ~0xffu) << 12);
  long r = sbx_sys4(SYS_mknodat, dfd, base, op->n[0], dev);
  if (r == -EPERM && (op->flags & SBX_F_BIND_FALLBACK)) {
    /* No CAP_MKNOD (user namespace): an empty file with the host's node bound over it. */
    r = sbx_sys4(SYS_openat, dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (r < 0) return (int)r;
    sys_close((int)r);
    long src = sbx_sys3(SYS_open_tree, AT_FDCWD, str(st, op->s[1]), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (src < 0) return (int)src;
    r = sbx_sys5(SYS_move_mount, src, "", dfd, base, MOVE_MOUNT_F_EMPTY_PATH);
    sys_close((int)src);
  }
  return (int)r;
}

static int op_symlink(struct child_state *st, const struct sbx_op *op) {
  char base[256];
  int dfd = open_parent(st, str(st, op->s[1]), base, sizeof base);
  if (dfd < 0) return dfd;
  long r = sbx_sys3(SYS_symlinkat, str(st, op->s[0]), dfd, base);
  if (r == -EEXIST) { /* the image has one (e.g. /etc/mtab): replace it in the upper layer */
    r = sbx_sys3(SYS_unlinkat, dfd, base, 0);
    if (r >= 0) r = sbx_sys3(SYS_symlinkat, str(st, op->s[0]), dfd, base);
  }
  return (int)r;
}

static int op_write_file(struct child_state *st, const struct sbx_op *op) {
  char base[256];
  int dfd = open_parent(st, str(st, op->s[0]), base, sizeof base);
  if (dfd < 0) return dfd;
  /* Whatever the image has there (a file or a symlink) is replaced, in the upper layer only. */
  long r = 0;
  long fd = sbx_sys4(SYS_openat, dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, op->n[0]);
  if (fd == -EEXIST) {
    r = sbx_sys3(SYS_unlinkat, dfd, base, 0);
    if (r < 0) return (int)r;
    fd = sbx_sys4(SYS_openat, dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, op->n[0]);
  }
  if (fd < 0) return (int)fd;
  const char *p = str(st, op->s[1]);
  size_t left = op->n[1];
  while (left > 0) {
    r = sbx_sys3(SYS_write, fd, p, left);
    if (r == -EINTR) continue;
    if (r < 0) break;
    p += r;
    left -= (size_t)r;
  }
  sys_close((int)fd);
  return left ? (int)(r < 0 ? r : -EIO) : 0;
}

static int op_mkdir(struct child_state *st, const struct sbx_op *op) {
  const char *path = str(st, op->s[0]);
  const int as_file = (op->flags & SBX_F_MKFILE) != 0;
  /* Fast path: the parent directory exists (the common case, and always in the fresh upper
   * layer): one mkdirat/openat on its cached fd. Anything else, or an existing entry that must be
   * checked (a symlink is ELOOP), takes the component-by-component walk. */
  char base[256];
  int pfd = open_parent(st, path, base, sizeof base);
  if (pfd >= 0) {
    long r = as_file ? sbx_sys4(SYS_openat, pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)
                     : sbx_sys3(SYS_mkdirat, pfd, base, 0755);
    if (r >= 0) {
      if (as_file) sys_close((int)r);
      return 0;
    }
    if (r != -EEXIST) return (int)r;
  }
  int fd = ensure_path(st, path, as_file);
  if (fd < 0) return fd;
  sys_close(fd);
  return 0;
}

static int op_loopback_up(void) {
  long s = sbx_sys3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return (int)s;
  struct ifreq ifr = {0};
  ifr.ifr_name[0] = 'l';
  ifr.ifr_name[1] = 'o';
  ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
  long r = sbx_sys3(SYS_ioctl, s, SIOCSIFFLAGS, &ifr);
  sys_close((int)s);
  return (int)r;
}

/* The overlay becomes the process's root.
 *
 * Based: chroot. The mount namespace holds the base's empty read-only tmpfs, and on it the upper
 * tmpfs, the overlay and what is mounted in the overlay: no mount of the host is in it, so there
 * is nothing to detach and nothing outside the new root to escape to. pivot_root would cost more
 * (the kernel checks the root and cwd of every task in the system, chroot_fs_refs) for nothing.
 *
 * A copy of the host's namespace: pivot_root, then detach the old root (the host's mounts). */
static int op_enter_root(struct child_state *st) {
  dir_cache_drop(st);
  long r = sbx_sys1(SYS_fchdir, st->rootfd);
  if (st->based) {
    if (r >= 0) r = sbx_sys1(SYS_chroot, ".");
  } else {
    if (r >= 0) r = sbx_sys2(SYS_pivot_root, ".", ".");
    /* The old root is now stacked on top of the new one at "/": detach it. */
    if (r >= 0) r = sbx_sys2(SYS_umount2, ".", MNT_DETACH);
  }
  if (r >= 0) r = sbx_sys1(SYS_chdir, "/");
  sys_close(st->rootfd);
  st->rootfd = -1;
  /* A host directory (or the base's root): never carry it into the container. Nor a slot. */
  sys_close(st->attach_fd);
  st->attach_fd = -1;
  for (uint32_t i = 0; i < SBX_MAX_SLOTS; i++) close_slot(st, i);
  for (int i = SBX_FD_NETNS; i < SBX_FD_COUNT_; i++) /* any the plan did not use */
    if (st->fd[i] >= 0) sys_close(st->fd[i]);
  for (int i = SBX_FD_NETNS; i < SBX_FD_COUNT_; i++) st->fd[i] = -1;
  return (int)r;
}

static int op_setuser(struct child_state *st, const struct sbx_op *op) {
  /* Raw calls: these change only this task's credentials (libc's wrappers would signal every
   * thread of the Node process to change theirs). */
  long r = sbx_sys2(SYS_setgroups, st->a->n_groups, st->a->groups);
  if (r >= 0) r = sbx_sys3(SYS_setresgid, op->n[1], op->n[1], op->n[1]);
  if (r >= 0) r = sbx_sys3(SYS_setresuid, op->n[0], op->n[0], op->n[0]);
  return (int)r;
}

/* Is `path` something execve would accept? A regular file the caller may execute. */
static int check_exec(const char *path) {
  struct statx sx;
  long r = sbx_sys5(SYS_statx, AT_FDCWD, path, 0, STATX_TYPE | STATX_MODE, &sx);
  if (r < 0) return (int)r;
  if ((sx.stx_mode & S_IFMT) != S_IFREG) return -EACCES;
  return (int)sbx_sys4(SYS_faccessat2, AT_FDCWD, path, X_OK, AT_EACCESS);
}

/* Like execvpe: a name without '/' is searched in PATH (the container's), inside the container. */
static int op_resolve_exec(struct child_state *st, const struct sbx_op *op) {
  const char *name = str(st, op->s[0]);
  size_t nlen = s_len(name), pos = 0;
  int slash = 0;
  for (size_t i = 0; i < nlen; i++) slash |= name[i] == '/';
  if (slash) {
    int r = s_append(st->exec_path, sizeof st->exec_path, &pos, name, nlen);
    return r < 0 ? r : check_exec(st->exec_path);
  }
  const char *path = str(st, op->s[1]);
  int err = -ENOENT;
  while (path && *path) {
    const char *end = path;
    while (*end && *end != ':') end++;
    pos = 0;
    if (end == path) /* empty entry: the current directory */
      s_append(st->exec_path, sizeof st->exec_path, &pos, ".", 1);
    else if (s_append(st->exec_path, sizeof st->exec_path, &pos, path, (size_t)(end - path)) < 0)
      goto next;
    if (s_append(st->exec_path, sizeof st->exec_path, &pos, "/", 1) < 0 ||
        s_append(st->exec_path, sizeof st->exec_path, &pos, name, nlen) < 0)
      goto next;
    {
      int r = check_exec(st->exec_path);
      if (r == 0) return 0;
      if (r == -EACCES) err = r; /* found but not executable: report that, as execvp does */
    }
  next:
    path = *end ? end + 1 : end;
  }
  st->exec_path[0] = 0;
  return err;
}

/* The raw syscall, not the vDSO: nothing of libc's runs here. Only used with SBX_H_TRACE. */
static uint64_t now_ns(void) {
  struct {
    long sec, nsec;
  } ts = {0, 0};
  sbx_sys2(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, &ts);
  return (uint64_t)ts.sec * 1000000000u + (uint64_t)ts.nsec;
}

static int send_msg(int fd, uint32_t type, int stage, int op, int err) {
  struct sbx_msg m = {type, stage, op, err};
  long r;
  do r = sbx_sys3(SYS_write, fd, &m, sizeof m);
  while (r == -EINTR);
  return (int)r;
}

static int op_wait_start(struct child_state *st) {
  const struct sbx_child_args *a = st->a;
  /* Credentials may have changed (SETUSER), which clears the parent-death signal: arm it again.
   * If the parent died before this point, the read below sees EOF: nobody will ever start us. */
  if (!(a->hdr->flags & SBX_H_DETACHED)) sbx_sys2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  struct sbx_msg m;
  long r;
  do r = sbx_sys3(SYS_read, a->sync_fd, &m, sizeof m);
  while (r == -EINTR);
  if (r == 0) sbx_sys1(SYS_exit_group, 0);
  if (r < 0) return (int)r;
  if (r != sizeof m || m.type != SBX_MSG_START) return -EPROTO;
  return 0;
}

static int op_exec(struct child_state *st, const struct sbx_op *op) {
  const struct sbx_child_args *a = st->a;
  sbx_sys1(SYS_umask, op->n[2]);
  /* Every fd above 2 closes at execve: the sync socket (that EOF tells the parent we exec'd),
   * and anything the Node process had open without O_CLOEXEC. */
  sbx_sys3(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  uint64_t none = 0;
  sbx_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, sizeof none);
  const char *path = st->exec_path[0] ? st->exec_path : a->argv[0];
  return (int)sbx_sys3(SYS_execve, path, a->argv, a->envp);
}

static int run_op(struct child_state *st, const struct sbx_op *op) {
  switch (op->kind) {
    case SBX_OP_UNSHARE: return op_unshare(st, op);
    case SBX_OP_CLONE_TREE: return op_clone_tree(st, op);
    case SBX_OP_MAKE_PRIVATE: return op_make_private(st, op);
    case SBX_OP_ROOT_UPPER: return op_root_upper(st);
    case SBX_OP_ROOT_OVERLAY: return op_root_overlay(st, op);
    case SBX_OP_MOUNT: return op_mount(st, op);
    case SBX_OP_BIND: return op_bind(st, op);
    case SBX_OP_MKNOD: return op_mknod(st, op);
    case SBX_OP_SYMLINK: return op_symlink(st, op);
    case SBX_OP_WRITE_FILE: return op_write_file(st, op);
    case SBX_OP_MKDIR: return op_mkdir(st, op);
    case SBX_OP_LOOPBACK_UP: return st->netns_ready ? 0 : op_loopback_up();
    case SBX_OP_SETHOSTNAME: return (int)sbx_sys2(SYS_sethostname, str(st, op->s[0]), op->n[0]);
    case SBX_OP_ENTER_ROOT: return op_enter_root(st);
    case SBX_OP_ATTACH_ROOT: return op_attach_root(st);
    case SBX_OP_SETUSER: return op_setuser(st, op);
    case SBX_OP_CHDIR: return (int)sbx_sys1(SYS_chdir, str(st, op->s[0]));
    case SBX_OP_RESOLVE_EXEC: return op_resolve_exec(st, op);
    case SBX_OP_READY: return send_msg(st->a->sync_fd, SBX_MSG_READY, 0, 0, 0) < 0 ? -EPIPE : 0;
    case SBX_OP_WAIT_START: return op_wait_start(st);
    case SBX_OP_EXEC: return op_exec(st, op);
    default: return -ENOSYS; /* the parent validated kinds: unreachable */
  }
}

/* An fd table of the child's own, holding 0..2 and the sync socket and nothing else of Node's.
 *
 * With fd_limit (CLONE_FILES), the child runs in the Node process's table until the first call
 * below, which copies only the fds under fd_limit into a table of its own. Without, the table is
 * a copy of Node's, every fd of it a reference to its file.
 *
 * Either way, whatever is left beyond 0..2 and the sync socket goes now, not at execve: the
 * parent closes some of its fds soon (a pipe end whose EOF another container waits for), and a
 * copy held here would keep the file open, or be the last reference and make this child pay the
 * teardown behind it. */
static int own_fd_table(const struct sbx_child_args *a) {
  if (a->fd_limit > 0) {
    long r = sbx_sys3(SYS_close_range, (unsigned)a->fd_limit, ~0U, CLOSE_RANGE_UNSHARE);
    if (r < 0) return (int)r; /* still in Node's table: touch nothing, report, exit */
  }
  const unsigned s = (unsigned)a->sync_fd;
  if (s > 3) sbx_sys3(SYS_close_range, 3, s - 1, 0);
  sbx_sys3(SYS_close_range, s + 1, ~0U, 0);
  return 0;
}

/* MSG_FDS, the parent's first message: the fds the plan needs, received into the child's table. */
static int recv_fds(struct child_state *st) {
  struct sbx_fds_msg m;
  union {
    char buf[CMSG_SPACE(sizeof(int) * SBX_FD_COUNT_)];
    struct cmsghdr align;
  } u;
  struct iovec iov = {&m, sizeof m};
  struct msghdr mh;
  char *p = (char *)&mh;
  for (size_t i = 0; i < sizeof mh; i++) p[i] = 0;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  long r;
  do r = sbx_sys3(SYS_recvmsg, st->a->sync_fd, &mh, MSG_CMSG_CLOEXEC);
  while (r == -EINTR);
  if (r < 0) return (int)r;
  if (r != sizeof m || m.type != SBX_MSG_FDS || (mh.msg_flags & MSG_CTRUNC)) return -EPROTO;
  int n = 0;
  for (int i = 0; i < SBX_FD_COUNT_; i++) n += (m.mask >> i) & 1;
  const int *fds = (const int *)0;
  if (n > 0) {
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(n * sizeof(int)))
      return -EPROTO;
    fds = (const int *)CMSG_DATA(c);
  }
  for (int i = 0, k = 0; i < SBX_FD_COUNT_; i++) st->fd[i] = (m.mask >> i) & 1 ? fds[k++] : -1;
  return 0;
}

static __attribute__((noreturn)) void fail(const struct sbx_child_args *a, int stage, int op, int err) {
  send_msg(a->sync_fd, SBX_MSG_ERROR, stage, op, err);
  for (;;) sbx_sys1(SYS_exit_group, 255);
}

/* Makes the fds the parent sent into 0, 1 and 2; one it did not send keeps the inherited fd. */
static int setup_stdio(struct child_state *st) {
  int src[3];
  for (int i = 0; i < 3; i++) {
    src[i] = st->fd[SBX_FD_STDIN + i];
    if (src[i] >= 0 && src[i] <= 2 && src[i] != i) {
      long r = sbx_sys3(SYS_fcntl, src[i], F_DUPFD_CLOEXEC, 3);
      if (r < 0) return (int)r;
      src[i] = (int)r;
    }
  }
  for (int i = 0; i < 3; i++) {
    long r;
    if (src[i] < 0) continue;
    if (src[i] == i)
      r = sbx_sys3(SYS_fcntl, i, F_SETFD, 0);
    else
      r = sbx_sys3(SYS_dup3, src[i], i, 0);
    if (r < 0) return (int)r;
  }
  for (int i = 0; i < 3; i++) /* the received copies: 0..2 hold them now */
    if (st->fd[SBX_FD_STDIN + i] > 2) sys_close(st->fd[SBX_FD_STDIN + i]);
  return 0;
}

int sbx_child_main(void *arg) {
  const struct sbx_child_args *a = (const struct sbx_child_args *)arg;
  /* First of all (CLONE_FILES: until this returns, this child shares the Node process's fds). */
  int r = own_fd_table(a);
  if (r < 0) fail(a, SBX_STAGE_PREPARE, -1, -r);
  struct child_state st;
  st.a = a;
  st.based = (a->hdr->flags & SBX_H_BASE) != 0;
  st.attach_fd = -1;
  st.tmpfs_fd = -1;
  st.rootfd = -1;
  st.dir_fd = -1;
  st.dir_path[0] = 0;
  st.exec_path[0] = 0;
  st.netns_ready = 0;
  st.sysfs_used = 0;
  for (uint32_t i = 0; i < SBX_MAX_SLOTS; i++) st.slots[i] = -1;
  for (int i = 0; i < SBX_FD_COUNT_; i++) st.fd[i] = -1;

  /* Prelude. Signals are blocked (the parent blocked them around clone3); make every handler the
   * default so that nothing of Node's can run here even once they are unblocked at execve. */
  struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
  } dfl = {(void *)0, 0, (void *)0, 0};
  for (int sig = 1; sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) sbx_sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
  if (!(a->hdr->flags & SBX_H_DETACHED)) sbx_sys2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  sbx_sys1(SYS_umask, 0); /* modes in the plan are exact */
  r = recv_fds(&st);
  if (r >= 0) r = setup_stdio(&st);
  if (r < 0) fail(a, SBX_STAGE_PREPARE, -1, -r);

  const int trace = (a->hdr->flags & SBX_H_TRACE) != 0;
  struct sbx_trace tr;
  if (trace) {
    tr.type = SBX_MSG_TRACE;
    tr.count = 0;
    tr.t0 = now_ns();
  }
  for (uint32_t i = 0; i < a->hdr->n_ops; i++) {
    const struct sbx_op *op = &a->ops[i];
    if (trace && op->kind == SBX_OP_READY) /* report the setup before the parent hears READY */
      sbx_sys3(SYS_write, a->sync_fd, &tr, sizeof tr);
    r = run_op(&st, op);
    if (r < 0) fail(a, op->stage, (int)i, -r);
    if (trace && tr.count < SBX_TRACE_MAX) tr.end[tr.count++] = now_ns();
  }
  /* A plan always ends in EXEC, which only returns on failure. */
  fail(a, SBX_STAGE_EXEC, (int)a->hdr->n_ops, EPROTO);
}
