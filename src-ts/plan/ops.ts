/**
 * The op table, TypeScript half: every op kind with its wire code, its default stage, and which of
 * its fields go into which slot of the record (wire.h `struct sbx_op`). The encoder is driven by
 * this table alone. The native half is src-native/wire/ops.h; test/unit/wire.test.ts fails when the
 * two disagree (codes, names, stages, which strings are required or optional).
 *
 * Slot words, by field name of the op:
 *   s (strings, up to 4): a string, a string list stored back to back (argv), a u32 array
 *     (groups), or bytes (a Uint8Array, 8-byte aligned: the seccomp program). A trailing '?' marks
 *     it optional: an empty or absent value is encoded as no string.
 *   n (numbers, up to 4): a number or boolean field; '#field' the length of a list field;
 *     '@field' the UTF-8 byte length of a string field.
 *   flags: field → SBX_F_* bit, set when the field is present and not false.
 *   mflags: a number field (64-bit on the wire).
 */
import type { Op } from './plan.js';
import { F, STAGES, type ChildStage } from './wire.js';

type Kind = Op['kind'];
type OpOf<K extends Kind> = Extract<Op, { kind: K }>;
type Field<K extends Kind> = Exclude<keyof OpOf<K>, 'kind' | 'stage'> & string;

/** Any line of the table, as the encoder and the tests read it. */
export interface AnyOpShape {
  code: number;
  stage: ChildStage;
  s?: readonly string[];
  n?: readonly string[];
  flags?: Readonly<Record<string, number>>;
  mflags?: string;
}

export interface OpShape<K extends Kind> {
  code: number;
  stage: ChildStage;
  s?: readonly (Field<K> | `${Field<K>}?`)[];
  n?: readonly (Field<K> | `#${Field<K>}` | `@${Field<K>}`)[];
  flags?: Partial<Record<Field<K>, number>>;
  mflags?: Field<K>;
}

export const OP_TABLE: { readonly [K in Kind]: OpShape<K> } = {
  // Namespaces, while the child still sees the host's mount namespace.
  'clone-tree': { code: 1, stage: 'mount', s: ['source'], n: ['recursive', 'slot'], flags: { ignoreMissing: F.IGNORE_MISSING } },
  setns: { code: 2, stage: 'prepare', n: ['fd', 'nstype'] },
  'netns-fresh': { code: 3, stage: 'network' },
  unshare: { code: 4, stage: 'prepare', mflags: 'flags' },
  // The root.
  'make-private': { code: 5, stage: 'rootfs', mflags: 'flags' },
  'root-upper': { code: 6, stage: 'rootfs', s: ['dir'], n: ['sizeKiB'] },
  'root-upper-detached': { code: 7, stage: 'rootfs', n: ['sizeKiB'] },
  'root-overlay': { code: 8, stage: 'rootfs', s: ['lowers'], n: ['#lowers'], flags: { userxattr: F.USERXATTR } },
  'root-overlay-detached': { code: 9, stage: 'rootfs', s: ['lowers'], n: ['#lowers'], flags: { userxattr: F.USERXATTR } },
  'attach-root': { code: 10, stage: 'rootfs' },
  // What goes into it.
  mount: {
    code: 11,
    stage: 'mount',
    s: ['source?', 'target', 'fstype', 'data?'],
    n: ['premounted', 'premountedAttrs'],
    flags: { premounted: F.PREMOUNTED },
    mflags: 'flags',
  },
  bind: {
    code: 12,
    stage: 'mount',
    s: ['source', 'target'],
    n: ['recursive', 'propagation', 'slot'],
    flags: { file: F.MKFILE, ignoreMissing: F.IGNORE_MISSING },
    mflags: 'attrs',
  },
  mknod: { code: 13, stage: 'device', s: ['path', 'hostPath?'], n: ['mode', 'major', 'minor'], flags: { bindFallback: F.BIND_FALLBACK } },
  symlink: { code: 14, stage: 'file', s: ['target', 'path'] },
  'write-file': { code: 15, stage: 'file', s: ['path', 'content'], n: ['mode', '@content'], flags: { existing: F.EXISTING } },
  mkdir: { code: 16, stage: 'rootfs', s: ['path'], flags: { file: F.MKFILE } },
  sethostname: { code: 17, stage: 'hostname', s: ['hostname'], n: ['@hostname'] },
  // Into the root, and who the process is.
  'pivot-root': { code: 18, stage: 'pivot' },
  chroot: { code: 19, stage: 'pivot' },
  setuser: { code: 20, stage: 'user', s: ['groups?'], n: ['uid', 'gid', '#groups'] },
  chdir: { code: 21, stage: 'cwd', s: ['path'] },
  'resolve-exec': { code: 22, stage: 'exec', s: ['file', 'searchPath?'] },
  // The handshake.
  sync: { code: 23, stage: 'sync', n: ['point'] },
  ready: { code: 24, stage: 'sync' },
  'wait-start': { code: 25, stage: 'sync' },
  exec: { code: 26, stage: 'exec', s: ['args', 'env?'], n: ['#args', '#env', 'umask'] },
  // Isolation (new kinds take the next code: the table stays in code order).
  'no-new-privs': { code: 27, stage: 'user' },
  'cap-bounding': { code: 28, stage: 'security', n: ['last'], mflags: 'keep' },
  'keep-caps': { code: 29, stage: 'security' },
  capset: { code: 30, stage: 'security', n: ['effectiveLo', 'effectiveHi', 'permittedLo', 'permittedHi'], mflags: 'inheritable' },
  'cap-ambient': { code: 31, stage: 'security', mflags: 'ambient' },
  // The file-system side of isolation (src-native/child/ops_harden.c), codes 32-45.
  'mask-path': { code: 32, stage: 'security', s: ['path', 'nullDevice'], n: ['slot'] },
  'readonly-path': { code: 33, stage: 'security', s: ['path'] },
  rlimit: { code: 34, stage: 'security', n: ['softLo', 'softHi', 'hardLo', 'hardHi'], mflags: 'resource' },
  sysctl: { code: 36, stage: 'security', s: ['path', 'value'] },
  chown: { code: 37, stage: 'device', s: ['path'], n: ['uid', 'gid'] },
  'root-readonly': { code: 38, stage: 'rootfs' },
  seccomp: { code: 50, stage: 'security', s: ['bpf'], n: ['instructions', 'flags'] },
  // The root, kept (options.keep).
  'root-upper-dir': { code: 60, stage: 'rootfs', s: ['dir', 'attach?'] },
  // Exec into a running container (src-native/child/ops_join.c), codes 70-79.
  join: { code: 70, stage: 'prepare', n: ['fd'], mflags: 'nstypes' },
  'enter-root': { code: 71, stage: 'pivot', n: ['fd'] },
  // A pseudo-terminal from the container's devpts (src-native/child/ops_tty.c), codes 80-89.
  'tty-open': { code: 80, stage: 'device', s: ['path'], n: ['socket', 'root', 'cols', 'rows'], mflags: 'uid' },
  // init: true (src-native/child/ops_init.c), codes 90-99.
  'exec-init': { code: 90, stage: 'exec', s: ['init', 'args', 'env?'], n: ['#args', '#env', 'umask'] },
  // Namespaces again (codes 100 on).
  'ipcns-fresh': { code: 100, stage: 'prepare' },
  // A mount inside the detached root, before the container's namespace (codes 110 on).
  'mount-detached': { code: 110, stage: 'mount', s: ['source?', 'target', 'fstype', 'data?'], mflags: 'attrs' },
  'mask-tmpfs': { code: 111, stage: 'security', n: ['slot'] },
};

/** Bit i set: s[i] is a required string (resp. optional), as the native table says it. */
export function stringMasks(shape: AnyOpShape): { required: number; optional: number } {
  let required = 0;
  let optional = 0;
  (shape.s ?? []).forEach((f, i) => {
    if (f.endsWith('?')) optional |= 1 << i;
    else required |= 1 << i;
  });
  return { required, optional };
}

export const STAGE_INDEX: ReadonlyMap<string, number> = new Map(STAGES.map((s, i) => [s, i]));
