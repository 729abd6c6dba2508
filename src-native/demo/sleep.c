/*
 * The demo image's only file: a static, libc-free `sleep` (the article's FROM-scratch binary).
 * It says hello once, then waits for SIGTERM or SIGINT and exits 0. As PID 1 of a PID namespace
 * a signal with the default action is dropped, so the signals are blocked and waited for instead
 * of handled: a blocked signal is always queued, even for a namespace's init.
 */
#include <linux/signal.h>
#include <linux/utsname.h>
#include <stddef.h>

#include "put.h"

static void put(const char *s) { put_str(1, s); }

int sleep_main(void) {
  /* Block first, then say hello: whoever reads the hello knows a SIGTERM will be caught. */
  unsigned long set = (1UL << (SIGTERM - 1)) | (1UL << (SIGINT - 1));
  sbx_sys4(SYS_rt_sigprocmask, SIG_BLOCK, &set, 0, sizeof set);
  struct new_utsname u;
  sbx_sys1(SYS_uname, &u);
  put("hello from scratch: pid ");
  put_num(1, sbx_sys0(SYS_getpid));
  put(", hostname ");
  put(u.nodename);
  put(", waiting for SIGTERM\n");
  for (;;) {
    long sig = sbx_sys4(SYS_rt_sigtimedwait, &set, 0, 0, sizeof set);
    if (sig == SIGTERM || sig == SIGINT) return 0;
  }
}

#if defined(__x86_64__)
__asm__(".text\n.globl _start\n_start:\n  xor %ebp, %ebp\n  and $-16, %rsp\n  call sleep_main\n"
        "  mov %eax, %edi\n  mov $231, %eax\n  syscall\n  hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl _start\n_start:\n  mov x29, xzr\n  bl sleep_main\n  mov x8, #94\n  svc #0\n");
#endif
