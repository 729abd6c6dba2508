/*
 * Exec into a running container: the child joins the namespaces of the container's PID 1 and its
 * root, instead of making them (docs/architecture.md, "Exec"). The pid namespace is not joined
 * here: setns(CLONE_NEWPID) only moves the caller's future children, so the parent's thread joins
 * it around clone3 (parent/exec.cc) and this child is born in it.
 */
#define _GNU_SOURCE
#include <linux/sched.h>

#include "state.h"
#include "util.h"

/* n0: fd index of a pidfd of the container's PID 1; mflags: its CLONE_NEW* namespaces. One
 * setns(pidfd, flags) joins them all at once (Linux 5.8+): the kernel installs every one or none.
 * The mount namespace needs an fs_struct of our own, which clone3 without CLONE_FS gave us; the
 * join leaves root and cwd at the namespace's root, which the next op replaces. */
int op_join(struct child_state *st, const struct sbx_op *op) {
  int *fd = &st->fd[op->n[0]];
  if (*fd < 0) return -EBADF;
  long r = sbx_sys2(SYS_setns, *fd, op->mflags & ~(uint64_t)CLONE_NEWPID);
  close_fd(fd);
  return (int)r;
}

/* n0: fd index of /proc/PID/root of the container's PID 1 (O_PATH, opened by the parent). In the
 * base mode the namespace's root is the base's empty tmpfs and PID 1 chroot'ed into the overlay:
 * the process must land where PID 1 is, so it chroots to that directory too (in the host mode the
 * two are the same: harmless). Every fd the parent sent but stdio is closed here: nothing of the
 * host's is carried further. */
int op_enter_root(struct child_state *st, const struct sbx_op *op) {
  int *fd = &st->fd[op->n[0]];
  long r = *fd < 0 ? -EBADF : sbx_sys1(SYS_fchdir, *fd);
  if (r >= 0) r = sbx_sys1(SYS_chroot, ".");
  if (r >= 0) r = sbx_sys1(SYS_chdir, "/");
  for (int i = SBX_FD_STDERR + 1; i < SBX_FD_COUNT_; i++) close_fd(&st->fd[i]);
  return (int)r;
}
