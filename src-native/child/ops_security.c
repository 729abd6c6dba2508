/*
 * Capabilities: the bounding set, the permitted set kept across setuser, the final sets, ambient.
 * The plan computed every mask (src-ts/security/capabilities.ts); these only apply them, in the
 * order the kernel needs (see the plan's comment in src-ts/plan/plan.ts).
 */
#define _GNU_SOURCE
#include <linux/capability.h>
#include <sys/prctl.h>

#include "util.h" /* before state.h: size_t */
#include "state.h"

/* mflags the bounding set to keep, n0 cap_last_cap. A capability once out of the bounding set can
 * never come back to this process or anything it execs; dropping needs CAP_SETPCAP, which the
 * child has until CAPSET. Every capability the kernel knows is dropped by number, including any
 * the plan cannot name (newer than scratchbox): only those kept are named. */
int op_cap_bounding(struct child_state *st, const struct sbx_op *op) {
  (void)st;
  for (uint32_t c = 0; c <= op->n[0]; c++) {
    if ((op->mflags >> c) & 1) continue;
    long r = sbx_sys5(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0);
    if (r < 0) return (int)r;
  }
  return 0;
}

/* A setresuid from uid 0 to another clears the permitted set unless this is set; execve resets it. */
int op_keep_caps(struct child_state *st, const struct sbx_op *op) {
  (void)st, (void)op;
  return (int)sbx_sys5(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0);
}

/* n0/n1 effective (low, high word), n2/n3 permitted, mflags inheritable. The raw call (libc has
 * none without libcap); version 3 takes two 32-bit words per set. */
int op_capset(struct child_state *st, const struct sbx_op *op) {
  (void)st;
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2] = {
      {op->n[0], op->n[2], (uint32_t)op->mflags},
      {op->n[1], op->n[3], (uint32_t)(op->mflags >> 32)},
  };
  return (int)sbx_sys2(SYS_capset, &h, d);
}

/* mflags the ambient set. Cleared first: the child may have inherited ambient capabilities of the
 * Node process. Each raise needs the capability permitted and inheritable (checked by the plan). */
int op_cap_ambient(struct child_state *st, const struct sbx_op *op) {
  (void)st;
  long r = sbx_sys5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (uint32_t c = 0; r >= 0 && c < 64; c++)
    if ((op->mflags >> c) & 1) r = sbx_sys5(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
  return (int)r;
}
