/*
 * Mounts, binds and device nodes inside the new root. Targets are resolved with ensure_path
 * (openat2 beneath the root, no symlinks) and every mount lands on the resolved fd.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/mount.h>

#include "state.h"
#include "util.h"

/* s0: host path, n0: recursive, n1: slot; F_IGNORE_MISSING. A detached copy of a host tree (a bind
 * source), taken while the child still shares the host's mount namespace, and cut from the host's
 * peer groups at once: nothing mounted in it later can propagate back to the host. ENOENT with
 * F_IGNORE_MISSING leaves the slot empty. */
int op_clone_tree(struct child_state *st, const struct sbx_op *op) {
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

/* F_PREMOUNTED and the parent sent the file system in fd n0: give it the MOUNT_ATTR_* of n1 (the
 * plan's mapping of the entry's options) and attach it on the target. */
static int attach_premounted(struct child_state *st, const struct sbx_op *op, int target) {
  int *fs = &st->fd[op->n[0]];
  struct mount_attr attr = {0};
  attr.attr_set = op->n[1];
  attr.attr_clr = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR__ATIME |
                  MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW;
  long r = sbx_sys5(SYS_mount_setattr, *fs, "", AT_EMPTY_PATH, &attr, sizeof attr);
  if (r >= 0)
    r = sbx_sys5(SYS_move_mount, *fs, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  close_fd(fs);
  return (int)r;
}

/* s0 source, s1 target, s2 fstype, s3 data; mflags MS_*; F_MKFILE; F_PREMOUNTED (n0 fd, n1 attrs). */
int op_mount(struct child_state *st, const struct sbx_op *op) {
  int fd = ensure_path(st, str(st, op->s[1]), (op->flags & SBX_F_MKFILE) != 0);
  if (fd < 0) return fd;
  long r;
  if ((op->flags & SBX_F_PREMOUNTED) && st->fd[op->n[0]] >= 0) {
    r = attach_premounted(st, op, fd);
  } else {
    /* Mount on the directory just resolved safely: fchdir to it and mount on ".". */
    r = sbx_sys1(SYS_fchdir, fd);
    if (r >= 0) r = sbx_sys5(SYS_mount, str(st, op->s[0]), ".", str(st, op->s[2]), op->mflags, str(st, op->s[3]));
  }
  sys_close(fd);
  dir_cache_drop(st); /* a cached directory may now be covered by this mount */
  return (int)r;
}

/* One "key=value" or "key" of a mount(2) data string, as the kernel's own parser hands it on
 * (generic_parse_monolithic): a string or a flag. */
static long fsconfig_option(long fs, const char *opt, size_t n) {
  char kv[512];
  if (n >= sizeof kv) return -EINVAL;
  size_t eq = n;
  for (size_t i = 0; i < n; i++) {
    kv[i] = opt[i];
    if (opt[i] == '=' && eq == n) eq = i;
  }
  kv[n] = 0;
  if (eq == n) return sbx_sys5(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, kv, 0, 0);
  kv[eq] = 0;
  return sbx_sys5(SYS_fsconfig, fs, FSCONFIG_SET_STRING, kv, kv + eq + 1, 0);
}

/* s0 source, s1 target, s2 fstype, s3 data; mflags MOUNT_ATTR_*. MOUNT for a root that is still
 * detached (mount(2) can only mount in the caller's namespace): the same file system made with
 * fsopen, its data given option by option, its flags as the new mount's attributes (read-only
 * also on the superblock, as mount(2) does for a new one), moved onto the target inside the
 * detached tree. It goes into the container's namespace with the root (ATTACH_ROOT). */
int op_mount_detached(struct child_state *st, const struct sbx_op *op) {
  long fs = sbx_sys2(SYS_fsopen, str(st, op->s[2]), FSOPEN_CLOEXEC);
  if (fs < 0) return (int)fs;
  long r = 0;
  const char *source = str(st, op->s[0]);
  if (source) r = sbx_sys5(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", source, 0);
  if (r >= 0 && (op->mflags & MOUNT_ATTR_RDONLY)) r = sbx_sys5(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "ro", 0, 0);
  for (const char *d = str(st, op->s[3]); r >= 0 && d && *d;) {
    size_t n = 0;
    while (d[n] && d[n] != ',') n++;
    if (n) r = fsconfig_option(fs, d, n);
    d += n;
    if (*d == ',') d++;
  }
  if (r >= 0) r = sbx_sys5(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, 0, 0, 0);
  long m = r < 0 ? r : sbx_sys3(SYS_fsmount, fs, FSMOUNT_CLOEXEC, op->mflags);
  sys_close((int)fs);
  if (m < 0) return (int)m;
  int fd = ensure_path(st, str(st, op->s[1]), 0);
  r = fd;
  if (fd >= 0) {
    r = sbx_sys5(SYS_move_mount, m, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    sys_close(fd);
  }
  sys_close((int)m);
  dir_cache_drop(st);
  return (int)r;
}

/* s0 host path, s1 target, n0 recursive, n1 propagation, n2 slot, mflags MOUNT_ATTR_*; F_MKFILE,
 * F_IGNORE_MISSING. The host tree CLONE_TREE cloned into the slot: attributes set on every mount in
 * it (e.g. read-only), then attached on the target in one move. */
int op_bind(struct child_state *st, const struct sbx_op *op) {
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

/* s0 path, s1 host node, n0 mode, n1 major, n2 minor; F_BIND_FALLBACK. */
int op_mknod(struct child_state *st, const struct sbx_op *op) {
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
