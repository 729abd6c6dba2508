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

#define SBX_WIRE_MAGIC 0x31584253u /* "SBX1" little-endian */
#define SBX_WIRE_VERSION 1u
#define SBX_NO_STRING 0xffffffffu

/* Op kinds. Each runs in the child, in plan order; the stage reported on failure is the op's. */
enum sbx_op_kind {
  SBX_OP_MAKE_PRIVATE = 1,  /* mount("/", MS_REC|flags): stop propagation to/from the host     */
  SBX_OP_ROOT_OVERLAY = 2,  /* overlay(lower = rootfs, upper = the tmpfs) as the new root         */
  SBX_OP_MOUNT = 3,         /* s0 source, s1 target (in root), s2 fstype, s3 data, mflags        */
  SBX_OP_BIND = 4,          /* s0 host path, s1 target, n0 recursive, n1 propagation, n2 slot,   */
                            /* mflags MOUNT_ATTR_*: attach the tree CLONE_TREE put in the slot  */
  SBX_OP_MKNOD = 5,         /* s0 path, s1 host node, n0 mode, n1 major, n2 minor                */
  SBX_OP_SYMLINK = 6,       /* s0 link target, s1 path                                           */
  SBX_OP_WRITE_FILE = 7,    /* s0 path, s1 content, n0 mode, n1 length                           */
  SBX_OP_MKDIR = 8,         /* s0 path (components made 0755); F_MKFILE: the last one a file      */
  SBX_OP_LOOPBACK_UP = 9,   /* ioctl SIOCSIFFLAGS on "lo"                                        */
  SBX_OP_SETHOSTNAME = 10,  /* s0 hostname, n0 its length                                        */
  SBX_OP_ENTER_ROOT = 11,   /* make the new root the process's root: chroot into it when the    */
                            /* mount namespace was copied from the base one (nothing of the host */
                            /* in it), else pivot_root(".", ".") + umount2(".", MNT_DETACH)     */
  SBX_OP_SETUSER = 12,      /* n0 uid, n1 gid, s0 gid array (binary u32), n2 count               */
  SBX_OP_CHDIR = 13,        /* s0 path                                                           */
  SBX_OP_RESOLVE_EXEC = 14, /* s0 argv[0], s1 PATH: find the binary now, so create() fails early */
  SBX_OP_READY = 15,        /* send MSG_READY: setup is done, the container is 'created'         */
  SBX_OP_WAIT_START = 16,   /* re-arm pdeathsig, block until MSG_START (EOF = parent gone: exit) */
  SBX_OP_EXEC = 17,         /* s0 argv (n0 count), s1 envp (n1 count), n2 umask                  */
  SBX_OP_UNSHARE = 18,      /* mflags CLONE_NEW* flags: namespaces made by the child, off the    */
                            /* parent's thread (pid and time must be made by clone3 itself);    */
                            /* n0 = 1: join the process's one shared network namespace instead  */
  SBX_OP_ROOT_UPPER = 19,   /* tmpfs for the overlay; ops until ROOT_OVERLAY write its upper dir */
  SBX_OP_CLONE_TREE = 20,   /* s0 host path, n0 recursive, n1 slot: open_tree(OPEN_TREE_CLONE)   */
                            /* of a bind source while the child still sees the host, made        */
                            /* private; only before UNSHARE                                      */
  SBX_OP_ATTACH_ROOT = 21,  /* H_BASE: attach the upper tmpfs, then the overlay, on "/" of the    */
                            /* namespace UNSHARE made (ROOT_UPPER and ROOT_OVERLAY, run before   */
                            /* UNSHARE in such a plan, left them detached)                       */
  SBX_OP_MAX_ = 22
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
  SBX_STAGE_MAX_ = 13
};

/* Op flags. */
#define SBX_F_MKDIR 0x1u          /* create the mount target as a directory when missing   */
#define SBX_F_MKFILE 0x2u         /* create the mount target as an empty file when missing */
#define SBX_F_BIND_FALLBACK 0x4u  /* mknod: bind the host's node when mknod is not allowed */
#define SBX_F_IGNORE_MISSING 0x8u /* bind of a host path that may not exist: skip it      */
#define SBX_F_USERXATTR 0x10u     /* root overlay: user.* xattrs (user namespaces)         */

/* Slots: detached mount trees cloned by CLONE_TREE, attached later by BIND (fds in the child). */
#define SBX_MAX_SLOTS 128u

/* Header flags. */
#define SBX_H_DETACHED 0x1u /* no PR_SET_PDEATHSIG: the container outlives the Node process */
#define SBX_H_TRACE 0x2u    /* time every op (CLOCK_MONOTONIC) and send MSG_TRACE before READY */
#define SBX_H_BASE 0x4u     /* the mount namespace is a copy of the addon's base namespace: the */
                            /* root is built detached before UNSHARE, attached, and chroot'ed  */
#define SBX_TRACE_MAX 64u   /* ops timed at most */

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
  uint32_t rootfs;      /* string: the rootfs path, the overlay's lower layer */
  uint32_t reserved2[5];
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
 * at execve: EOF after MSG_START means the user's binary is running. */
enum sbx_msg_type {
  SBX_MSG_READY = 1, /* child -> parent: every op before WAIT_START succeeded   */
  SBX_MSG_ERROR = 2, /* child -> parent: {stage, op, err}; the child then exits */
  SBX_MSG_TRACE = 3, /* child -> parent: struct sbx_trace (only with SBX_H_TRACE) */
  /* 4..15 reserved child -> parent: idmap request, init pid, console fd, ... */
  SBX_MSG_START = 16, /* parent -> child: execve now                              */
  SBX_MSG_FDS = 17,   /* parent -> child, first on the socket: struct sbx_fds_msg  */
  /* 18.. reserved parent -> child: idmap written, cgroup joined, abort, ...     */
};

/* MSG_FDS carries (SCM_RIGHTS) the fds the child needs besides the sync socket, one for each bit
 * of `mask`, in bit order. They come over the socket rather than through the fd table because the
 * child drops that table (or never copies it): see sbx_child_args.fd_limit. */
enum sbx_fd_index {
  SBX_FD_STDIN = 0,  /* source of fd 0 (absent: fd 0 as inherited) */
  SBX_FD_STDOUT = 1,
  SBX_FD_STDERR = 2,
  SBX_FD_NETNS = 3,  /* a network namespace to join: pooled (fresh) or the shared one */
  SBX_FD_SYSFS = 4,  /* a detached sysfs made in that (pooled) namespace */
  SBX_FD_BASE_MNTNS = 5, /* the base mount namespace (H_BASE): copy it instead of the host's */
  SBX_FD_COUNT_ = 6
};

struct sbx_fds_msg {
  uint32_t type; /* SBX_MSG_FDS */
  uint32_t mask; /* bit i: fd SBX_FD_<i> is in the message */
  uint32_t reserved[2];
};

struct sbx_msg {
  uint32_t type;
  int32_t stage;
  int32_t op;  /* index of the failing op, -1 for the prelude */
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
