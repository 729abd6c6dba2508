/*
 * Namespaces: joined or made by the child, off the parent's thread (pid and time namespaces are
 * made by clone3 itself: they apply only to children made after).
 */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "state.h"
#include "util.h"

/* n0: fd index (SBX_FD_*), n1: the namespace type. Joins a namespace the parent sent: the base
 * mount namespace (its copy, made by UNSHARE next, then has nothing of the host in it), the shared
 * network namespace, or one the caller gave with the plan. */
int op_setns(struct child_state *st, const struct sbx_op *op) {
  int *fd = &st->fd[op->n[0]];
  if (*fd < 0) return -EBADF; /* the parent could not provide it */
  long r = sbx_sys2(SYS_setns, *fd, op->n[1]);
  close_fd(fd); /* this copy only: the parent keeps its own */
  return (int)r;
}

static int loopback_up(void) {
  long s = sbx_sys3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return (int)s;
  struct ifreq ifr = {0};
  ifr.ifr_name[0] = 'l';
  ifr.ifr_name[1] = 'o';
  ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
  long r = sbx_sys3(SYS_ioctl, s, SIOCSIFFLAGS, &ifr);
  sys_close((int)s);
  return (int)r;
}

/* setns into the namespace the parent's helper thread made ahead of need (MSG_FDS index `at`), and
 * close it: each goes to one container only. 1 when none came (the pool was empty or off). */
static int setns_pooled(struct child_state *st, int at, int nstype) {
  int *pooled = &st->fd[at];
  if (*pooled < 0) return 1;
  long r = sbx_sys2(SYS_setns, *pooled, nstype);
  close_fd(pooled);
  return (int)r;
}

/* A network namespace of the container's own, with lo up: the pooled one (used by this container
 * only, like a new one), or else a new one made here. */
int op_netns_fresh(struct child_state *st, const struct sbx_op *op) {
  (void)op;
  int r = setns_pooled(st, SBX_FD_POOLED_NETNS, CLONE_NEWNET);
  if (r <= 0) return r;
  long u = sbx_sys1(SYS_unshare, CLONE_NEWNET);
  return u < 0 ? (int)u : loopback_up();
}

/* An IPC namespace of the container's own: the one made with the pooled network namespace (its
 * System V sysctls and internal mqueue mount are the costly part), else a new one. */
int op_ipcns_fresh(struct child_state *st, const struct sbx_op *op) {
  (void)op;
  int r = setns_pooled(st, SBX_FD_POOLED_IPCNS, CLONE_NEWIPC);
  return r <= 0 ? r : (int)sbx_sys1(SYS_unshare, CLONE_NEWIPC);
}

/* mflags: the CLONE_NEW* flags of the namespaces to make. */
int op_unshare(struct child_state *st, const struct sbx_op *op) {
  (void)st;
  return (int)sbx_sys1(SYS_unshare, op->mflags);
}

/* s0: the hostname, n0: its length. */
int op_sethostname(struct child_state *st, const struct sbx_op *op) {
  return (int)sbx_sys2(SYS_sethostname, str(st, op->s[0]), op->n[0]);
}
