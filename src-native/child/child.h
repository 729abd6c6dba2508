/*
 * The child side: what runs between clone and execve.
 *
 * Everything here is prepared by the parent (parent/spawn.cc, parent/plan.cc) before clone; the
 * child only reads it.
 */
#ifndef SBX_CHILD_H
#define SBX_CHILD_H

#include <stdint.h>

#include "../wire/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sbx_child_args {
  const struct sbx_header *hdr;
  const struct sbx_op *ops;
  const char *strtab;
  char *const *argv;     /* built by the parent from the EXEC op, NULL-terminated */
  char *const *envp;     /* likewise */
  const uint32_t *groups; /* aligned copy of the SETUSER op's gid array */
  uint32_t n_groups;
  int sync_fd; /* the child's end of the socketpair (CLOEXEC: closes at execve); MSG_FDS waits on it */
  /* > 0: clone3 was given CLONE_FILES, so the child starts in the Node process's fd table. Its
   * first call, close_range(fd_limit, ~0U, CLOSE_RANGE_UNSHARE), gives it a table of its own that
   * holds only the fds below fd_limit (0..2, the sync socket and a few more): the cost of a copy
   * of the Node process's whole table (every fd of every live container, every socket of a
   * server) is never paid. 0: clone3 copied the table (the child then closes what it has). The
   * parent gives the sync socket's reserved slot back only once the child has settled (READY,
   * ERROR, exit): it has its own table by then. */
  int fd_limit;
};

/* What a pooled root's prefix ops leave (parent/root_pool.h): fds, -1 for none. */
struct sbx_prefix {
  int tmpfs_fd;                     /* the upper tmpfs, detached */
  int root_fd;                      /* the overlay, detached */
  int slots[SBX_PREFIX_MAX_SLOTS]; /* CLONE_TREE's detached trees, MASK_TMPFS's tmpfs */
};

/* Runs the plan's first n ops (a prefix, parent/plan.cc PrefixOf: CLONE_TREE, ROOT_UPPER_DETACHED,
 * the writes into the upper layer, ROOT_OVERLAY_DETACHED, then MOUNT_DETACHED, file ops and
 * MASK_TMPFS into the detached root) on the calling thread, with the child's own handlers, into p.
 * The caller is the helper thread, in the host's mount namespace with umask 0, as a child would be
 * at that point. 0, or -errno with nothing left open. */
int sbx_build_prefix(const struct sbx_child_args *a, uint32_t n, struct sbx_prefix *p);

/* The clone3 entry point (the child's whole life until execve). Never returns in the child. */
int sbx_child_main(void *args);

/* clone3 on a separate stack: the child calls fn(arg) there and exits with its result.
 * Returns the child's pid in the parent or -errno. Written in assembly (child.c) because the
 * child starts on an empty stack and must not return into the parent's frames. */
long sbx_clone3(void *clone_args, unsigned long size, int (*fn)(void *), void *arg);

#ifdef __cplusplus
}
#endif

#endif
