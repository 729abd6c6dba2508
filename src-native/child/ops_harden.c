/*
 * The file-system side of isolation: masked and read-only paths, resource limits, the OOM score,
 * sysctls, device ownership and a read-only root. Every path inside the root goes through
 * open_beneath (openat2 BENEATH | NO_SYMLINKS), and every mount lands on the fd it resolved: a
 * symlink in the rootfs, or one swapped in during setup, cannot move a mount onto another path.
 *
 * Not here: oom_score_adj. The child shares the Node process's memory until execve, and the
 * kernel gives a new score to every process sharing the writer's mm: Node's would change too. The
 * parent writes it once the child has exec'd (src-ts/container/container.ts).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/stat.h>

#include "state.h"
#include "util.h"

#define MOVE_FLAGS (MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
#ifndef SYS_open_tree_attr
#define SYS_open_tree_attr 467 /* Linux 6.15; one number on every architecture */
#endif
#define CLONE_FLAGS (OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH)

static int type_of(int fd, unsigned *mode, unsigned *rdev_major, unsigned *rdev_minor) {
  struct statx sx;
  long r = sbx_sys5(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_TYPE, &sx);
  if (r < 0) return (int)r;
  *mode = sx.stx_mode & S_IFMT;
  if (rdev_major) *rdev_major = sx.stx_rdev_major;
  if (rdev_minor) *rdev_minor = sx.stx_rdev_minor;
  return 0;
}

/* The empty read-only tmpfs that masks directories (read-only superblock too), detached. */
static long make_mask_tmpfs(void) {
  long fs = sbx_sys2(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0) return fs;
  long r = sbx_sys5(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0555", 0);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "ro", 0, 0);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, 0, 0, 0);
  long m = r < 0 ? r : sbx_sys3(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  sys_close((int)fs);
  return m;
}

/* n0: the slot. MASK_PATH's tmpfs, made with the detached root (so a pooled root brings it). */
int op_mask_tmpfs(struct child_state *st, const struct sbx_op *op) {
  long m = make_mask_tmpfs();
  if (m < 0) return (int)m;
  st->slots[op->n[0]] = (int)m;
  return 0;
}

/* The tmpfs (MASK_TMPFS's in `slot`, else made now) is attached on the first masked directory;
 * the others get clones of that mount, which costs one open_tree instead of a new superblock each. */
static int mask_dir(struct child_state *st, int target, uint32_t slot) {
  if (st->mask_dir_fd >= 0) {
    long t = sbx_sys3(SYS_open_tree, st->mask_dir_fd, "", CLONE_FLAGS);
    if (t < 0) return (int)t;
    long r = sbx_sys5(SYS_move_mount, t, "", target, "", MOVE_FLAGS);
    sys_close((int)t);
    return (int)r;
  }
  long m;
  if (slot != SBX_NO_SLOT && st->slots[slot] >= 0) {
    m = st->slots[slot];
    st->slots[slot] = -1;
  } else {
    m = make_mask_tmpfs();
    if (m < 0) return (int)m;
  }
  long r = sbx_sys5(SYS_move_mount, m, "", target, "", MOVE_FLAGS);
  if (r < 0) {
    sys_close((int)m);
    return (int)r;
  }
  st->mask_dir_fd = (int)m; /* now attached: the source of the next clones */
  return 0;
}

/* s0 path, s1 the container's /dev/null (made by the plan's mknod), n0 MASK_TMPFS's slot or
 * SBX_NO_SLOT. A file gets that node bound
 * over it (reads are empty, writes vanish), a directory the empty read-only tmpfs. A missing path
 * is skipped (like runc); a symlink fails with ELOOP: masking is asked for to hide something,
 * and what the link points at would stay visible. */
int op_mask_path(struct child_state *st, const struct sbx_op *op) {
  int fd = open_beneath(st->rootfd, str(st, op->s[0]), O_PATH);
  if (fd == -ENOENT) return 0;
  if (fd < 0) return fd;
  unsigned mode;
  int r = type_of(fd, &mode, 0, 0);
  if (r >= 0 && mode == S_IFDIR) {
    r = mask_dir(st, fd, op->n[0]);
  } else if (r >= 0) {
    if (st->null_fd < 0) {
      /* Checked once: an image's own dev/null (no /dev mount) could be a file with content. */
      int n = open_beneath(st->rootfd, str(st, op->s[1]), O_PATH);
      unsigned nmode = 0, maj = 0, min = 0;
      r = n < 0 ? n : type_of(n, &nmode, &maj, &min);
      if (r >= 0 && (nmode != S_IFCHR || maj != 1 || min != 3)) r = -ENODEV;
      if (r < 0) {
        if (n >= 0) sys_close(n);
        sys_close(fd);
        return r == -ENOENT ? -ENODEV : r;
      }
      st->null_fd = n;
    }
    long t = sbx_sys3(SYS_open_tree, st->null_fd, "", CLONE_FLAGS);
    r = (int)t;
    if (t >= 0) {
      r = (int)sbx_sys5(SYS_move_mount, t, "", fd, "", MOVE_FLAGS);
      sys_close((int)t);
    }
  }
  sys_close(fd);
  dir_cache_drop(st);
  return r;
}

/* s0 path. The path bound onto itself, read-only, with everything mounted below it: a clone of
 * the resolved fd's tree, made read-only while detached (in the same call with open_tree_attr;
 * else mount_setattr after open_tree), moved back on top. Missing: skipped; a symlink: ELOOP (as
 * for masks). */
int op_readonly_path(struct child_state *st, const struct sbx_op *op) {
  int fd = open_beneath(st->rootfd, str(st, op->s[0]), O_PATH);
  if (fd == -ENOENT) return 0;
  if (fd < 0) return fd;
  struct mount_attr attr = {0};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  long t = sbx_sys5(SYS_open_tree_attr, fd, "", CLONE_FLAGS | AT_RECURSIVE, &attr, sizeof attr);
  long r = t;
  /* Any failure: the two older calls (ENOSYS before 6.15; a seccomp filter of the host's that
   * does not know the call may say EPERM), whose error is then the one reported. */
  if (t < 0) {
    t = r = sbx_sys3(SYS_open_tree, fd, "", CLONE_FLAGS | AT_RECURSIVE);
    if (t >= 0) r = sbx_sys5(SYS_mount_setattr, t, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr);
  }
  if (t >= 0) {
    if (r >= 0) r = sbx_sys5(SYS_move_mount, t, "", fd, "", MOVE_FLAGS);
    sys_close((int)t);
  }
  sys_close(fd);
  dir_cache_drop(st);
  return (int)r;
}

/* mflags resource; n0/n1 soft (low, high 32 bits), n2/n3 hard. prlimit64 on this task: the limits
 * are inherited by what it execs. */
int op_rlimit(struct child_state *st, const struct sbx_op *op) {
  (void)st;
  uint64_t lim[2];
  lim[0] = (uint64_t)op->n[0] | ((uint64_t)op->n[1] << 32);
  lim[1] = (uint64_t)op->n[2] | ((uint64_t)op->n[3] << 32);
  return (int)sbx_sys4(SYS_prlimit64, 0, op->mflags, lim, 0);
}

/* s0 path under proc/sys, s1 value. Before /proc/sys is made read-only. */
int op_sysctl(struct child_state *st, const struct sbx_op *op) {
  int fd = open_beneath(st->rootfd, str(st, op->s[0]), O_WRONLY);
  if (fd < 0) return fd;
  const char *v = str(st, op->s[1]);
  long r = sbx_sys3(SYS_write, fd, v, s_len(v));
  sys_close(fd);
  return r < 0 ? (int)r : 0;
}

/* s0 path, n0 uid, n1 gid: on the parent directory's fd and the name, never through a symlink. */
int op_chown(struct child_state *st, const struct sbx_op *op) {
  char base[256];
  int dfd = open_parent(st, str(st, op->s[0]), base, sizeof base);
  if (dfd < 0) return dfd;
  return (int)sbx_sys5(SYS_fchownat, dfd, base, op->n[0], op->n[1], AT_SYMLINK_NOFOLLOW);
}

/* The overlay mount itself read-only, not recursively: /dev, /proc, /dev/shm keep their flags. */
int op_root_readonly(struct child_state *st, const struct sbx_op *op) {
  (void)op;
  struct mount_attr attr = {0};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  return (int)sbx_sys5(SYS_mount_setattr, st->rootfd, "", AT_EMPTY_PATH, &attr, sizeof attr);
}
