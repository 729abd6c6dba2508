/**
 * Mount descriptors: the OCI `mounts` entry shape, the libcontainer default table, and the parser
 * that turns an entry's options into mount(2) flags, MOUNT_ATTR_* attributes and fs data.
 * Pure: no file system access here.
 */
import { invalid } from '../errors.js';
import { checkKeys, type KeyTable } from './keys.js';

/** An OCI runtime-spec `mounts` entry. */
export interface MountSpec {
  readonly destination: string;
  readonly type?: string;
  readonly source?: string;
  readonly options?: readonly string[];
}

const MOUNT_KEYS = { destination: true, type: true, source: true, options: true } as const satisfies KeyTable<MountSpec>;

const freezeMount = (m: MountSpec): MountSpec =>
  Object.freeze({ ...m, ...(m.options ? { options: Object.freeze([...m.options]) } : {}) });

/**
 * The default mounts of `runc spec` / `crun spec` (libcontainer), in order. Frozen: spread it
 * into your own list to add mounts (`[...defaultMounts, { destination: '/data', … }]`).
 */
export const defaultMounts: readonly MountSpec[] = Object.freeze(
  [
    { destination: '/proc', type: 'proc', source: 'proc', options: [] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ].map(freezeMount),
);

// mount(2) flags (linux/mount.h)
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  REC: 0x4000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
  LAZYTIME: 0x2000000,
} as const;

// mount_setattr(2) attributes, for bind mounts made with open_tree + move_mount.
export const MOUNT_ATTR = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  NOATIME: 0x10,
  STRICTATIME: 0x20,
  NODIRATIME: 0x80,
  NOSYMFOLLOW: 0x200000,
} as const;

const SET_FLAGS: Record<string, number> = {
  ro: MS.RDONLY,
  nosuid: MS.NOSUID,
  nodev: MS.NODEV,
  noexec: MS.NOEXEC,
  sync: MS.SYNCHRONOUS,
  dirsync: MS.DIRSYNC,
  mand: MS.MANDLOCK,
  noatime: MS.NOATIME,
  nodiratime: MS.NODIRATIME,
  relatime: MS.RELATIME,
  strictatime: MS.STRICTATIME,
  lazytime: MS.LAZYTIME,
  nosymfollow: MS.NOSYMFOLLOW,
};
const ATIME = MS.NOATIME | MS.RELATIME | MS.STRICTATIME;
const CLEAR_FLAGS: Record<string, number> = {
  rw: MS.RDONLY,
  suid: MS.NOSUID,
  dev: MS.NODEV,
  exec: MS.NOEXEC,
  async: MS.SYNCHRONOUS,
  nomand: MS.MANDLOCK,
  atime: MS.NOATIME,
  diratime: MS.NODIRATIME,
  norelatime: MS.RELATIME,
  nostrictatime: MS.STRICTATIME,
  nolazytime: MS.LAZYTIME,
  symfollow: MS.NOSYMFOLLOW,
};
const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE,
  shared: MS.SHARED,
  rshared: MS.SHARED,
  slave: MS.SLAVE,
  rslave: MS.SLAVE,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE,
};
/** Options runc knows that scratchbox does not do (yet). */
const UNSUPPORTED = new Set(['tmpcopyup', 'idmap', 'ridmap', 'remount', 'move']);

/** Data options each file system accepts (passed to mount(2) as its data string). */
const FS_DATA: Record<string, ReadonlySet<string>> = {
  proc: new Set(['hidepid', 'subset', 'gid']),
  tmpfs: new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'huge', 'mpol', 'noswap']),
  devpts: new Set(['newinstance', 'ptmxmode', 'mode', 'gid', 'uid', 'max']),
  mqueue: new Set(),
  sysfs: new Set(),
  cgroup: new Set(),
  cgroup2: new Set(['nsdelegate', 'memory_recursiveprot', 'favordynmods']),
  bind: new Set(),
};

export const MOUNT_TYPES: readonly string[] = Object.freeze(Object.keys(FS_DATA));

export interface ParsedMount {
  destination: string;
  /** 'bind' for bind mounts (type 'bind', or any type with a bind/rbind option). */
  type: string;
  source: string;
  /** mount(2) flags for a new file system. */
  flags: number;
  /** Data string for a new file system, e.g. 'mode=755,size=65536k'. */
  data: string;
  /** Bind mounts: recursive (rbind), and the MOUNT_ATTR_* to set on every mount in the tree. */
  recursive: boolean;
  attrs: number;
  /** MS_PRIVATE | MS_SLAVE | MS_SHARED | MS_UNBINDABLE or 0. */
  propagation: number;
}

/** Normalises an absolute container path; rejects relative ones and any '..' or '.' component. */
export function normalizeDestination(dest: unknown, option: string): string {
  if (typeof dest !== 'string' || dest.length === 0) throw invalid(option, 'must be a non-empty string');
  if (dest.includes('\0')) throw invalid(option, 'contains a NUL byte');
  if (!dest.startsWith('/')) throw invalid(option, `${JSON.stringify(dest)} is not an absolute path`, 'EINVAL', dest);
  const parts = dest.split('/').filter((p) => p.length > 0);
  for (const p of parts)
    if (p === '..' || p === '.')
      throw invalid(option, `${JSON.stringify(dest)} has a '${p}' component`, 'EINVAL', dest);
  if (parts.length === 0) throw invalid(option, 'cannot mount over the container root "/"', 'EINVAL', dest);
  const norm = '/' + parts.join('/');
  if (norm.length > 1024) throw invalid(option, 'path too long', 'ENAMETOOLONG', dest);
  return norm;
}

/** MS_* flags of a new mount → its MOUNT_ATTR_* (for mount_setattr): the one mapping of the two. */
export function attrsOf(flags: number): number {
  let a = 0;
  if (flags & MS.RDONLY) a |= MOUNT_ATTR.RDONLY;
  if (flags & MS.NOSUID) a |= MOUNT_ATTR.NOSUID;
  if (flags & MS.NODEV) a |= MOUNT_ATTR.NODEV;
  if (flags & MS.NOEXEC) a |= MOUNT_ATTR.NOEXEC;
  if (flags & MS.NOATIME) a |= MOUNT_ATTR.NOATIME;
  if (flags & MS.STRICTATIME) a |= MOUNT_ATTR.STRICTATIME;
  if (flags & MS.NODIRATIME) a |= MOUNT_ATTR.NODIRATIME;
  if (flags & MS.NOSYMFOLLOW) a |= MOUNT_ATTR.NOSYMFOLLOW;
  return a;
}

/** Parsed frozen entries (defaultMounts and any the user froze): they cannot change, parse once. */
const parsedFrozen = new WeakMap<MountSpec, ParsedMount>();

/** Parses one OCI mount entry. Throws ContainerError (stage 'validate') on anything unknown. */
export function parseMount(m: MountSpec, index: number): ParsedMount {
  const frozen = m !== null && typeof m === 'object' && Object.isFrozen(m) && (m.options === undefined || Object.isFrozen(m.options));
  const hit = frozen ? parsedFrozen.get(m) : undefined;
  if (hit) return hit;
  const parsed = Object.freeze(parseMountUncached(m, index));
  if (frozen) parsedFrozen.set(m, parsed);
  return parsed;
}

function parseMountUncached(m: MountSpec, index: number): ParsedMount {
  const at = `mounts[${index}]`;
  if (m === null || typeof m !== 'object') throw invalid(at, 'must be an object');
  checkKeys(m, MOUNT_KEYS, at, 'mount field');
  const destination = normalizeDestination(m.destination, `${at}.destination`);
  const options = m.options ?? [];
  if (!Array.isArray(options)) throw invalid(`${at}.options`, 'must be an array of strings');
  let type = m.type ?? (options.includes('bind') || options.includes('rbind') ? 'bind' : undefined);
  if (typeof type !== 'string') throw invalid(`${at}.type`, 'is required (or give a bind/rbind option)');
  let flags = 0;
  let bind = type === 'bind';
  let recursive = false;
  let propagation = 0;
  const data: string[] = [];
  for (const [j, opt] of options.entries()) {
    const where = `${at}.options[${j}]`;
    if (typeof opt !== 'string' || opt.length === 0 || opt.includes('\0') || opt.includes(','))
      throw invalid(where, `${JSON.stringify(opt)} is not a single mount option`);
    if (opt in SET_FLAGS) {
      // relatime, noatime and strictatime are one setting: the last one given wins.
      if (ATIME & SET_FLAGS[opt]!) flags &= ~ATIME;
      flags |= SET_FLAGS[opt]!;
    }
    else if (opt in CLEAR_FLAGS) flags &= ~CLEAR_FLAGS[opt]!;
    else if (opt === 'bind' || opt === 'rbind') {
      bind = true;
      recursive = opt === 'rbind';
    } else if (opt in PROPAGATION) propagation = PROPAGATION[opt]!;
    else if (UNSUPPORTED.has(opt)) throw invalid(where, `mount option '${opt}' is not supported by scratchbox`, 'ENOTSUP');
    else {
      const key = opt.split('=', 1)[0]!;
      const known = FS_DATA[type];
      if (!known) throw invalid(`${at}.type`, `unsupported mount type '${type}' (supported: ${MOUNT_TYPES.join(', ')})`);
      if (!known.has(key)) throw invalid(where, `unknown mount option '${opt}' for type '${type}'`);
      data.push(opt);
    }
  }
  if (bind) type = 'bind';
  if (!(type in FS_DATA)) throw invalid(`${at}.type`, `unsupported mount type '${type}' (supported: ${MOUNT_TYPES.join(', ')})`);
  const source = m.source ?? type;
  if (typeof source !== 'string' || source.includes('\0')) throw invalid(`${at}.source`, 'must be a string');
  if (bind && !source.startsWith('/'))
    throw invalid(`${at}.source`, `bind source ${JSON.stringify(source)} is not an absolute host path`, 'EINVAL', source);
  return {
    destination,
    type,
    source,
    flags,
    data: data.join(','),
    recursive,
    attrs: attrsOf(flags),
    propagation,
  };
}
