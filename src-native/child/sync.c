/*
 * The child's half of the handshake (docs/protocol.md): messages on the sync socket, the fds the
 * parent sends first, and the ops that wait for the parent.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "state.h"
#include "util.h"

int send_msg(int fd, uint32_t type, int stage, int op, int err) {
  struct sbx_msg m = {type, stage, op, err};
  long r;
  do r = sbx_sys3(SYS_write, fd, &m, sizeof m);
  while (r == -EINTR);
  return (int)r;
}

/* The raw syscall, not the vDSO: nothing of libc's runs here. Only used with SBX_H_TRACE. */
uint64_t now_ns(void) {
  struct {
    long sec, nsec;
  } ts = {0, 0};
  sbx_sys2(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, &ts);
  return (uint64_t)ts.sec * 1000000000u + (uint64_t)ts.nsec;
}

/* One datagram's header: one iovec, and a control buffer for SCM_RIGHTS. */
static void msg_of(struct msghdr *mh, struct iovec *iov, void *control, size_t control_len) {
  char *p = (char *)mh;
  for (size_t i = 0; i < sizeof *mh; i++) p[i] = 0;
  mh->msg_iov = iov;
  mh->msg_iovlen = 1;
  mh->msg_control = control;
  mh->msg_controllen = control_len;
}

/* `len` bytes of `data` with one fd as SCM_RIGHTS, in one datagram (the console's master). */
int send_fd(int sock, const void *data, size_t len, int fd) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  for (unsigned i = 0; i < sizeof u.buf; i++) u.buf[i] = 0;
  struct iovec iov = {(void *)data, len};
  struct msghdr mh;
  msg_of(&mh, &iov, u.buf, sizeof u.buf);
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  *(int *)(void *)CMSG_DATA(c) = fd;
  long r;
  do r = sbx_sys3(SYS_sendmsg, sock, &mh, MSG_NOSIGNAL);
  while (r == -EINTR);
  return r < 0 ? (int)r : 0;
}

/* MSG_FDS, the parent's first message: the fds the plan needs, received into the child's table. */
int recv_fds(struct child_state *st) {
  struct sbx_fds_msg m;
  union {
    char buf[CMSG_SPACE(sizeof(int) * (SBX_FD_COUNT_ + 2 + SBX_PREFIX_MAX_SLOTS))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {&m, sizeof m};
  struct msghdr mh;
  msg_of(&mh, &iov, u.buf, sizeof u.buf);
  long r;
  do r = sbx_sys3(SYS_recvmsg, st->a->sync_fd, &mh, MSG_CMSG_CLOEXEC);
  while (r == -EINTR);
  if (r < 0) return (int)r;
  if (r != sizeof m || m.type != SBX_MSG_FDS || (mh.msg_flags & MSG_CTRUNC)) return -EPROTO;
  int n = 0, extra = 0;
  for (int i = 0; i < SBX_FD_COUNT_; i++) n += (m.mask >> i) & 1;
  if (m.prefix_ops) {
    if (m.prefix_ops >= st->a->hdr->n_ops || (m.prefix_slots >> SBX_PREFIX_MAX_SLOTS)) return -EPROTO;
    extra = 2;
    for (unsigned i = 0; i < SBX_PREFIX_MAX_SLOTS; i++) extra += (m.prefix_slots >> i) & 1;
  }
  n += extra;
  const int *fds = (const int *)0;
  if (n > 0) {
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(n * sizeof(int)))
      return -EPROTO;
    fds = (const int *)CMSG_DATA(c);
  }
  int k = 0;
  for (int i = 0; i < SBX_FD_COUNT_; i++) st->fd[i] = (m.mask >> i) & 1 ? fds[k++] : -1;
  if (extra) { /* a pooled root: the state its prefix ops would have left */
    st->tmpfs_fd = fds[k++];
    st->rootfd = fds[k++];
    for (unsigned i = 0; i < SBX_PREFIX_MAX_SLOTS; i++)
      if ((m.prefix_slots >> i) & 1) st->slots[i] = fds[k++];
    st->first_op = m.prefix_ops;
  }
  return 0;
}

/* Blocks for the parent's next message; EOF (the parent is gone, or gave up on us): exit quietly. */
static int await_msg(struct child_state *st, uint32_t type, struct sbx_msg *m) {
  long r;
  do r = sbx_sys3(SYS_read, st->a->sync_fd, m, sizeof *m);
  while (r == -EINTR);
  if (r == 0) sbx_sys1(SYS_exit_group, 0);
  if (r < 0) return (int)r;
  if (r != sizeof *m || m->type != type) return -EPROTO;
  return 0;
}

/* n0: the point. Tells the parent, then waits until it has done its part (an id map, a cgroup)
 * and says MSG_RESUME for this point; a RESUME with err set ends the child with that errno. */
int op_sync(struct child_state *st, const struct sbx_op *op) {
  if (send_msg(st->a->sync_fd, SBX_MSG_SYNC, op->stage, (int)op->n[0], 0) < 0) return -EPIPE;
  struct sbx_msg m;
  int r = await_msg(st, SBX_MSG_RESUME, &m);
  if (r < 0) return r;
  if (m.op != (int32_t)op->n[0]) return -EPROTO;
  return m.err > 0 ? -m.err : 0;
}

int op_ready(struct child_state *st, const struct sbx_op *op) {
  (void)op;
  return send_msg(st->a->sync_fd, SBX_MSG_READY, 0, 0, 0) < 0 ? -EPIPE : 0;
}

int op_wait_start(struct child_state *st, const struct sbx_op *op) {
  (void)op;
  const struct sbx_child_args *a = st->a;
  /* Credentials may have changed (SETUSER), which clears the parent-death signal: arm it again.
   * If the parent died before this point, the read below sees EOF: nobody will ever start us. */
  if (!(a->hdr->flags & SBX_H_DETACHED)) sbx_sys2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  struct sbx_msg m;
  return await_msg(st, SBX_MSG_START, &m);
}
