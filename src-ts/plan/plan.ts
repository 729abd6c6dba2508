/**
 * Spec → Plan: the ordered list of steps the child performs between clone and execve, as data.
 * Pure and deterministic: everything that can be decided without the kernel is decided here,
 * where it is unit-tested without root. src-native/child.c is a small interpreter of this list.
 */
import { attrsOf, MOUNT_ATTR, MS } from '../spec/mounts.js';
import { INIT_PATH, joinOps } from './joins.js';
import type { Spec } from '../spec/spec.js';
import { PTMX_PATH } from '../spec/tty.js';
import { CLONE, FD, MAX_SLOTS, type ChildStage } from './wire.js';

/** What the plan needs to know about the host (gathered once by ../container/host.ts). */
export interface HostInfo {
  /** How /sys/fs/cgroup is mounted on the host. */
  cgroup: 'v2' | 'v1' | 'hybrid' | 'none';
  /** Content for the container's /etc/resolv.conf. */
  resolvConf: string;
  /**
   * Where the addon copies a container's mount namespace from (native mountMode()): 'base', its
   * empty base namespace (the root is built before the copy and entered with chroot), or 'host'
   * (a copy of the host's, then pivot_root).
   */
  mountMode: 'base' | 'host';
  /**
   * Entries of BUILTIN_PROC_ENTRIES this kernel's proc does not have (./host.ts): a mask on one is
   * a lookup that finds nothing (~4 us of the child's), left out of the plan.
   */
  procAbsent?: readonly string[];
}

/**
 * Masked paths of runc's list that only code built into the kernel makes, at boot (so one absent
 * now never appears): /proc/kcore (CONFIG_PROC_KCORE), /proc/latency_stats (CONFIG_LATENCYTOP),
 * /proc/timer_stats (gone since Linux 4.11), /proc/sched_debug (in debugfs since 5.13). Not
 * /proc/asound or /proc/scsi, which a module loaded later makes.
 */
export const BUILTIN_PROC_ENTRIES: readonly string[] = ['/proc/kcore', '/proc/latency_stats', '/proc/timer_stats', '/proc/sched_debug'];

/** What the parent compiled for the plan (the seccomp filter: ../security/seccomp.ts, cached). */
export interface Compiled {
  seccomp?: { bpf: Uint8Array; flags: number };
}

/** What ../spec/check.ts found on disk, that changes the plan. */
export interface FsFacts {
  /** Per spec.mounts index: true when a bind source is a file (the target is created as a file). */
  bindSourceIsFile: boolean[];
  /** With spec.init: the host path of scratch-init (../container/join.ts initBinary()). */
  initBinary?: string;
}

type Base = { stage: ChildStage };
/**
 * One step of the child, as data. Each kind is a line of the op table (./ops.ts and
 * src-native/wire/ops.h), which says how its fields are encoded; each does one thing, and the
 * plan chooses between variants (the root built detached or in place, pivot_root or chroot).
 */
export type Op = Base &
  (
    | { kind: 'clone-tree'; source: string; recursive: boolean; slot: number; ignoreMissing: boolean }
    /** Join the namespace the parent sends at MSG_FDS index `fd` (FD.*); nstype: its CLONE_NEW* flag. */
    | { kind: 'setns'; fd: number; nstype: number }
    /** A network namespace of the container's own, lo up: a pooled one, or made by the child. */
    | { kind: 'netns-fresh' }
    | { kind: 'ipcns-fresh' }
    | { kind: 'unshare'; flags: number }
    | { kind: 'make-private'; flags: number }
    /** The upper tmpfs, attached on `dir` (a copy of the host's mount namespace); sizeKiB 0: no size=. */
    | { kind: 'root-upper'; dir: string; sizeKiB: number }
    /** The upper tmpfs, detached (before the container's mount namespace is made). */
    | { kind: 'root-upper-detached'; sizeKiB: number }
    /**
     * options.keep: the host directory `dir` (upper/ and work/ in it) instead of the tmpfs, so the
     * container's writes outlive it; detached, or (host mode) attached on `attach` at once.
     */
    | { kind: 'root-upper-dir'; dir: string; attach?: string }
    /** The overlay on `lowers` (top first; the first is root-upper's dir), attached there. */
    | { kind: 'root-overlay'; lowers: string[]; userxattr: boolean }
    /** The overlay on `lowers` (top first) by O_PATH fds, detached. */
    | { kind: 'root-overlay-detached'; lowers: string[]; userxattr: boolean }
    | { kind: 'attach-root' }
    | {
        kind: 'mount';
        source: string;
        target: string;
        fstype: string;
        flags: number;
        data: string;
        /** Attach the file system the parent sends at this MSG_FDS index instead, when it sends one. */
        premounted?: number;
        /** With premounted: its MOUNT_ATTR_* (the same options, as mount_setattr takes them). */
        premountedAttrs?: number;
      }
    /**
     * A mount in the root while it is still detached (base mode, before the container's mount
     * namespace exists): fsopen with the data option by option, fsmount with `attrs`
     * (MOUNT_ATTR_*), moved onto the target. Run ahead with the root when it is pooled.
     */
    | { kind: 'mount-detached'; source: string; target: string; fstype: string; attrs: number; data: string }
    | { kind: 'bind'; source: string; target: string; recursive: boolean; attrs: number; propagation: number; file: boolean; ignoreMissing: boolean; slot: number }
    | { kind: 'mknod'; path: string; mode: number; major: number; minor: number; hostPath: string; bindFallback: boolean }
    | { kind: 'symlink'; target: string; path: string }
    /** existing: into the file an earlier op made there (truncated): never through a symlink, never a new file. */
    | { kind: 'write-file'; path: string; content: string; mode: number; existing?: true }
    | { kind: 'mkdir'; path: string; file?: true }
    | { kind: 'sethostname'; hostname: string }
    | { kind: 'pivot-root' }
    | { kind: 'chroot' }
    | { kind: 'setuser'; uid: number; gid: number; groups: number[] }
    | { kind: 'chdir'; path: string }
    | { kind: 'resolve-exec'; file: string; searchPath: string | null }
    /** prctl(PR_SET_NO_NEW_PRIVS): execve never grants privileges again (setuid bits, file caps). */
    | { kind: 'no-new-privs' }
    /** seccomp(SECCOMP_SET_MODE_FILTER, flags) with the compiled program (struct sock_filter[]). */
    | { kind: 'seccomp'; bpf: Uint8Array; instructions: number; flags: number }
    /** Drop from the bounding set every capability up to `last` (cap_last_cap) not in `keep`. */
    | { kind: 'cap-bounding'; keep: number; last: number }
    /** prctl(PR_SET_KEEPCAPS): the permitted set survives the setuser to a non-root uid. */
    | { kind: 'keep-caps' }
    /** capset(2) of the final sets, after setuser (masks split in 32-bit words, as the kernel takes them). */
    | { kind: 'capset'; effectiveLo: number; effectiveHi: number; permittedLo: number; permittedHi: number; inheritable: number }
    /** The ambient set: cleared, then each capability of the mask raised. */
    | { kind: 'cap-ambient'; ambient: number }
    /**
     * A file: the container's /dev/null (nullDevice) bound over it; a directory: an empty
     * read-only tmpfs (mask-tmpfs's in `slot`, or NO_SLOT: one made at the first). Missing: skipped.
     */
    | { kind: 'mask-path'; path: string; nullDevice: string; slot: number }
    /** The empty read-only tmpfs that masks directories, made (detached) into `slot`. */
    | { kind: 'mask-tmpfs'; slot: number }
    /** The path bound onto itself, read-only, recursively. Missing: skipped. */
    | { kind: 'readonly-path'; path: string }
    /** prlimit64; the limits split in 32-bit halves (RLIM_INFINITY is 2^64 - 1). */
    | { kind: 'rlimit'; resource: number; softLo: number; softHi: number; hardLo: number; hardHi: number }
    /** `value` written to `path` (under proc/sys). */
    | { kind: 'sysctl'; path: string; value: string }
    | { kind: 'chown'; path: string; uid: number; gid: number }
    /** The overlay mount read-only (not what is mounted in it). */
    | { kind: 'root-readonly' }
    /** Wait for the parent at this point (EV_SYNC, Child.resume). */
    | { kind: 'sync'; point: number }
    | { kind: 'ready' }
    | { kind: 'wait-start' }
    | { kind: 'exec'; args: string[]; env: string[]; umask: number }
    /** init: true. execve(init, [init, '--', <resolve-exec's path>, ...args], env). */
    | { kind: 'exec-init'; init: string; args: string[]; env: string[]; umask: number }
    /** Exec into a running container (./exec.ts): setns(pidfd at MSG_FDS index `fd`, nstypes) at once. */
    | { kind: 'join'; fd: number; nstypes: number }
    /** chroot to the directory at MSG_FDS index `fd` (/proc/PID/root of the container's PID 1). */
    | { kind: 'enter-root'; fd: number }
    /**
     * The pty pair from the ptmx at `path` (resolved beneath the MSG_FDS index `root`, or
     * TTY_BUILT_ROOT), the slave as fds 0-2 and controlling terminal of a new session, sized
     * cols x rows, owned by `uid` (0: left as devpts made it, root's); the master sent over the
     * console socket at MSG_FDS index `socket`.
     */
    | { kind: 'tty-open'; path: string; socket: number; root: number; cols: number; rows: number; uid: number }
  );

/** tty-open's `root`: the root this plan builds (not an fd the parent sent). */
export const TTY_BUILT_ROOT = 0xffffffff;
/** mask-path's `slot` when no mask-tmpfs made one: the child makes the tmpfs at the first directory. */
export const NO_SLOT = 0xffffffff;
/** The plan fd of a container's console socket: after the joined namespaces' fds (Child's `fds`, in that order; an exec's is EXEC_FD.TTY). */
export const ttySocketFd = (spec: Pick<Spec, 'joins'>): number => FD.PLAN0 + spec.joins.length;

export interface Plan {
  /** Namespaces clone3 must make (pid, time: they apply to the child only when made at clone). */
  cloneFlags: number;
  detached: boolean;
  /** Time every setup op in the child (Container.setupTrace()). */
  trace: boolean;
  /** The mount namespace is a copy of the addon's base namespace (HostInfo.mountMode). */
  base: boolean;
  ops: Op[];
}

const S_IFCHR = 0o020000;
const S_IFMT = { c: S_IFCHR, b: 0o060000, p: 0o010000 } as const;
const U32 = 0x1_0000_0000n;

/** The default device nodes of runc and crun: name, major, minor. */
export const DEFAULT_DEVICES: readonly (readonly [string, number, number])[] = [
  ['null', 1, 3],
  ['zero', 1, 5],
  ['full', 1, 7],
  ['random', 1, 8],
  ['urandom', 1, 9],
  ['tty', 5, 0],
];

/** The /dev symlinks: link name → target. */
export const DEFAULT_DEV_LINKS: readonly (readonly [string, string])[] = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
  ['ptmx', 'pts/ptmx'],
  ['core', '/proc/kcore'],
];

/** Container path → path relative to the new root ('/dev/pts' → 'dev/pts'). */
const rel = (p: string) => p.replace(/^\/+/, '');

/** Namespaces made by clone3 itself: a new pid or time namespace holds only children made after. */
export function cloneFlagsOf(ns: Spec['namespaces']): number {
  let f = 0;
  if (ns.pid) f |= CLONE.NEWPID;
  if (ns.time) f |= CLONE.NEWTIME;
  return f;
}

/**
 * Namespaces the child makes with unshare(2), as its first op. Same result as passing them to
 * clone3, but the kernel's work (a new network namespace is the slowest, ~1 ms) runs on the
 * child's CPU instead of blocking the Node event loop inside the clone3 call.
 */
export function unshareFlagsOf(ns: Spec['namespaces']): number {
  let f = CLONE.NEWNS;
  if (ns.network) f |= CLONE.NEWNET;
  if (ns.ipc) f |= CLONE.NEWIPC;
  if (ns.uts) f |= CLONE.NEWUTS;
  if (ns.cgroup) f |= CLONE.NEWCGROUP;
  if (ns.user) f |= CLONE.NEWUSER;
  return f;
}

/** A mask above 32 bits as capset(2)'s two words: { effectiveLo, effectiveHi }. */
function words<K extends string>(name: K, mask: number): Record<`${K}Lo` | `${K}Hi`, number> {
  return { [`${name}Lo`]: mask % 0x100000000, [`${name}Hi`]: Math.floor(mask / 0x100000000) } as Record<`${K}Lo` | `${K}Hi`, number>;
}

export function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost${hostname ? ` ${hostname}` : ''}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;
}

export function buildPlan(spec: Spec, host: HostInfo, facts: FsFacts, compiled: Compiled = {}): Plan {
  // A copy of the base mount namespace holds nothing of the host: whatever the container needs of
  // the host is taken before it is made, while the child still shares the host's namespace. The
  // host trees of bind mounts are cloned first; the root (the overlay on the rootfs) is built there
  // too, detached, and attached after. User namespaces need the host's copy: mounting proc there
  // needs a fully visible proc in the namespace, which a copy of the base has not.
  const base = host.mountMode === 'base' && !spec.namespaces.user;
  const clones: Op[] = [];
  const cloneSlot = (source: string, recursive: boolean, ignoreMissing: boolean): number => {
    const slot = clones.length;
    if (slot >= MAX_SLOTS) throw new RangeError(`more than ${MAX_SLOTS} slots`); // buildSpec rejects these first
    clones.push({ stage: 'mount', kind: 'clone-tree', source, recursive, slot, ignoreMissing });
    return slot;
  };
  // A network namespace of its own comes from the helper thread's pool when one is ready (with a
  // sysfs made in it); 'shared' joins the process's one shared namespace.
  const freshNet = spec.namespaces.network && !spec.sharedNetwork;
  // The IPC namespace comes pooled with the network one (made ahead on the helper thread), with an
  // mqueue made in it.
  const pooledIpc = freshNet && spec.namespaces.ipc;

  // The mounts, in the user's order (step 4 below), but for those built in the detached root.
  const early = base ? detachedDevMounts(spec) : new Set<number>();
  const earlyOps: Op[] = [];
  const mountOps: Op[] = [];
  spec.mounts.forEach((m, i) => {
    if (early.has(i)) {
      earlyOps.push({ stage: 'mount', kind: 'mount-detached', source: m.source, target: rel(m.destination), fstype: m.type, attrs: attrsOf(m.flags), data: m.data });
      return;
    }
    const target = rel(m.destination);
    if (m.type === 'bind') {
      mountOps.push({
        stage: 'mount',
        kind: 'bind',
        source: m.source,
        target,
        recursive: m.recursive,
        attrs: m.attrs,
        propagation: m.propagation,
        file: facts.bindSourceIsFile[i] ?? false,
        ignoreMissing: false,
        slot: cloneSlot(m.source, m.recursive, false),
      });
    } else if (m.type === 'cgroup' && !(spec.namespaces.cgroup && host.cgroup === 'v2')) {
      // Without a cgroup namespace, or on a v1/hybrid host, a fresh cgroup mount cannot show the
      // container its own place in the hierarchy: like libcontainer, bind the host's tree instead,
      // recursively and with the entry's attributes (read-only by default). A cgroup of the
      // container's own comes with cgroup management.
      if (host.cgroup !== 'none')
        mountOps.push({
          stage: 'mount',
          kind: 'bind',
          source: '/sys/fs/cgroup',
          target,
          recursive: true,
          attrs: m.attrs,
          propagation: 0,
          file: false,
          ignoreMissing: true,
          slot: cloneSlot('/sys/fs/cgroup', true, true),
        });
    } else {
      const op: Op = {
        stage: 'mount',
        kind: 'mount',
        source: m.source,
        target,
        fstype: m.type === 'cgroup' ? 'cgroup2' : m.type,
        flags: m.flags,
        data: m.data,
      };
      if (m.type === 'sysfs' && freshNet) {
        op.premounted = FD.POOLED_SYSFS;
        op.premountedAttrs = attrsOf(m.flags);
      } else if (m.type === 'mqueue' && pooledIpc) {
        op.premounted = FD.POOLED_MQUEUE; // made in that IPC namespace, when it is pooled
        op.premountedAttrs = attrsOf(m.flags);
      }
      mountOps.push(op);
    }
  });

  // init: true: scratch-init's host file, cloned like a bind source.
  if (spec.init && facts.initBinary === undefined) throw new RangeError('init: true needs facts.initBinary');
  const initSlot = spec.init ? cloneSlot(facts.initBinary!, false, false) : -1;

  // The namespaces clone3 did not make.
  const nsOps: Op[] = [];
  if (base) nsOps.push({ stage: 'prepare', kind: 'setns', fd: FD.BASE_MNTNS, nstype: CLONE.NEWNS });
  if (freshNet) nsOps.push({ stage: 'network', kind: 'netns-fresh' });
  else if (spec.sharedNetwork) nsOps.push({ stage: 'network', kind: 'setns', fd: FD.SHARED_NETNS, nstype: CLONE.NEWNET });
  // Joined namespaces (network, ipc, uts, cgroup), before any mount is made in them (mqueue,
  // sysfs, cgroup); the pid one is the plan's first op (born in it).
  const joined = joinOps(spec.joins);
  nsOps.push(...joined.ns);
  if (pooledIpc) nsOps.push({ stage: 'prepare', kind: 'ipcns-fresh' });
  nsOps.push({ stage: 'prepare', kind: 'unshare', flags: unshareFlagsOf(spec.namespaces) & ~CLONE.NEWNET & ~(pooledIpc ? CLONE.NEWIPC : 0) });

  const lowers = spec.layers;
  const sizeKiB = spec.root.writableKiB;
  // A cgroup needs no op: on v2 the child is born in it (CLONE_INTO_CGROUP); on v1 the parent moves
  // it in right after the clone, while it sets up (src-ts/container/container.ts).
  const ops: Op[] = [...clones];
  ops.unshift(...joined.born);
  if (base) {
    // 2. The new root, detached: overlay(lower = rootfs, upper = tmpfs, or the kept directory).
    ops.push(spec.upperDir === null ? { stage: 'rootfs', kind: 'root-upper-detached', sizeKiB } : { stage: 'rootfs', kind: 'root-upper-dir', dir: spec.upperDir });
  } else {
    // 0, 1. The namespaces, the mount namespace a copy of the host's; nothing mounted from here
    // on propagates back to the host. 2. The new root, built on the rootfs directory.
    ops.push(...nsOps);
    ops.push({ stage: 'rootfs', kind: 'make-private', flags: MS.REC | MS.PRIVATE });
    ops.push(
      spec.upperDir === null
        ? { stage: 'rootfs', kind: 'root-upper', dir: spec.rootfs, sizeKiB }
        : { stage: 'rootfs', kind: 'root-upper-dir', dir: spec.upperDir, attach: spec.rootfs },
    );
  }
  // Until the overlay is made, ops write into its empty upper layer: what they create covers
  // whatever the image has at those paths.

  // 3. /etc: what the runtime adds to a FROM-scratch image. Written before any mount, so that a
  // user's mount on /etc or on one of these files covers it (and a bind of a host directory at
  // /etc is never written to).
  ops.push({ stage: 'file', kind: 'mkdir', path: 'etc' });
  // A joined UTS namespace whose hostname is unknown (a path join): no /etc/hostname.
  const named: Extract<Op, { kind: 'write-file' }>[] = [];
  if (spec.hostname !== '') named.push({ stage: 'file', kind: 'write-file', path: 'etc/hostname', content: `${spec.hostname}\n`, mode: 0o644 });
  named.push({ stage: 'file', kind: 'write-file', path: 'etc/hosts', content: hostsFile(spec.hostname), mode: 0o644 });
  // With a tmpfs upper layer in the base mode, the part of the plan before the namespaces is
  // built ahead on the helper thread (root_pool.h). The hostname (the id, by default) is the only
  // thing in it that changes from one container to the next: here the files are made empty, and
  // their content is written after that part (below), so that a root built ahead serves any
  // container of these options, whatever its id.
  const pooled = base && spec.upperDir === null;
  if (pooled) for (const op of named) ops.push({ ...op, content: '' });
  else ops.push(...named);
  ops.push({ stage: 'file', kind: 'write-file', path: 'etc/resolv.conf', content: host.resolvConf, mode: 0o644 });
  ops.push({ stage: 'file', kind: 'symlink', target: '/proc/mounts', path: 'etc/mtab' });
  // Mount points that are not inside an earlier mount of the plan: made in the upper layer too.
  spec.mounts.forEach((m, i) => {
    const covered = spec.mounts.slice(0, i).some((e) => m.destination.startsWith(`${e.destination}/`));
    if (covered) return;
    const file = m.type === 'bind' && (facts.bindSourceIsFile[i] ?? false);
    ops.push({ stage: 'rootfs', kind: 'mkdir', path: rel(m.destination), ...(file ? { file: true as const } : {}) });
  });
  // init: true. scratch-init, bound read-only from the host onto /dev/init: in the /dev tmpfs when
  // there is one (the bind makes the file there), else on a file made in the upper layer.
  if (initSlot >= 0 && !spec.mounts.some((m) => INIT_PATH.startsWith(`${m.destination}/`)))
    ops.push({ stage: 'rootfs', kind: 'mkdir', path: rel(INIT_PATH), file: true });
  // 5. Devices and /dev links, when /dev is a tmpfs of ours (else the user chose their own /dev).
  const devOps = deviceOps(spec);
  // In the base mode they go into the detached root with its /dev mounts (detachedDevMounts), unless
  // a mount that stays in its place is on one of their paths.
  const stays = spec.mounts.filter((_, i) => !early.has(i)).map((m) => m.destination);
  if (initSlot >= 0) stays.push(INIT_PATH);
  const devEarly = early.size > 0 && devOps.every((op) => !stays.some((d) => overlaps(d, '/' + (op as { path: string }).path)));
  // In the base mode the tmpfs that masks directories is made with the detached root, in the slot
  // after the bind sources' when one is left (else the child makes it at the first mask).
  const maskSlot = base && spec.maskedPaths.length > 0 && clones.length < MAX_SLOTS ? clones.length : NO_SLOT;

  if (base) {
    ops.push({ stage: 'rootfs', kind: 'root-overlay-detached', lowers, userxattr: spec.namespaces.user });
    // The /dev mounts and nodes, in the root while it is detached: with a pooled root, the helper
    // thread made them ahead (src-native/parent/root_pool.h).
    ops.push(...earlyOps);
    ops.push(...mountPointsIn(early, spec, facts, initSlot >= 0));
    if (devEarly) ops.push(...devOps);
    // The masks' tmpfs too, made with the root (a superblock of its own, ~20 us of the child's).
    if (maskSlot !== NO_SLOT) ops.push({ stage: 'security', kind: 'mask-tmpfs', slot: maskSlot });
    // The container's own: /etc/hostname and /etc/hosts into the files made empty above.
    if (pooled) for (const op of named) ops.push({ ...op, existing: true });
    // 0, 1. The namespaces, the mount namespace a copy of the base one (no host mount to make
    // private); the root goes on its "/".
    ops.push(...nsOps);
    ops.push({ stage: 'rootfs', kind: 'attach-root' });
  } else {
    ops.push({ stage: 'rootfs', kind: 'root-overlay', lowers, userxattr: spec.namespaces.user });
  }

  // 4. The mounts, in the user's order.
  ops.push(...mountOps);
  if (initSlot >= 0)
    ops.push({
      stage: 'mount',
      kind: 'bind',
      source: facts.initBinary!,
      target: rel(INIT_PATH),
      recursive: false,
      // Read-only: nothing inside can write the host's binary, not even through /proc/1/exe
      // (CVE-2019-5736 is a write to the runtime's binary).
      attrs: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV,
      propagation: 0,
      file: true,
      ignoreMissing: false,
      slot: initSlot,
    });

  if (!devEarly) ops.push(...devOps);

  // 6. Isolation of the file system, once /proc and /sys are mounted and /dev/null made: the
  // sysctls while /proc/sys is writable, then the read-only paths (runc's order), the masks,
  // and the root read-only last (a device parent or mount point may still be made in it before).
  for (const [path, value] of spec.sysctl) ops.push({ stage: 'security', kind: 'sysctl', path, value });
  for (const p of spec.readonlyPaths) ops.push({ stage: 'security', kind: 'readonly-path', path: rel(p) });
  // A path the kernel's proc cannot have is skipped, unless a mount of the user's is on, above or
  // below it (then the mask is for what that mount shows there).
  const absent = (p: string) => host.procAbsent?.includes(p) === true && !spec.mounts.some((m) => m.type !== 'proc' && overlaps(m.destination, p));
  for (const p of spec.maskedPaths) if (!absent(p)) ops.push({ stage: 'security', kind: 'mask-path', path: rel(p), nullDevice: 'dev/null', slot: maskSlot });
  if (spec.root.readonly) ops.push({ stage: 'rootfs', kind: 'root-readonly' });

  // 7. Hostname (lo came up with the network namespace).
  if (spec.namespaces.uts) ops.push({ stage: 'hostname', kind: 'sethostname', hostname: spec.hostname });

  // 7. The terminal, while the root is still an fd to open its ptmx beneath (docs/tty.md).
  if (spec.tty) ops.push(ttyOp(ttySocketFd(spec), TTY_BUILT_ROOT, spec.tty, spec.user.uid));

  // 7. Into the new root; then who and where the process is.
  ops.push({ stage: 'pivot', kind: base ? 'chroot' : 'pivot-root' });
  ops.push(...processOps(spec, compiled));
  if (initSlot >= 0) {
    const exec = ops.pop() as Extract<Op, { kind: 'exec' }>;
    ops.push({ stage: 'exec', kind: 'exec-init', init: INIT_PATH, args: exec.args, env: exec.env, umask: exec.umask });
  }

  return { cloneFlags: cloneFlagsOf(spec.namespaces), detached: spec.detached, trace: spec.trace, base, ops };
}

/** The device nodes and /dev links, when /dev is a tmpfs of ours (else the user chose their own /dev). */
function deviceOps(spec: Spec): Op[] {
  const ops: Op[] = [];
  const devIsOurs = spec.mounts.some((m) => m.destination === '/dev' && m.type === 'tmpfs');
  if (!devIsOurs) return ops;
  const taken = new Set([...spec.mounts.map((m) => m.destination), ...spec.devices.map((d) => d.path)]);
  for (const [name, major, minor] of DEFAULT_DEVICES)
    if (!taken.has(`/dev/${name}`))
      ops.push({
        stage: 'device',
        kind: 'mknod',
        path: `dev/${name}`,
        mode: S_IFCHR | 0o666,
        major,
        minor,
        hostPath: `/dev/${name}`,
        bindFallback: spec.namespaces.user,
      });
  for (const [name, target] of DEFAULT_DEV_LINKS)
    if (!taken.has(`/dev/${name}`)) ops.push({ stage: 'device', kind: 'symlink', target, path: `dev/${name}` });
  // The user's devices (buildSpec allows them only with a /dev tmpfs): parents made first.
  for (const d of spec.devices) {
    const path = rel(d.path);
    const parent = path.slice(0, path.lastIndexOf('/'));
    if (parent !== 'dev') ops.push({ stage: 'device', kind: 'mkdir', path: parent });
    ops.push({ stage: 'device', kind: 'mknod', path, mode: S_IFMT[d.type] | d.fileMode, major: d.major, minor: d.minor, hostPath: '', bindFallback: false });
    if (d.uid !== 0 || d.gid !== 0) ops.push({ stage: 'device', kind: 'chown', path, uid: d.uid, gid: d.gid });
  }
  return ops;
}

/**
 * The mount points, right inside a mount made detached (detachedDevMounts), of the mounts that
 * stay in the user's order (/dev/mqueue, a bind on /dev/fuse, init's /dev/init): made with the
 * detached root as the child would make them at their mount (a directory, or a file for a file
 * bind), so that a pooled root has them too. A mkdir in a fresh tmpfs is ~20 us of the child's.
 */
function mountPointsIn(early: ReadonlySet<number>, spec: Spec, facts: FsFacts, init: boolean): Op[] {
  const dirs = new Set([...early].map((i) => spec.mounts[i]!.destination));
  const points: { path: string; file: boolean }[] = [];
  spec.mounts.forEach((m, i) => {
    if (!early.has(i)) points.push({ path: m.destination, file: m.type === 'bind' && (facts.bindSourceIsFile[i] ?? false) });
  });
  if (init) points.push({ path: INIT_PATH, file: true });
  return points
    .filter((p) => dirs.has(p.path.slice(0, p.path.lastIndexOf('/'))))
    .map((p): Op => ({ stage: 'mount', kind: 'mkdir', path: rel(p.path), ...(p.file ? { file: true as const } : {}) }));
}

/** Mount flags fsmount takes as attributes (MOUNT_ATTR_*): a mount with others is made by mount(2). */
const ATTR_FLAGS = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.NOATIME | MS.STRICTATIME | MS.NODIRATIME | MS.NOSYMFOLLOW | MS.RELATIME;

/** One container path is the other or inside it. */
const overlaps = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);

/**
 * The mounts (spec.mounts indices) made in the root while it is detached, in the base mode: the
 * /dev tmpfs, and the tmpfs and devpts mounts right inside it (/dev/shm, /dev/pts). Their order
 * against the other mounts does not matter, as long as no mount before one of them in the user's
 * order is on, above or below its path; mqueue needs the container's IPC namespace and stays.
 */
export function detachedDevMounts(spec: Pick<Spec, 'mounts'>): Set<number> {
  const out = new Set<number>();
  const m = spec.mounts;
  const ok = (e: Spec['mounts'][number]) => (e.type === 'tmpfs' || e.type === 'devpts') && (e.flags & ~ATTR_FLAGS) === 0;
  const dev = m.findIndex((e) => e.destination === '/dev');
  if (dev < 0 || m[dev]!.type !== 'tmpfs' || !ok(m[dev]!) || m.slice(0, dev).some((e) => overlaps(e.destination, '/dev'))) return out;
  out.add(dev);
  for (let j = dev + 1; j < m.length; j++) {
    const e = m[j]!;
    if (!/^\/dev\/[^/]+$/.test(e.destination) || !ok(e)) continue;
    if (m.slice(0, j).some((b, k) => !out.has(k) && overlaps(b.destination, e.destination))) continue;
    out.add(j);
  }
  return out;
}

/** The tty-open op of a container's plan or an exec's. */
export function ttyOp(socket: number, root: number, size: { cols: number; rows: number }, uid: number): Op {
  return { stage: 'device', kind: 'tty-open', path: PTMX_PATH, socket, root, cols: size.cols, rows: size.rows, uid };
}

/** What of a Spec the process's own ops need: the container's process, or an exec's (./exec.ts). */
export type ProcessSpec = Pick<Spec, 'args' | 'env' | 'cwd' | 'user' | 'umask' | 'capabilities' | 'rlimits' | 'noNewPrivileges'>;

/**
 * The ops after the root is entered, shared by a container's plan and an exec's: the limits, the
 * capabilities, the user and cwd, no_new_privs, the seccomp filter, the binary, the handshake and
 * the exec.
 */
export function processOps(spec: ProcessSpec, compiled: Compiled): Op[] {
  // Capabilities, in the order runc and crun use: the bounding set is cut while the child still
  // has every capability (CAP_SETPCAP), which leaves its effective set whole for what follows;
  // the permitted set is kept across a change to a non-root uid (which would clear it), and the
  // final sets are set after it, the ambient ones last (raising one needs it permitted and
  // inheritable). Only the exec and the handshake come after, which need no capability.
  const caps = spec.capabilities;
  const ops: Op[] = [];
  // The limits before setuser (RLIMIT_NPROC counts at setresuid), while every capability is there.
  for (const r of spec.rlimits)
    ops.push({
      stage: 'security',
      kind: 'rlimit',
      resource: r.resource,
      softLo: Number(r.soft % U32),
      softHi: Number(r.soft / U32),
      hardLo: Number(r.hard % U32),
      hardHi: Number(r.hard / U32),
    });
  // The seccomp filter is the last thing loaded before execve (it must allow what follows). Without
  // no_new_privs, loading one needs CAP_SYS_ADMIN (in effective until capset): then it goes right
  // after the bounding set is cut, before the user switch.
  const seccomp: Op | undefined = compiled.seccomp && {
    stage: 'security',
    kind: 'seccomp',
    bpf: compiled.seccomp.bpf,
    instructions: compiled.seccomp.bpf.length / 8,
    flags: compiled.seccomp.flags,
  };
  ops.push({ stage: 'security', kind: 'cap-bounding', keep: caps.bounding, last: caps.last });
  if (seccomp && !spec.noNewPrivileges) ops.push(seccomp);
  if (spec.user.uid !== 0) ops.push({ stage: 'security', kind: 'keep-caps' });
  ops.push({ stage: 'user', kind: 'setuser', uid: spec.user.uid, gid: spec.user.gid, groups: spec.user.additionalGids });
  ops.push({ stage: 'cwd', kind: 'chdir', path: spec.cwd });
  if (spec.noNewPrivileges) ops.push({ stage: 'user', kind: 'no-new-privs' });
  ops.push({ stage: 'security', kind: 'capset', ...words('effective', caps.effective), ...words('permitted', caps.permitted), inheritable: caps.inheritable });
  ops.push({ stage: 'security', kind: 'cap-ambient', ambient: caps.ambient });

  // 8. Find the binary now, so a missing one fails create(), then wait for start() and exec.
  const pathVar = spec.env.find((e) => e.startsWith('PATH='));
  ops.push({ stage: 'exec', kind: 'resolve-exec', file: spec.args[0]!, searchPath: pathVar ? pathVar.slice(5) : null });
  ops.push({ stage: 'sync', kind: 'ready' });
  ops.push({ stage: 'sync', kind: 'wait-start' });
  if (seccomp && spec.noNewPrivileges) ops.push(seccomp);
  ops.push({ stage: 'exec', kind: 'exec', args: spec.args, env: spec.env, umask: spec.umask });

  return ops;
}

/** The container path an op works on, for error messages ('/dev/pts', '/etc/hosts', …). */
export function opPath(op: Op): string | undefined {
  switch (op.kind) {
    case 'mount':
    case 'mount-detached':
    case 'bind':
      return '/' + op.target;
    case 'clone-tree':
      return op.source;
    case 'mknod':
    case 'symlink':
    case 'write-file':
    case 'mkdir':
    case 'mask-path':
    case 'readonly-path':
    case 'sysctl':
    case 'chown':
    case 'tty-open':
      return '/' + op.path;
    case 'chdir':
      return op.path;
    case 'resolve-exec':
      return op.file;
    case 'exec':
    case 'exec-init':
      return op.args[0];
    default:
      return undefined;
  }
}
