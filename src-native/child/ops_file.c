/*
 * Files the runtime adds (/etc/hostname, hosts, resolv.conf, mtab, the /dev links) and mount
 * points: written into the upper layer, never through a symlink.
 */
#define _GNU_SOURCE
#include <fcntl.h>

#include "state.h"
#include "util.h"

#define CREATE_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)

/* Writes `len` bytes to fd and closes it: 0 or -errno. */
static int write_all(long fd, const char *p, size_t left) {
  long r = 0;
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

/* s0 link target, s1 path. */
int op_symlink(struct child_state *st, const struct sbx_op *op) {
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

/* F_EXISTING: the file an earlier op made in the upper layer (a pooled root's empty /etc/hostname),
 * once the overlay exists: opened in upper/ beneath the tmpfs, not through the overlay (~45 us
 * there: its first lookups of the path), and truncated. The overlay has looked nothing up on that
 * path yet (the ops before it only reach /dev), so what it shows later is this content. */
static long open_upper_file(struct child_state *st, const char *path) {
  static const char up[] = "upper/";
  char p[sizeof up - 1 + 256];
  size_t n = s_len(path);
  if (st->tmpfs_fd < 0) return -EINVAL;
  if (n + sizeof up > sizeof p) return -ENAMETOOLONG;
  for (size_t i = 0; i < sizeof up - 1; i++) p[i] = up[i];
  for (size_t i = 0; i <= n; i++) p[sizeof up - 1 + i] = path[i];
  return open_beneath(st->tmpfs_fd, p, O_WRONLY | O_TRUNC);
}

/* s0 path, s1 content, n0 mode, n1 length. Whatever the image has there (a file or a symlink) is
 * replaced, in the upper layer only. F_EXISTING: into the upper layer's file (open_upper_file). */
int op_write_file(struct child_state *st, const struct sbx_op *op) {
  long r = 0, fd;
  if (op->flags & SBX_F_EXISTING) {
    fd = open_upper_file(st, str(st, op->s[0]));
    if (fd < 0) return (int)fd;
    return write_all(fd, str(st, op->s[1]), op->n[1]);
  }
  char base[256];
  int dfd = open_parent(st, str(st, op->s[0]), base, sizeof base);
  if (dfd < 0) return dfd;
  fd = sbx_sys4(SYS_openat, dfd, base, CREATE_FLAGS, op->n[0]);
  if (fd == -EEXIST) {
    r = sbx_sys3(SYS_unlinkat, dfd, base, 0);
    if (r < 0) return (int)r;
    fd = sbx_sys4(SYS_openat, dfd, base, CREATE_FLAGS, op->n[0]);
  }
  if (fd < 0) return (int)fd;
  return write_all(fd, str(st, op->s[1]), op->n[1]);
}

/* s0 path (components made 0755); F_MKFILE: the last one an empty file. */
int op_mkdir(struct child_state *st, const struct sbx_op *op) {
  const char *path = str(st, op->s[0]);
  const int as_file = (op->flags & SBX_F_MKFILE) != 0;
  /* Fast path: the parent directory exists (the common case, and always in the fresh upper
   * layer): one mkdirat/openat on its cached fd. Anything else, or an existing entry that must be
   * checked (a symlink is ELOOP), takes the component-by-component walk. */
  char base[256];
  int pfd = open_parent(st, path, base, sizeof base);
  if (pfd >= 0) {
    long r = as_file ? sbx_sys4(SYS_openat, pfd, base, CREATE_FLAGS, 0644) : sbx_sys3(SYS_mkdirat, pfd, base, 0755);
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
