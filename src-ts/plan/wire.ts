/**
 * Wire constants: the TypeScript side of src-native/wire.h. test/unit/wire.test.ts checks that
 * these equal what the compiled addon exports.
 */
export const WIRE_MAGIC = 0x31584253;
export const WIRE_VERSION = 1;
export const HEADER_SIZE = 72;
export const OP_SIZE = 48;
export const MSG_SIZE = 16;
export const NO_STRING = 0xffffffff;

export const OP = {
  MAKE_PRIVATE: 1,
  ROOT_OVERLAY: 2,
  MOUNT: 3,
  BIND: 4,
  MKNOD: 5,
  SYMLINK: 6,
  WRITE_FILE: 7,
  MKDIR: 8,
  LOOPBACK_UP: 9,
  SETHOSTNAME: 10,
  ENTER_ROOT: 11,
  SETUSER: 12,
  CHDIR: 13,
  RESOLVE_EXEC: 14,
  READY: 15,
  WAIT_START: 16,
  EXEC: 17,
  UNSHARE: 18,
  ROOT_UPPER: 19,
  CLONE_TREE: 20,
  ATTACH_ROOT: 21,
} as const;

/** Detached trees a plan may clone (CLONE_TREE slots). */
export const MAX_SLOTS = 128;

/** Child stages, by wire number. Index = number. */
export const STAGES = [
  'none',
  'prepare',
  'rootfs',
  'mount',
  'device',
  'file',
  'network',
  'hostname',
  'pivot',
  'user',
  'cwd',
  'sync',
  'exec',
] as const;
export type ChildStage = Exclude<(typeof STAGES)[number], 'none'>;

export const F = {
  MKDIR: 0x1,
  MKFILE: 0x2,
  BIND_FALLBACK: 0x4,
  IGNORE_MISSING: 0x8,
  USERXATTR: 0x10,
} as const;

export const H = { DETACHED: 0x1, TRACE: 0x2, BASE: 0x4 } as const;

// Namespace clone flags (linux/sched.h).
export const CLONE = {
  NEWTIME: 0x80,
  NEWNS: 0x20000,
  NEWCGROUP: 0x2000000,
  NEWUTS: 0x4000000,
  NEWIPC: 0x8000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;
