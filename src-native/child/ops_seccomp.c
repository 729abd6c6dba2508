/*
 * The seccomp filter: compiled in the parent (parent/seccomp.cc, libseccomp), carried in the plan's
 * string table, loaded here as the last step before execve (or before the user switch when the
 * plan has no no_new_privs, since loading then needs CAP_SYS_ADMIN).
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "state.h"
#include "util.h"

/* s0: struct sock_filter[n0] (validated by the parent), n1: SECCOMP_FILTER_FLAG_*. Everything the
 * child does after this goes through the filter: exec's umask, close_range, rt_sigprocmask and
 * execve, or a failure's write and exit_group. */
int op_seccomp(struct child_state *st, const struct sbx_op *op) {
  struct sock_fprog prog;
  prog.len = (unsigned short)op->n[0];
  prog.filter = (struct sock_filter *)(st->a->strtab + op->s[0]);
  return (int)sbx_sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, op->n[1], &prog);
}
