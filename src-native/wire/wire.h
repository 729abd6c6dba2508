/*
 * The plan wire format: what src-ts/plan/encode.ts writes and the native side reads.
 *
 *   [header][op 0][op 1]...[op n-1][string table]
 *
 * Fixed-size little-endian records, no pointers: strings are byte offsets into the string table,
 * each NUL-terminated. A string list (argv, envp) is `count` strings stored back to back starting
 * at one offset. The parent validates every offset once (plan.cc) before clone; the child then
 * reads the buffer without checking again and without allocating.
 *
 * Keep this file and src-ts/plan/wire.ts in step: test/unit/wire.test.ts compares the constants
 * the addon exports with the TypeScript ones.
 */
#ifndef SBX_WIRE_H
#define SBX_WIRE_H

#include <stdint.h>

#include "ops.h"

#define SBX_WIRE_MAGIC 0x31584253u /* "SBX1" little-endian */
#define SBX_WIRE_VERSION 2u
#define SBX_NO_STRING 0xffffffffu

/* Op kinds: the op table (ops.h). Each runs in the child, in plan order; the stage reported on
 * failure is the op's. What each op reads of s[] and n[] is said at its handler (child/) and named
 * in src-ts/plan/ops.ts. */
enum sbx_op_kind {
#define SBX_OP_ENUM(NAME, num, name, stage, req, opt, handler) SBX_OP_##NAME = num,
  SBX_OPS(SBX_OP_ENUM)
#undef SBX_OP_ENUM
  SBX_OP_MAX_
};

/* Stages: where in the container's life an op belongs; reported with every failure. */
enum sbx_stage {
  SBX_STAGE_NONE = 0,
  SBX_STAGE_PREPARE = 1, /* the prelude (signals, stdio, prctl) and the UNSHARE op */
  SBX_STAGE_ROOTFS = 2,
  SBX_STAGE_MOUNT = 3,
  SBX_STAGE_DEVICE = 4,
  SBX_STAGE_FILE = 5,
  SBX_STAGE_NETWORK = 6,
  SBX_STAGE_HOSTNAME = 7,
  SBX_STAGE_PIVOT = 8,
  SBX_STAGE_USER = 9,
  SBX_STAGE_CWD = 10,
  SBX_STAGE_SYNC = 11,
  SBX_STAGE_EXEC = 12,
  SBX_STAGE_SECURITY = 13, /* capabilities, seccomp, rlimits, masked paths: the isolation ops */
  SBX_STAGE_MAX_ = 14
};

/* Op flags. */
#define SBX_F_PREMOUNTED 0x1u     /* mount: attach the file system the parent sent in fd n[0] */
                                  /* when it sent one (a sysfs made in a pooled netns)      */
#define SBX_F_MKFILE 0x2u         /* create the mount target as an empty file when missing */
#define SBX_F_BIND_FALLBACK 0x4u  /* mknod: bind the host's node when mknod is not allowed */
#define SBX_F_IGNORE_MISSING 0x8u /* bind of a host path that may not exist: skip it      */
#define SBX_F_USERXATTR 0x10u     /* root overlay: user.* xattrs (user namespaces)         */
#define SBX_F_EXISTING 0x20u      /* write-file: into the file an earlier op made (truncated), */
                                  /* never a new one: the per-container content after a    */
                                  /* pooled root's placeholder (parent/root_pool.h)        */

/* TTY_OPEN n1: open the ptmx beneath the root being built (the child's root fd), not a sent fd. */
#define SBX_TTY_BUILT_ROOT 0xffffffffu
#define SBX_NO_SLOT 0xffffffffu /* MASK_PATH n[0]: no MASK_TMPFS slot (the child makes the tmpfs) */

/* Slots: detached mount trees cloned by CLONE_TREE, attached later by BIND (fds in the child). */
#define SBX_MAX_SLOTS 128u
/* EXEC_INIT: at most this many user arguments (the init's argv is built on the child's stack). */
#define SBX_INIT_MAX_ARGS 1024u

/* Header flags. */
#define SBX_H_DETACHED 0x1u /* no PR_SET_PDEATHSIG: the container outlives the Node process */
#define SBX_H_TRACE 0x2u    /* time every op (CLOCK_MONOTONIC) and send MSG_TRACE before READY */
#define SBX_TRACE_MAX 128u  /* ops timed at most (the default plan has ~70) */

/* The child's comm (PR_SET_NAME) from its prelude to execve, which replaces it with the binary's
 * base name, which never holds a '/': the parent reads it to tell a death before execve from an
 * exec'd process that exited (docs/protocol.md). */
#define SBX_SETUP_COMM "sbx/setup"

struct sbx_header {
  uint32_t magic;
  uint16_t version;
  uint16_t header_size; /* sizeof(struct sbx_header) */
  uint16_t op_size;     /* sizeof(struct sbx_op)     */
  uint16_t reserved0;
  uint32_t n_ops;
  uint32_t ops_offset;
  uint32_t strtab_offset;
  uint32_t strtab_size;
  uint32_t total_size;
  uint32_t flags;       /* SBX_H_* */
  uint32_t reserved1;
  uint64_t clone_flags; /* namespaces: CLONE_NEW*; the addon adds CLONE_PIDFD etc. */
  uint32_t reserved2[6];
};

struct sbx_op {
  uint16_t kind;  /* enum sbx_op_kind */
  uint16_t stage; /* enum sbx_stage   */
  uint32_t flags; /* SBX_F_*          */
  uint64_t mflags;
  uint32_t s[4]; /* string offsets or SBX_NO_STRING */
  uint32_t n[4]; /* numbers                           */
};

/* Parent <-> child messages over a SOCK_SEQPACKET|SOCK_CLOEXEC socketpair. The child's end closes
 * at execve: EOF after MSG_START means the user's binary is running. The parent's side is a state
 * machine over these steps (parent/protocol.h, docs/protocol.md); anything out of order kills the
 * child. */
enum sbx_msg_type {
  SBX_MSG_READY = 1, /* child -> parent: every op before WAIT_START succeeded   */
  SBX_MSG_ERROR = 2, /* child -> parent: {stage, op, err}; the child then exits */
  SBX_MSG_TRACE = 3, /* child -> parent: struct sbx_trace (only with SBX_H_TRACE) */
  SBX_MSG_SYNC = 4,  /* child -> parent: the SYNC op reached point `op`; waits for MSG_RESUME */
  SBX_MSG_CONSOLE = 5, /* child -> console socket (TTY_OPEN's, not the sync socket): the pty master
                          as SCM_RIGHTS */
  /* 6..15 reserved child -> parent */
  SBX_MSG_START = 16,  /* parent -> child: execve now                              */
  SBX_MSG_FDS = 17,    /* parent -> child, first on the socket: struct sbx_fds_msg  */
  SBX_MSG_RESUME = 18, /* parent -> child: go on past sync point `op` (err != 0: exit)    */
  /* 19.. reserved parent -> child */
};

/* MSG_FDS carries (SCM_RIGHTS) the fds the child needs besides the sync socket, one for each bit
 * of `mask`, in bit order. They come over the socket rather than through the fd table because the
 * child drops that table (or never copies it): see sbx_child_args.fd_limit. Indexes below
 * SBX_FD_PLAN0 are the parent's own resources, sent when the plan's ops ask for them
 * (parent/plan.cc); from SBX_FD_PLAN0 on, fds the caller gave for the plan (Child's `fds`). */
enum sbx_fd_index {
  SBX_FD_STDIN = 0, /* source of fd 0 (absent: fd 0 as inherited) */
  SBX_FD_STDOUT = 1,
  SBX_FD_STDERR = 2,
  SBX_FD_POOLED_NETNS = 3, /* NETNS_FRESH: a fresh network namespace the helper thread made */
  SBX_FD_POOLED_SYSFS = 4, /* MOUNT F_PREMOUNTED: a detached sysfs made in that namespace */
  SBX_FD_BASE_MNTNS = 5,   /* SETNS: the base mount namespace (one empty read-only tmpfs) */
  SBX_FD_SHARED_NETNS = 6, /* SETNS: the one network namespace of network: 'shared' */
  SBX_FD_POOLED_IPCNS = 7, /* IPCNS_FRESH: a fresh IPC namespace, made with the pooled netns */
  SBX_FD_POOLED_MQUEUE = 8, /* MOUNT F_PREMOUNTED: a detached mqueue made in that IPC namespace */
  SBX_FD_PLAN0 = 9,        /* SETNS and others: fds the caller gave with the plan, in order */
  SBX_FD_COUNT_ = 24
};

struct sbx_fds_msg {
  uint32_t type; /* SBX_MSG_FDS */
  uint32_t mask; /* bit i: fd SBX_FD_<i> is in the message */
  /* A pooled root (parent/root_pool.h): the plan's first prefix_ops ops were done ahead by the
   * helper thread. After the fds of `mask` come what they left: the upper tmpfs, the overlay, and
   * the detached tree of each slot in prefix_slots (bit i: slot i), in that order. The child starts
   * at op prefix_ops. 0: none came, the child runs every op. */
  uint32_t prefix_ops;
  uint32_t prefix_slots;
};

#define SBX_PREFIX_MAX_SLOTS 8u /* bind sources a pooled root may carry (CLONE_TREE slots 0..7) */

struct sbx_msg {
  uint32_t type;
  int32_t stage;
  int32_t op;  /* ERROR: index of the failing op, -1 for the prelude; SYNC/RESUME: the point */
  int32_t err; /* positive errno */
};

/* MSG_TRACE: end time of each op (ns, CLOCK_MONOTONIC), t0 = when the child started. */
struct sbx_trace {
  uint32_t type;
  uint32_t count;
  uint64_t t0;
  uint64_t end[SBX_TRACE_MAX];
};

#ifdef __cplusplus
static_assert(sizeof(struct sbx_header) == 72, "header layout");
static_assert(sizeof(struct sbx_op) == 48, "op layout");
static_assert(sizeof(struct sbx_msg) == 16, "msg layout");
static_assert(sizeof(struct sbx_fds_msg) == 16, "fds msg layout");
#else
_Static_assert(sizeof(struct sbx_header) == 72, "header layout");
_Static_assert(sizeof(struct sbx_op) == 48, "op layout");
_Static_assert(sizeof(struct sbx_msg) == 16, "msg layout");
_Static_assert(sizeof(struct sbx_fds_msg) == 16, "fds msg layout");
#endif

#endif
