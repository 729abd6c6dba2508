/*
 * The plan interpreter: runs in the cloned child, between clone3 and execve.
 *
 * Rules for every file in this folder (see docs/child-safety.md):
 *  - The child shares the Node process's memory (CLONE_VM) and the calling thread's TLS. It writes
 *    only to its own stack. No malloc, no locks, no stdio, no errno, no exceptions, no N-API, no
 *    libc at all: raw system calls only (sys.h), on data the parent prepared. The objects of this
 *    folder are built on their own (binding.gyp, sbx_child) and test/unit/child-libc.test.ts fails
 *    when one of them calls anything outside itself but the compiler's memset/memcpy.
 *  - All signals stay blocked until just before execve, and every handler is reset to SIG_DFL
 *    first, so no Node signal handler ever runs on this stack.
 *  - A failure is reported once, as {stage, op, errno} over the sync socket, then the child exits.
 *  - Each op does one thing (the plan chooses between variants); the handlers, one per line of the
 *    op table (wire/ops.h), live in ops_*.c.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>

#include "state.h"
#include "util.h"

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

typedef int (*op_handler)(struct child_state *st, const struct sbx_op *op);

static const op_handler handlers[SBX_OP_MAX_] = {
#define SBX_OP_HANDLER(NAME, num, name, stage, req, opt, handler) [SBX_OP_##NAME] = handler,
    SBX_OPS(SBX_OP_HANDLER)
#undef SBX_OP_HANDLER
};

/* An fd table of the child's own, holding 0..2 and the sync socket and nothing else of Node's.
 *
 * With fd_limit (CLONE_FILES), the child runs in the Node process's table until the first call
 * below, which copies only the fds under fd_limit into a table of its own. Without, the table is
 * a copy of Node's, every fd of it a reference to its file.
 *
 * Either way, whatever is left beyond 0..2 and the sync socket goes now, not at execve: the
 * parent closes some of its fds soon (a pipe end whose EOF another container waits for), and a
 * copy held here would keep the file open, or be the last reference and make this child pay the
 * teardown behind it. */
static int own_fd_table(const struct sbx_child_args *a) {
  if (a->fd_limit > 0) {
    long r = sbx_sys3(SYS_close_range, (unsigned)a->fd_limit, ~0U, CLOSE_RANGE_UNSHARE);
    if (r < 0) return (int)r; /* still in Node's table: touch nothing, report, exit */
  }
  const unsigned s = (unsigned)a->sync_fd;
  if (s > 3) sbx_sys3(SYS_close_range, 3, s - 1, 0);
  sbx_sys3(SYS_close_range, s + 1, ~0U, 0);
  return 0;
}

void state_init(struct child_state *st, const struct sbx_child_args *a) {
  st->a = a;
  st->attach_fd = -1;
  st->tmpfs_fd = -1;
  st->rootfd = -1;
  st->dir_fd = -1;
  st->mask_dir_fd = -1;
  st->null_fd = -1;
  st->dir_path[0] = 0;
  st->exec_path[0] = 0;
  st->first_op = 0;
  for (uint32_t i = 0; i < SBX_MAX_SLOTS; i++) st->slots[i] = -1;
  for (int i = 0; i < SBX_FD_COUNT_; i++) st->fd[i] = -1;
}

/* The helper thread's use of the handlers (child.h). The state is big (two paths, 128 slots): it
 * lives on that thread's stack as it does on a child's. */
int sbx_build_prefix(const struct sbx_child_args *a, uint32_t n, struct sbx_prefix *p) {
  struct child_state st;
  state_init(&st, a);
  int r = 0;
  for (uint32_t i = 0; i < n && r >= 0; i++) r = handlers[a->ops[i].kind](&st, &a->ops[i]);
  dir_cache_drop(&st);
  close_fd(&st.attach_fd);
  close_fd(&st.mask_dir_fd);
  close_fd(&st.null_fd);
  for (uint32_t i = SBX_PREFIX_MAX_SLOTS; i < SBX_MAX_SLOTS; i++) close_fd(&st.slots[i]);
  if (r < 0) {
    close_fd(&st.tmpfs_fd);
    close_fd(&st.rootfd);
    for (uint32_t i = 0; i < SBX_PREFIX_MAX_SLOTS; i++) close_fd(&st.slots[i]);
  }
  p->tmpfs_fd = st.tmpfs_fd;
  p->root_fd = st.rootfd;
  for (uint32_t i = 0; i < SBX_PREFIX_MAX_SLOTS; i++) p->slots[i] = st.slots[i];
  return r;
}

static __attribute__((noreturn)) void fail(const struct sbx_child_args *a, int stage, int op, int err) {
  send_msg(a->sync_fd, SBX_MSG_ERROR, stage, op, err);
  for (;;) sbx_sys1(SYS_exit_group, 255);
}

/* Makes the fds the parent sent into 0, 1 and 2; one it did not send keeps the inherited fd. */
static int setup_stdio(struct child_state *st) {
  int src[3];
  for (int i = 0; i < 3; i++) {
    src[i] = st->fd[SBX_FD_STDIN + i];
    if (src[i] >= 0 && src[i] <= 2 && src[i] != i) {
      long r = sbx_sys3(SYS_fcntl, src[i], F_DUPFD_CLOEXEC, 3);
      if (r < 0) return (int)r;
      src[i] = (int)r;
    }
  }
  for (int i = 0; i < 3; i++) {
    long r;
    if (src[i] < 0) continue;
    if (src[i] == i)
      r = sbx_sys3(SYS_fcntl, i, F_SETFD, 0);
    else
      r = sbx_sys3(SYS_dup3, src[i], i, 0);
    if (r < 0) return (int)r;
  }
  for (int i = 0; i < 3; i++) /* the received copies: 0..2 hold them now */
    if (st->fd[SBX_FD_STDIN + i] > 2) close_fd(&st->fd[SBX_FD_STDIN + i]);
  return 0;
}

int sbx_child_main(void *arg) {
  const struct sbx_child_args *a = (const struct sbx_child_args *)arg;
  /* First of all (CLONE_FILES: until this returns, this child shares the Node process's fds). */
  int r = own_fd_table(a);
  if (r < 0) fail(a, SBX_STAGE_PREPARE, -1, -r);
  struct child_state st;
  state_init(&st, a);

  /* Prelude. Signals are blocked (the parent blocked them around clone3); make every handler the
   * default so that nothing of Node's can run here even once they are unblocked at execve. */
  struct {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
  } dfl = {(void *)0, 0, (void *)0, 0};
  for (int sig = 1; sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) sbx_sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
  if (!(a->hdr->flags & SBX_H_DETACHED)) sbx_sys2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  sbx_sys2(SYS_prctl, PR_SET_NAME, SBX_SETUP_COMM); /* until execve: how the parent tells a death before it */
  sbx_sys1(SYS_umask, 0); /* modes in the plan are exact */
  r = recv_fds(&st);
  if (r >= 0) r = setup_stdio(&st);
  if (r < 0) fail(a, SBX_STAGE_PREPARE, -1, -r);

  const int trace = (a->hdr->flags & SBX_H_TRACE) != 0;
  struct sbx_trace tr;
  if (trace) {
    tr.type = SBX_MSG_TRACE;
    tr.count = 0;
    tr.t0 = now_ns();
  }
  /* A pooled root stands for the first ops (recv_fds): they count as done, in no time. */
  if (trace)
    for (uint32_t i = 0; i < st.first_op && tr.count < SBX_TRACE_MAX; i++) tr.end[tr.count++] = tr.t0;
  for (uint32_t i = st.first_op; i < a->hdr->n_ops; i++) {
    const struct sbx_op *op = &a->ops[i];
    if (trace && op->kind == SBX_OP_READY) /* report the setup before the parent hears READY */
      sbx_sys3(SYS_write, a->sync_fd, &tr, sizeof tr);
    r = handlers[op->kind](&st, op); /* the parent validated every kind: no gap is reached */
    if (r < 0) fail(a, op->stage, (int)i, -r);
    if (trace && tr.count < SBX_TRACE_MAX) tr.end[tr.count++] = now_ns();
  }
  /* A plan always ends in EXEC, which only returns on failure. */
  fail(a, SBX_STAGE_EXEC, (int)a->hdr->n_ops, EPROTO);
}
