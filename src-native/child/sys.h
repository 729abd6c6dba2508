/*
 * Raw system calls for the child. Why not libc's syscall(2) or its wrappers: the child shares the
 * parent's memory (CLONE_VM) and the calling thread's TLS, so a libc wrapper that sets `errno`
 * would write into the Node main thread's errno while that thread runs. These return -errno
 * instead and touch nothing but registers.
 */
#ifndef SBX_SYS_H
#define SBX_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#if defined(SBX_SYS_RECORD)
/* The recording table of test/native/recorder.cc: the same child code, run without root against a
 * syscall table that logs each call and answers it, so the op sequence of a plan can be checked. */
long sbx_sys6(long n, long a, long b, long c, long d, long e, long f);
#elif defined(__x86_64__)
static inline long sbx_sys6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
static inline long sbx_sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
}
#else
#error "scratchbox: raw syscalls are written for x86_64 and aarch64"
#endif

#define SBX_SYS(n, a, b, c, d, e, f) \
  sbx_sys6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define sbx_sys0(n) SBX_SYS(n, 0, 0, 0, 0, 0, 0)
#define sbx_sys1(n, a) SBX_SYS(n, a, 0, 0, 0, 0, 0)
#define sbx_sys2(n, a, b) SBX_SYS(n, a, b, 0, 0, 0, 0)
#define sbx_sys3(n, a, b, c) SBX_SYS(n, a, b, c, 0, 0, 0)
#define sbx_sys4(n, a, b, c, d) SBX_SYS(n, a, b, c, d, 0, 0)
#define sbx_sys5(n, a, b, c, d, e) SBX_SYS(n, a, b, c, d, e, 0)

#endif
