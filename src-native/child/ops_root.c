/*
 * The root: an overlay with the image's layers (or the user's rootfs) below and a fresh tmpfs as
 * its upper layer, so mount points, device nodes and /etc files never touch the rootfs on disk.
 *
 * ROOT_UPPER* makes the tmpfs (upper/ and work/ in it) and points the root fd at upper/. The ops
 * that follow until ROOT_OVERLAY* (mount points, /etc files) write straight into the empty upper
 * layer: plain tmpfs calls, and whatever the image has at those paths (a symlink included) is
 * simply covered. ROOT_OVERLAY* then makes the overlay and points the root fd at it.
 *
 * Two ways, chosen by the plan (src-ts/plan/plan.ts):
 *  - base: ROOT_UPPER_DETACHED and ROOT_OVERLAY_DETACHED run in the host's mount namespace, before
 *    the container's is made, and leave both mounts detached (fsmount): the overlay takes its lower
 *    layers by O_PATH fd from the host's view. SETNS into the base namespace and UNSHARE follow;
 *    ATTACH_ROOT puts the tmpfs and then the overlay on "/" of that copy of the base (attached,
 *    neither is ever dissolved: closing the last fd of a detached mount waits for an RCU grace
 *    period), and CHROOT enters it.
 *  - host: after UNSHARE (a copy of the host's namespace) and MAKE_PRIVATE, ROOT_UPPER and
 *    ROOT_OVERLAY attach at once, on the rootfs directory itself, and PIVOT_ROOT enters it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/mount.h>

#include "state.h"
#include "util.h"

#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif

/* mflags: MS_REC | MS_PRIVATE. The copied host mounts stop propagating to and from the host. */
int op_make_private(struct child_state *st, const struct sbx_op *op) {
  (void)st;
  return (int)sbx_sys5(SYS_mount, 0, "/", 0, op->mflags, 0);
}

/* The tmpfs with upper/ and work/, detached; the root fd points at upper/. size_kib: what the
 * container may write into its root (0: no size=, the kernel's default of half the RAM). */
static int make_upper(struct child_state *st, uint32_t size_kib) {
  long tfs = sbx_sys2(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
  if (tfs < 0) return (int)tfs;
  long r = sbx_sys5(SYS_fsconfig, tfs, FSCONFIG_SET_STRING, "mode", "0755", 0);
  if (r >= 0 && size_kib) {
    char size[16];
    size_t pos = 0;
    s_append_int(size, sizeof size, &pos, size_kib);
    s_append(size, sizeof size, &pos, "k", 1);
    r = sbx_sys5(SYS_fsconfig, tfs, FSCONFIG_SET_STRING, "size", size, 0);
  }
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, tfs, FSCONFIG_CMD_CREATE, 0, 0, 0);
  long tfd = r < 0 ? r : sbx_sys3(SYS_fsmount, tfs, FSMOUNT_CLOEXEC, 0);
  sys_close((int)tfs);
  if (tfd < 0) return (int)tfd;
  st->tmpfs_fd = (int)tfd;
  r = sbx_sys3(SYS_mkdirat, tfd, "upper", 0755);
  if (r >= 0) r = sbx_sys3(SYS_mkdirat, tfd, "work", 0700);
  if (r < 0) return (int)r;
  int ufd = open_beneath((int)tfd, "upper", O_PATH | O_DIRECTORY);
  if (ufd < 0) return ufd;
  st->rootfd = ufd;
  return 0;
}

static long attach(int mnt, int target) {
  return sbx_sys5(SYS_move_mount, mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

/* s0: the directory to build the root on (the top lower layer), n0: size in KiB. Opened here, not in the parent: a
 * mount can only be attached to, or layered on, a mount of the caller's own namespace. */
int op_root_upper(struct child_state *st, const struct sbx_op *op) {
  long at = sbx_sys4(SYS_openat, AT_FDCWD, str(st, op->s[0]), O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (at < 0) return (int)at;
  st->attach_fd = (int)at;
  int r = make_upper(st, op->n[0]);
  return r < 0 ? r : (int)attach(st->tmpfs_fd, st->attach_fd);
}

/* n0: size in KiB. */
int op_root_upper_detached(struct child_state *st, const struct sbx_op *op) {
  return make_upper(st, op->n[0]);
}

/* s0: a host directory holding upper/ and work/ (made by the parent, under the image store), for a
 * container whose writes outlive it (options.keep, commit). s1 (host mode only): the directory to
 * attach it on at once, as ROOT_UPPER does. A detached clone of s0 (open_tree, cut from the host's
 * peer groups like CLONE_TREE's) stands where the tmpfs would: the overlay ops and ATTACH_ROOT take
 * it as they take the tmpfs, and ".." at its root leads to the mount below it, never into the rest
 * of the store. */
int op_root_upper_dir(struct child_state *st, const struct sbx_op *op) {
  long fd = sbx_sys3(SYS_open_tree, AT_FDCWD, str(st, op->s[0]), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) return (int)fd;
  st->tmpfs_fd = (int)fd;
  struct mount_attr attr = {0};
  attr.propagation = MS_PRIVATE;
  long r = sbx_sys5(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr);
  if (r < 0) return (int)r;
  int ufd = open_beneath((int)fd, "upper", O_PATH | O_DIRECTORY);
  if (ufd < 0) return ufd;
  st->rootfd = ufd;
  if (op->s[1] == SBX_NO_STRING) return 0;
  long at = sbx_sys4(SYS_openat, AT_FDCWD, str(st, op->s[1]), O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (at < 0) return (int)at;
  st->attach_fd = (int)at;
  return (int)attach(st->tmpfs_fd, st->attach_fd);
}

/* Makes the overlay from an fsopen'ed context whose layers are set; the root fd points at it. */
static int finish_overlay(struct child_state *st, const struct sbx_op *op, long ofs, long r) {
  if (r >= 0 && (op->flags & SBX_F_USERXATTR)) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_FLAG, "userxattr", 0, 0);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_CMD_CREATE, 0, 0, 0);
  long ofd = r < 0 ? r : sbx_sys3(SYS_fsmount, ofs, FSMOUNT_CLOEXEC, 0);
  sys_close((int)ofs);
  if (ofd < 0) return (int)ofd;
  close_fd(&st->rootfd); /* the upper dir */
  st->rootfd = (int)ofd;
  return 0;
}

/* s0: the lower layers (n0 of them, top first; the first is ROOT_UPPER's directory), by path.
 * "/proc/self/fd/N" is a magic link: it names the directory itself, not what is now mounted over
 * it, so the top layer stays the rootfs. Attached on it at once. */
int op_root_overlay(struct child_state *st, const struct sbx_op *op) {
  dir_cache_drop(st); /* it holds directories of the upper layer */
  char p[SBX_PATH_MAX];
  size_t pos = s_fd_path(p, sizeof p, st->attach_fd);
  const char *layer = str(st, op->s[0]);
  for (uint32_t i = 0; i < op->n[0]; i++) {
    size_t n = s_len(layer);
    if (i > 0 && (s_append(p, sizeof p, &pos, ":", 1) < 0 || s_append(p, sizeof p, &pos, layer, n) < 0)) return -ENAMETOOLONG;
    layer += n + 1;
  }
  long ofs = sbx_sys2(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (ofs < 0) return (int)ofs;
  long r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_STRING, "lowerdir", p, 0);
  char q[64];
  size_t base = s_fd_path(q, sizeof q, st->tmpfs_fd), qpos = base;
  s_append(q, sizeof q, &qpos, "/upper", 6);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_STRING, "upperdir", q, 0);
  qpos = base;
  s_append(q, sizeof q, &qpos, "/work", 5);
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_STRING, "workdir", q, 0);
  int e = finish_overlay(st, op, ofs, r);
  if (e < 0) return e;
  long a = attach(st->rootfd, st->attach_fd);
  close_fd(&st->tmpfs_fd);
  return (int)a;
}

/* s0: the lower layers (n0, top first), each opened as the host's namespace shows it and given by
 * O_PATH fd, as are upper/ and work/ of the detached tmpfs (which has no path). Left detached. */
int op_root_overlay_detached(struct child_state *st, const struct sbx_op *op) {
  dir_cache_drop(st);
  long ofs = sbx_sys2(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (ofs < 0) return (int)ofs;
  long r = 0;
  const char *layer = str(st, op->s[0]);
  for (uint32_t i = 0; i < op->n[0] && r >= 0; i++) {
    long lower = sbx_sys4(SYS_openat, AT_FDCWD, layer, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    r = lower < 0 ? lower : sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_FD, "lowerdir+", 0, lower);
    if (lower >= 0) sys_close((int)lower);
    layer += s_len(layer) + 1;
  }
  long work = r < 0 ? r : open_beneath(st->tmpfs_fd, "work", O_PATH | O_DIRECTORY);
  if (work < 0) r = work;
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_FD, "upperdir", 0, st->rootfd); /* upper/ */
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, ofs, FSCONFIG_SET_FD, "workdir", 0, work);
  if (work >= 0) sys_close((int)work);
  return finish_overlay(st, op, ofs, r);
}

/* After UNSHARE made a copy of the base namespace: the tmpfs, then the overlay on top of it, on
 * "/" of that copy (the base's empty read-only tmpfs). */
int op_attach_root(struct child_state *st, const struct sbx_op *op) {
  (void)op;
  if (st->tmpfs_fd < 0 || st->rootfd < 0) return -EINVAL;
  long at = sbx_sys4(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (at < 0) return (int)at;
  st->attach_fd = (int)at;
  long r = attach(st->tmpfs_fd, at);
  if (r >= 0) r = attach(st->rootfd, at);
  close_fd(&st->tmpfs_fd);
  return (int)r;
}

/* What the host gave for the setup is never carried into the container: a host directory (or the
 * base's root), a slot, a resource the plan did not use. */
static void leave_setup(struct child_state *st) {
  close_fd(&st->rootfd);
  close_fd(&st->attach_fd);
  close_fd(&st->mask_dir_fd);
  close_fd(&st->null_fd);
  for (uint32_t i = 0; i < SBX_MAX_SLOTS; i++) close_fd(&st->slots[i]);
  for (int i = SBX_FD_STDERR + 1; i < SBX_FD_COUNT_; i++) close_fd(&st->fd[i]);
}

/* A copy of the host's namespace: pivot_root, then detach the old root (the host's mounts). */
int op_pivot_root(struct child_state *st, const struct sbx_op *op) {
  (void)op;
  dir_cache_drop(st);
  long r = sbx_sys1(SYS_fchdir, st->rootfd);
  if (r >= 0) r = sbx_sys2(SYS_pivot_root, ".", ".");
  /* The old root is now stacked on top of the new one at "/": detach it. */
  if (r >= 0) r = sbx_sys2(SYS_umount2, ".", MNT_DETACH);
  if (r >= 0) r = sbx_sys1(SYS_chdir, "/");
  leave_setup(st);
  return (int)r;
}

/* A copy of the base namespace holds the base's empty read-only tmpfs, and on it the upper tmpfs,
 * the overlay and what is mounted in the overlay: no mount of the host is in it, so there is
 * nothing to detach and nothing outside the new root to escape to. pivot_root would cost more (the
 * kernel checks the root and cwd of every task in the system, chroot_fs_refs) for nothing. */
int op_chroot(struct child_state *st, const struct sbx_op *op) {
  (void)op;
  dir_cache_drop(st);
  long r = sbx_sys1(SYS_fchdir, st->rootfd);
  if (r >= 0) r = sbx_sys1(SYS_chroot, ".");
  if (r >= 0) r = sbx_sys1(SYS_chdir, "/");
  leave_setup(st);
  return (int)r;
}
