/**
 * Wire constants: the TypeScript side of src-native/wire/wire.h (the op kinds are in ./ops.ts).
 * test/unit/wire.test.ts checks that these equal what the compiled addon exports.
 */
export const WIRE_MAGIC = 0x31584253;
export const WIRE_VERSION = 2;
export const HEADER_SIZE = 72;
export const OP_SIZE = 48;
export const MSG_SIZE = 16;
export const NO_STRING = 0xffffffff;

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
  'security',
] as const;
export type ChildStage = Exclude<(typeof STAGES)[number], 'none'>;

export const F = {
  PREMOUNTED: 0x1,
  MKFILE: 0x2,
  BIND_FALLBACK: 0x4,
  IGNORE_MISSING: 0x8,
  USERXATTR: 0x10,
  EXISTING: 0x20,
} as const;

export const H = { DETACHED: 0x1, TRACE: 0x2 } as const;

/** MSG_FDS indexes (wire.h sbx_fd_index): the parent's resources an op may name, then plan fds. */
export const FD = {
  POOLED_NETNS: 3,
  POOLED_SYSFS: 4,
  BASE_MNTNS: 5,
  SHARED_NETNS: 6,
  POOLED_IPCNS: 7,
  POOLED_MQUEUE: 8,
  PLAN0: 9,
  COUNT_: 24,
} as const;

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
