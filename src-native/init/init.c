/*
 * scratch-init: the `init: true` PID 1 (like `docker run --init`, tini). Static and libc-free:
 * it runs in FROM-scratch roots, where nothing else is.
 *
 *   scratch-init -- FILE ARGV0 ARGS...     (the plan's exec-init op builds this argv)
 *
 * It forks; the child makes itself a process group of its own (and the terminal's foreground
 * group, when stdin is one) and execs FILE (already resolved by the plan's resolve-exec) with
 * ARGV0 ARGS... and the container's environment. The init then waits for signals with every
 * signal blocked: SIGCHLD reaps every zombie (wait4(-1) until none is left, orphans included);
 * any other signal is forwarded to the child process (not its group: tini's default), so a
 * SIGTERM to the container reaches the user's process. Faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
 * SIGTRAP, SIGSYS, SIGABRT) are not blocked: they are the init's own.
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
  if (sbx_sys0(SYS_getpid) != 1) sbx_sys5(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  long child = sbx_sys5(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (child < 0) {
    put("scratch-init: fork: errno ");
    put_num(2, -child);
    put("\n");
    die(126);
  }
  if (child == 0) {
    /* A group of its own, like tini: a terminal's ^C (to the foreground group) reaches it once,
     * not once directly and once forwarded. SIGTTOU is blocked, so taking the terminal works from
     * the background. Neither matters when it fails (no terminal, or not ours). */
    sbx_sys2(SYS_setpgid, 0, 0);
    int pgrp = (int)sbx_sys0(SYS_getpid);
    sbx_sys3(SYS_ioctl, 0, TIOCSPGRP, &pgrp);
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
    long sig = sbx_sys4(SYS_rt_sigtimedwait, &waited, 0, 0, sizeof waited);
    if (sig < 0) continue; /* EINTR */
    if (sig != SIGCHLD) {
      sbx_sys2(SYS_kill, child, sig);
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
