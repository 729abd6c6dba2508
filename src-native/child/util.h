/*
 * String and fd helpers for the child: no libc, no state, nothing but the caller's stack.
 */
#ifndef SBX_CHILD_UTIL_H
#define SBX_CHILD_UTIL_H

#include <linux/errno.h> /* constants only: the child never reads or writes errno */
#include <stddef.h>

#include "sys.h"

static inline size_t s_len(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static inline int s_eq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

/* Appends n bytes of src to buf at *pos; -ENAMETOOLONG when they do not fit (with the NUL). */
static inline int s_append(char *buf, size_t cap, size_t *pos, const char *src, size_t n) {
  if (*pos + n + 1 > cap) return -ENAMETOOLONG;
  for (size_t i = 0; i < n; i++) buf[*pos + i] = src[i];
  *pos += n;
  buf[*pos] = 0;
  return 0;
}

static inline int s_append_int(char *buf, size_t cap, size_t *pos, long v) {
  char tmp[24];
  int n = 0;
  if (v < 0) return -EINVAL;
  do {
    tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return s_append(buf, cap, pos, tmp + sizeof tmp - n, (size_t)n);
}

/* "/proc/self/fd/N" into p: a magic link naming the file behind fd N. */
static inline size_t s_fd_path(char *p, size_t cap, int fd) {
  size_t pos = 0;
  s_append(p, cap, &pos, "/proc/self/fd/", 14);
  s_append_int(p, cap, &pos, fd);
  return pos;
}

static inline long sys_close(int fd) { return sbx_sys1(SYS_close, fd); }

/* Closes *fd if open and marks it closed. */
static inline void close_fd(int *fd) {
  if (*fd >= 0) sys_close(*fd);
  *fd = -1;
}

#endif
