/*
 * The child side: what runs between clone and execve.
 *
 * Everything here is prepared by the parent (addon.cc, plan.cc) before clone; the child only reads it.
 */
#ifndef SBX_CHILD_H
#define SBX_CHILD_H

#include <stdint.h>

#include "wire.h"

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
  int sync_fd;        /* the child's end of the socketpair (CLOEXEC: closes at execve) */
  int parent_sync_fd; /* the parent's end, inherited by the fd-table copy: the child closes it */
  int stdio[3];       /* fds that become 0, 1, 2 in the child; -1 keeps the inherited one */
  int sysfs_fd;       /* a detached sysfs mount made for the pooled netns_fd, or -1 */
  int netns_fd;       /* a network namespace (lo up) to join: a fresh one made ahead, or the shared one; -1: none */
  int base_mntns_fd;  /* the base mount namespace (one empty read-only tmpfs) to copy instead of the host's; -1: copy the host's */
  int rootfs_clone_fd; /* with base_mntns_fd: a detached clone of the rootfs, the overlay's lower layer */
};

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
