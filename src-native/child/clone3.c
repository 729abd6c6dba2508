/*
 * long sbx_clone3(void *args, unsigned long size, int (*fn)(void *), void *arg)
 *
 * The parent returns the pid (or -errno). The child starts on the new stack with no frame: it
 * calls fn(arg) and exits with its return value. Registers kept across the syscall carry fn/arg.
 * In assembly because the child must not return into the parent's frames.
 */
#include "child.h"

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl sbx_clone3\n"
    ".type sbx_clone3,@function\n"
    "sbx_clone3:\n"
    "  mov %rdx, %r9\n"   /* fn  */
    "  mov %rcx, %r8\n"   /* arg */
    "  mov $435, %eax\n"  /* __NR_clone3 */
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  xor %ebp, %ebp\n"  /* child: outermost frame */
    "  mov %r8, %rdi\n"
    "  call *%r9\n"
    "  mov %eax, %edi\n"
    "  mov $231, %eax\n"  /* __NR_exit_group */
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  ret\n"
    ".size sbx_clone3, .-sbx_clone3\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".globl sbx_clone3\n"
    ".type sbx_clone3,%function\n"
    "sbx_clone3:\n"
    "  mov x10, x2\n"
    "  mov x11, x3\n"
    "  mov x8, #435\n"
    "  svc #0\n"
    "  cbnz x0, 1f\n"
    "  mov x29, xzr\n"
    "  mov x30, xzr\n"
    "  mov x0, x11\n"
    "  blr x10\n"
    "  mov x8, #94\n"
    "  svc #0\n"
    "1:\n"
    "  ret\n"
    ".size sbx_clone3, .-sbx_clone3\n");
#endif
