/*
 * init: true. The container's process is scratch-init (src-native/init/init.c), bound read-only at
 * s0 by the plan; it forks and execs the binary RESOLVE_EXEC found, with the user's argv.
 */
#define _GNU_SOURCE
#include "state.h"
#include "util.h"

/* s0 the init's path, s1 the user's argv (n0 of them), s2 envp (n1), n2 umask. The parent's
 * pointer arrays are read, never written: the init's argv, [init, "--", <found>, argv...], is
 * built here on the child's stack (parent/plan.cc bounds n0 by SBX_INIT_MAX_ARGS). */
int op_exec_init(struct child_state *st, const struct sbx_op *op) {
  const struct sbx_child_args *a = st->a;
  const char *init = str(st, op->s[0]);
  const char *argv[SBX_INIT_MAX_ARGS + 4];
  argv[0] = init;
  argv[1] = "--";
  argv[2] = st->exec_path[0] ? st->exec_path : a->argv[0];
  for (uint32_t i = 0; i < op->n[0]; i++) argv[3 + i] = a->argv[i];
  argv[3 + op->n[0]] = 0;
  exec_prepare(op->n[2]);
  return (int)sbx_sys3(SYS_execve, init, argv, a->envp);
}
