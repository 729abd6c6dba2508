/*
 * scratch-init: the `init: true` PID 1 (like `docker run --init`, tini). Static and libc-free:
 * it runs in FROM-scratch roots, where nothing else is.
 *
 *   scratch-init -- FILE ARGV0 ARGS...     (the plan's exec-init op builds this argv)
 *
 * It forks and the child execs FILE (already resolved by the plan's resolve-exec) with ARGV0
 * ARGS... and the container's environment. The init then waits for signals with every signal
 * blocked: SIGCHLD reaps every zombie (wait4(-1) until none is left, orphans included); any other
 * signal is forwarded to the child process (not its group: tini's default), so a SIGTERM to the
 * container reaches the user's process. Faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS,
 * SIGABRT) are not blocked: they are the init's own.
 *
 * The terminal. When the init leads a session of its own (a runtime that gave the container a
 * terminal made one), the child gets a process group of its own and the terminal's foreground,
 * as tini does, so that ^C reaches it once. Otherwise (stdio shared with the Node process, whose
 * terminal it may be) nothing is taken from the Node process's session: the child stays in the
 * init's group, where the terminal's signals reach it directly, and the init forwards only the
 * signals that did not come from the kernel (a terminal's come with SI_KERNEL), not to deliver
 * those twice.
 *
 * When the child ends the init exits with its exit code, or 128 + the signal that killed it (as
 * docker --init does: a PID 1 cannot re-raise a signal on itself, the kernel ignores it). The rest
 * of the pid namespace dies with the init. Not PID 1 (a joined pid namespace): it becomes a child
 * subreaper, so orphans of its child still come to it.
 */
#include <linux/prctl.h>
#include <linux/signal.h>
#include <linux/wait.h>
#include <stddef.h>

#include "../demo/put.h"

#define TIOCSPGRP 0x5410
#define SI_KERNEL 0x80

struct rusage;

static void put(const char *s) { put_str(2, s); }

static __attribute__((noreturn)) void die(int code) {
  for (;;) sbx_sys1(SYS_exit_group, code);
}

static unsigned long bit(int sig) { return 1UL << (sig - 1); }

/* Signals that are the init's own doing (a fault), never forwarded: left to their default. */
static unsigned long faults(void) {
  return bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGFPE) | bit(SIGTRAP) | bit(SIGSYS) | bit(SIGABRT);
}

int init_main(long argc, char **argv) {
  char **envp = argv + argc + 1;
  if (argc < 4 || argv[1][0] != '-' || argv[1][1] != '-' || argv[1][2]) {
    put("scratch-init: usage: scratch-init -- FILE ARGV0 [ARGS...]\n");
    die(2);
  }
  unsigned long none = 0, waited = ~faults();
  sbx_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &waited, 0, sizeof waited);
  long self = sbx_sys0(SYS_getpid);
  if (self != 1) sbx_sys5(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  const int own_session = sbx_sys1(SYS_getsid, 0) == self;

  long child = sbx_sys5(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (child < 0) {
    put("scratch-init: fork: errno ");
    put_num(2, -child);
    put("\n");
    die(126);
  }
  if (child == 0) {
    if (own_session) {
      /* SIGTTOU is blocked, so taking the terminal works from the background group; it does
       * not matter when it fails (stdin is not the session's terminal). */
      sbx_sys2(SYS_setpgid, 0, 0);
      int pgrp = (int)sbx_sys0(SYS_getpid);
      sbx_sys3(SYS_ioctl, 0, TIOCSPGRP, &pgrp);
    }
    sbx_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, sizeof none);
    long r = sbx_sys3(SYS_execve, argv[2], argv + 3, envp);
    put("scratch-init: exec ");
    put(argv[2]);
    put(": errno ");
    put_num(2, -r);
    put("\n");
    die(r == -2 /* ENOENT */ ? 127 : 126);
  }

  for (;;) {
    int info[32]; /* siginfo_t: si_signo, si_errno, si_code, ... (128 bytes) */
    long sig = sbx_sys4(SYS_rt_sigtimedwait, &waited, info, 0, sizeof waited);
    if (sig < 0) continue; /* EINTR */
    if (sig != SIGCHLD) {
      if (own_session || info[2] != SI_KERNEL) sbx_sys2(SYS_kill, child, sig);
      continue;
    }
    for (;;) {
      int status = 0;
      long pid = sbx_sys4(SYS_wait4, -1, &status, WNOHANG, (struct rusage *)0);
      if (pid <= 0) break; /* none left to reap now (0), or no children at all (-ECHILD) */
      if (pid != child) continue;
      /* WIFEXITED: the low 7 bits are 0; else they are the signal. */
      int code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
      die(code);
    }
  }
}

/* argc at the stack pointer, then argv, NULL, envp. */
#if defined(__x86_64__)
__asm__(".text\n.globl _start\n_start:\n  xor %ebp, %ebp\n  mov (%rsp), %rdi\n  lea 8(%rsp), %rsi\n"
        "  and $-16, %rsp\n  call init_main\n  mov %eax, %edi\n  mov $231, %eax\n  syscall\n  hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl _start\n_start:\n  mov x29, xzr\n  ldr x0, [sp]\n  add x1, sp, #8\n  bl init_main\n"
        "  mov x8, #94\n  svc #0\n");
#endif
