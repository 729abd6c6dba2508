/*
 * Path resolution inside the new root. Every path an op touches is resolved with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) from the root's fd: a symlink in the rootfs can
 * never redirect a mount, a device node or a file onto the host. Such a path fails with ELOOP.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>

#include "state.h"
#include "util.h"

void dir_cache_drop(struct child_state *st) {
  close_fd(&st->dir_fd);
  st->dir_path[0] = 0;
}

/* Opens `path` (relative to the new root) without following any symlink or leaving the root. */
int open_beneath(int rootfd, const char *path, int flags) {
  struct open_how how = {0};
  /* No O_NOFOLLOW: with O_PATH it would return the symlink itself; without it,
   * RESOLVE_NO_SYMLINKS makes a trailing symlink fail with ELOOP like any other. */
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return (int)sbx_sys4(SYS_openat2, rootfd, (path && *path) ? path : ".", &how, sizeof how);
}

/* Splits `path` into its directory (opened, cached) and its last component (copied to base). */
int open_parent(struct child_state *st, const char *path, char *base, size_t base_cap) {
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
int ensure_path(struct child_state *st, const char *path, int as_file) {
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
