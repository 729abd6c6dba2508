/*
 * Output for the libc-free static binaries (demo/sleep.c, init/init.c): a string or a number
 * written to an fd with one raw write each.
 */
#ifndef SBX_DEMO_PUT_H
#define SBX_DEMO_PUT_H

#include "../child/util.h"

static inline void put_str(int fd, const char *s) { sbx_sys3(SYS_write, fd, s, s_len(s)); }

static inline void put_num(int fd, long v) {
  char b[24];
  int i = sizeof b;
  b[--i] = 0;
  do b[--i] = (char)('0' + v % 10), v /= 10;
  while (v && i > 0);
  put_str(fd, b + i);
}

#endif
