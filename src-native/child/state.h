/*
 * The child's state and the pieces its op handlers share. Everything lives on the child's stack
 * (see docs/child-safety.md for the rules every file of this folder follows).
 */
#ifndef SBX_CHILD_STATE_H
#define SBX_CHILD_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "child.h"

#define SBX_PATH_MAX 4096

struct child_state {
  const struct sbx_child_args *a;
  int attach_fd; /* where the upper tmpfs and then the overlay are attached: the rootfs directory
                    (ROOT_UPPER) or the base's root (ATTACH_ROOT), until the root is entered */
  int tmpfs_fd;  /* the tmpfs holding the overlay's upper and work dirs, until it is attached */
  int rootfd;    /* where paths resolve: upper/ after ROOT_UPPER*, the overlay after ROOT_OVERLAY* */
  int mask_dir_fd; /* MASK_PATH: the empty read-only tmpfs, attached on the first masked directory */
  int null_fd;     /* MASK_PATH: the container's /dev/null (O_PATH), once checked to be c 1:3 */
  int dir_fd;    /* one-entry cache of the last parent directory opened under the root */
  char dir_path[256];
  char exec_path[SBX_PATH_MAX]; /* the binary found by RESOLVE_EXEC */
  int slots[SBX_MAX_SLOTS];     /* detached trees from CLONE_TREE, until BIND (or the root is entered) */
  int fd[SBX_FD_COUNT_];        /* what MSG_FDS brought, -1 for what it did not */
  uint32_t first_op;            /* MSG_FDS brought a pooled root for the ops before it (0: none) */
};

void state_init(struct child_state *st, const struct sbx_child_args *a);

static inline const char *str(const struct child_state *st, uint32_t off) {
  return off == SBX_NO_STRING ? (const char *)0 : st->a->strtab + off;
}

/* path.c: every path inside the new root resolves through these. */
int open_beneath(int rootfd, const char *path, int flags);
int open_parent(struct child_state *st, const char *path, char *base, size_t base_cap);
int ensure_path(struct child_state *st, const char *path, int as_file);
void dir_cache_drop(struct child_state *st);

/* ops_exec.c: umask, close-on-exec above stdio, an empty signal mask. */
void exec_prepare(unsigned umask);

/* sync.c */
int send_msg(int fd, uint32_t type, int stage, int op, int err);
int recv_fds(struct child_state *st);
int send_fd(int sock, const void *data, size_t len, int fd);
uint64_t now_ns(void);

/* The op handlers, one per line of the op table (wire/ops.h). Each returns 0 or -errno. */
#define SBX_OP_DECL(NAME, num, name, stage, req, opt, handler) int handler(struct child_state *st, const struct sbx_op *op);
SBX_OPS(SBX_OP_DECL)
#undef SBX_OP_DECL

#endif
