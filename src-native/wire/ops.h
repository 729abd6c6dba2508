/*
 * The op table: every op kind of the plan, declared once for the native side.
 *
 *   X(NAME, number, "name", STAGE, required strings, optional strings, child handler)
 *
 * From this list come the C enum (wire.h), the parent's shape check (parent/plan.cc), the child's
 * dispatch table (child/interp.c) and the table the addon exports (parent/addon.cc), which
 * test/unit/wire.test.ts compares with the TypeScript half (src-ts/plan/ops.ts: the same kinds with
 * the fields each carries, which drive the encoder). Strings: bit i stands for s[i]. STAGE is the
 * stage an op reports by default; the plan may give a single op another.
 *
 * Adding an op: a line here, its entry in src-ts/plan/ops.ts, its builder in src-ts/plan, its
 * handler in src-native/child/, a test. Lines stay in code order; a new kind takes a code above
 * every other (gaps are allowed, a code is never reused).
 */
#ifndef SBX_OPS_H
#define SBX_OPS_H

/* clang-format off */
#define SBX_OPS(X)                                                                                  \
  /* Namespaces, while the child still sees the host's mount namespace.                         */ \
  X(CLONE_TREE,            1, "clone-tree",            MOUNT,    0x1, 0x0, op_clone_tree)            \
  X(SETNS,                 2, "setns",                 PREPARE,  0x0, 0x0, op_setns)                 \
  X(NETNS_FRESH,           3, "netns-fresh",           NETWORK,  0x0, 0x0, op_netns_fresh)           \
  X(UNSHARE,               4, "unshare",               PREPARE,  0x0, 0x0, op_unshare)               \
  /* The root.                                                                                  */ \
  X(MAKE_PRIVATE,          5, "make-private",          ROOTFS,   0x0, 0x0, op_make_private)          \
  X(ROOT_UPPER,            6, "root-upper",            ROOTFS,   0x1, 0x0, op_root_upper)            \
  X(ROOT_UPPER_DETACHED,   7, "root-upper-detached",   ROOTFS,   0x0, 0x0, op_root_upper_detached)   \
  X(ROOT_OVERLAY,          8, "root-overlay",          ROOTFS,   0x1, 0x0, op_root_overlay)          \
  X(ROOT_OVERLAY_DETACHED, 9, "root-overlay-detached", ROOTFS,   0x1, 0x0, op_root_overlay_detached) \
  X(ATTACH_ROOT,          10, "attach-root",           ROOTFS,   0x0, 0x0, op_attach_root)           \
  /* What goes into it.                                                                         */ \
  X(MOUNT,                11, "mount",                 MOUNT,    0x6, 0x9, op_mount)                 \
  X(BIND,                 12, "bind",                  MOUNT,    0x3, 0x0, op_bind)                  \
  X(MKNOD,                13, "mknod",                 DEVICE,   0x1, 0x2, op_mknod)                 \
  X(SYMLINK,              14, "symlink",               FILE,     0x3, 0x0, op_symlink)               \
  X(WRITE_FILE,           15, "write-file",            FILE,     0x3, 0x0, op_write_file)            \
  X(MKDIR,                16, "mkdir",                 ROOTFS,   0x1, 0x0, op_mkdir)                 \
  X(SETHOSTNAME,          17, "sethostname",           HOSTNAME, 0x1, 0x0, op_sethostname)           \
  /* Into the root, and who the process is.                                                    */ \
  X(PIVOT_ROOT,           18, "pivot-root",            PIVOT,    0x0, 0x0, op_pivot_root)            \
  X(CHROOT,               19, "chroot",                PIVOT,    0x0, 0x0, op_chroot)                \
  X(SETUSER,              20, "setuser",               USER,     0x0, 0x1, op_setuser)               \
  X(CHDIR,                21, "chdir",                 CWD,      0x1, 0x0, op_chdir)                 \
  X(RESOLVE_EXEC,         22, "resolve-exec",          EXEC,     0x1, 0x2, op_resolve_exec)          \
  /* The handshake.                                                                             */ \
  X(SYNC,                 23, "sync",                  SYNC,     0x0, 0x0, op_sync)                  \
  X(READY,                24, "ready",                 SYNC,     0x0, 0x0, op_ready)                 \
  X(WAIT_START,           25, "wait-start",            SYNC,     0x0, 0x0, op_wait_start)            \
  X(EXEC,                 26, "exec",                  EXEC,     0x1, 0x2, op_exec)                  \
  /* Isolation (new kinds take the next code: the table stays in code order).                   */ \
  X(NO_NEW_PRIVS,         27, "no-new-privs",          USER,     0x0, 0x0, op_no_new_privs)          \
  X(CAP_BOUNDING,         28, "cap-bounding",          SECURITY, 0x0, 0x0, op_cap_bounding)          \
  X(KEEP_CAPS,            29, "keep-caps",             SECURITY, 0x0, 0x0, op_keep_caps)             \
  X(CAPSET,               30, "capset",                SECURITY, 0x0, 0x0, op_capset)                \
  X(CAP_AMBIENT,          31, "cap-ambient",           SECURITY, 0x0, 0x0, op_cap_ambient)          \
  /* The file-system side of isolation (child/ops_harden.c), codes 32-45.                     */ \
  X(MASK_PATH,            32, "mask-path",             SECURITY, 0x3, 0x0, op_mask_path)             \
  X(READONLY_PATH,        33, "readonly-path",         SECURITY, 0x1, 0x0, op_readonly_path)         \
  X(RLIMIT,               34, "rlimit",                SECURITY, 0x0, 0x0, op_rlimit)                \
  X(SYSCTL,               36, "sysctl",                SECURITY, 0x3, 0x0, op_sysctl)                \
  X(CHOWN,                37, "chown",                 DEVICE,   0x1, 0x0, op_chown)                 \
  X(ROOT_READONLY,        38, "root-readonly",         ROOTFS,   0x0, 0x0, op_root_readonly)        \
  X(SECCOMP,              50, "seccomp",               SECURITY, 0x1, 0x0, op_seccomp)               \
  /* The root, kept (options.keep: a host directory as the upper layer).                       */ \
  X(ROOT_UPPER_DIR,       60, "root-upper-dir",        ROOTFS,   0x1, 0x2, op_root_upper_dir)          \
  /* Exec into a running container (child/ops_join.c), codes 70-79.                            */ \
  X(JOIN,                 70, "join",                  PREPARE,  0x0, 0x0, op_join)                \
  X(ENTER_ROOT,           71, "enter-root",            PIVOT,    0x0, 0x0, op_enter_root)          \
  /* A pseudo-terminal from the container's devpts (child/ops_tty.c), codes 80-89.             */ \
  X(TTY_OPEN,             80, "tty-open",              DEVICE,   0x1, 0x0, op_tty_open)            \
  /* init: true (child/ops_init.c), codes 90-99.                                               */ \
  X(EXEC_INIT,            90, "exec-init",             EXEC,     0x3, 0x4, op_exec_init)           \
  /* Namespaces again (codes 100 on).                                                          */ \
  X(IPCNS_FRESH,         100, "ipcns-fresh",           PREPARE,  0x0, 0x0, op_ipcns_fresh)         \
  /* A mount inside the detached root, before the container's namespace (codes 110 on).       */ \
  X(MOUNT_DETACHED,      110, "mount-detached",        MOUNT,    0x6, 0x9, op_mount_detached)  \
  X(MASK_TMPFS,          111, "mask-tmpfs",            SECURITY, 0x0, 0x0, op_mask_tmpfs)
/* clang-format on */

#endif
