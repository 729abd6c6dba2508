/**
 * The compiled addon (src-native/addon.cc), loaded through node-gyp-build: a prebuild from
 * prebuilds/ when one matches, else the local build in build/Release.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeChild {
  /** Host pid of the container's process. */
  readonly pid: number;
  /** Parent ends of 'pipe' stdio, -1 for the others. */
  readonly stdio: readonly [number, number, number];
  /** Sends MSG_START: 0 or -errno (-EPROTO when the child is not waiting for it). */
  start(): number;
  /** Sends MSG_RESUME for a sync point (EV_SYNC): 0 or -errno. err > 0 makes the child fail with it. */
  resume(point: number, err?: number): number;
  /** pidfd_send_signal: 0 or -errno (-ESRCH once the process has been reaped). */
  kill(signal: number): number;
  /** With the trace header flag: [t0, end of op 0, …] in ns, CLOCK_MONOTONIC; else empty. */
  trace(): Float64Array;
  /** Whether the process's poll handles (sync socket, pidfd) keep the event loop alive (default: they do). */
  ref(): void;
  unref(): void;
}

export interface NativeConstants {
  readonly [name: string]: number;
}

/** One line of the native op table (src-native/wire/ops.h). */
export interface NativeOpRow {
  code: number;
  name: string;
  stage: number;
  required: number;
  optional: number;
}

/** The addon's settings (src-native/parent/settings.h): only before the first container. */
export interface NativeSettings {
  /** Fresh network namespaces made ahead of need (0: none; at most 64). Default 2. */
  netnsPool?: number;
  /** Copy containers' mount namespaces from an empty base one when the kernel can. Default true. */
  baseMountNamespace?: boolean;
}

export interface NativeAddon {
  /**
   * `fds`: given to the child at MSG_FDS indexes FD.PLAN0 on, for ops that name them. `cgroupFd`:
   * a cgroup v2 directory the child is born in (clone3 CLONE_INTO_CGROUP); -1 or absent: none.
   */
  Child: new (
    plan: Uint8Array,
    stdio: readonly [number, number, number],
    onEvent: (event: number, a: number, b: number, c: number) => void,
    fds?: readonly number[],
    cgroupFd?: number,
  ) => NativeChild;
  constants: NativeConstants;
  opTable: readonly NativeOpRow[];
  /**
   * Throws once a container has been made (or the helper thread or base namespace exist); with
   * ifNotFrozen, does nothing then instead (the environment's defaults, applied at load).
   */
  configure(settings: NativeSettings, ifNotFrozen?: boolean): void;
  /**
   * 'base' when containers get a copy of the addon's base mount namespace (one empty read-only
   * tmpfs) and chroot into their root; 'host' when they get a copy of the host's and pivot_root
   * (the base cannot be made, SCRATCHBOX_BASE_MNTNS=0, or a user namespace).
   */
  mountMode(): 'base' | 'host';
  /**
   * Loads a BPF_PROG_TYPE_CGROUP_DEVICE program (struct bpf_insn[], src-ts/cgroup/device-filter.ts)
   * and attaches it to the cgroup v2 directory `cgroupFd`. Throws { errno, syscall: 'bpf' }.
   */
  attachDeviceFilter(cgroupFd: number, insns: Uint8Array): void;
  /**
   * Pooled roots (src-native/parent/root_pool.h): the helper thread runs the first ops of this
   * plan (bind sources' trees, the upper tmpfs and its files, the overlay, /dev and the masks'
   * tmpfs in it) ahead, for the next container whose plan starts the same way (its id, hostname
   * and anything after those ops may differ). Only when the last two containers spawned had that
   * prefix; no effect for a plan that does not start so.
   */
  prepareRoot(plan: Uint8Array): void;
  /**
   * Once no container was spawned for 2 s: drops the roots built ahead that wait for one (each
   * keeps its layers' and bind sources' file systems in use). True while roots are still on
   * their way: ask again later.
   */
  expireRoots(): boolean;
  /**
   * How many roots were built ahead, taken by a container, dropped (unused, stale, moved on disk),
   * and not built when asked for (most of the last ones were wasted: root_pool.h).
   */
  rootPool(): { built: number; taken: number; dropped: number; skipped: number };
  /** The network namespace pool: namespaces taken, spawns that found none, its size now (netns_pool.h). */
  netnsPool(): { taken: number; missed: number; target: number };
  /** pidfd_open(pid) (O_CLOEXEC): for an exec's JOIN op; throws with errno. */
  pidfdOpen(pid: number): number;
  /** prctl(PR_GET_DUMPABLE) of this process: 0 while an exec runs on its memory (tests). */
  dumpable(): number;
  /** A flattened seccomp profile to BPF (src-native/parent/seccomp.cc; src-ts/security/seccomp.ts). */
  compileSeccomp(profile: FlatSeccomp): CompiledSeccomp;
  /**
   * openat2(dirfd, path, { flags, mode, resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS }): an fd
   * (O_CLOEXEC) or -errno. Every symlink and `..` in `path` is resolved as if `dirfd` were `/`.
   */
  openInRoot(dirfd: number, path: string, flags: number, mode: number): number;
  /**
   * A cgroup's file work in one call (src-native/parent/cgroupfs.cc): [kind, path, value] triples
   * flattened, kind 'mkdir' | 'write' | 'open' | 'rmdir', run in order up to the first failure.
   * Returns [ops done, errno of the next one or 0, ...the fds of the 'open' ops (O_CLOEXEC)].
   */
  cgroupFiles(ops: string[]): number[];
  /** The parent's side of a tty-open op (src-native/parent/pty.cc, src-ts/container/tty.ts). */
  pty: NativePty;
}

export interface NativePty {
  /** socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC): [ours, the child's]; throws with errno. */
  consoleSocket(): [number, number];
  /** The master fd from one MSG_CONSOLE on our end (MSG_DONTWAIT), or -errno (-EAGAIN: none yet). */
  takeConsole(sock: number): number;
  /** TIOCSWINSZ on a master: 0 or -errno. */
  resize(fd: number, cols: number, rows: number): number;
}

/** What src-ts/security/seccomp.ts hands the addon: strings, numbers and arrays only. */
export interface FlatSeccomp {
  defaultAction: string;
  defaultErrno: number;
  arches: string[];
  flags: string[];
  /** args: [index, op, value low 32 bits, value high 32, valueTwo low 32, valueTwo high 32]. */
  rules: { names: readonly string[]; action: string; errno: number; args: [number, string, number, number, number, number][] }[];
  /** Give ENOSYS to syscall numbers above the highest the profile names (per architecture). */
  enosys: boolean;
}

export interface CompiledSeccomp {
  /** struct sock_filter[], host byte order. */
  bpf: Uint8Array;
  /** SECCOMP_FILTER_FLAG_* bits for seccomp(2). */
  flags: number;
  /** Names libseccomp does not know on any architecture (skipped). */
  unknown: string[];
  /** Architectures of the other byte order than the host's: one filter cannot hold both (skipped). */
  skippedArches: string[];
  /** libseccomp's version, e.g. '2.5.4'. */
  version: string;
}

/** The package root: this file is src-ts/native/addon.ts or dist/native/addon.js. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

let addon: NativeAddon | undefined;

/**
 * The settings from the environment, for the addon (which reads none itself):
 * SCRATCHBOX_NETNS_POOL (a number, 0 turns the pool off) and SCRATCHBOX_BASE_MNTNS (0 turns the
 * base mount namespace off: containers copy the host's and pivot_root).
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): NativeSettings {
  const s: NativeSettings = {};
  const pool = env.SCRATCHBOX_NETNS_POOL;
  if (pool !== undefined && pool !== '') {
    const n = Number(pool);
    if (Number.isInteger(n) && n >= 0) s.netnsPool = Math.min(n, 64);
  }
  if (env.SCRATCHBOX_BASE_MNTNS === '0') s.baseMountNamespace = false;
  return s;
}

export function native(): NativeAddon {
  if (!addon) {
    const require = createRequire(import.meta.url);
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    const a = load(packageRoot);
    // The environment's defaults; a worker thread that loads it after a container exists keeps the
    // process's settings (they are process-wide).
    a.configure(settingsFromEnv(), true);
    addon = a;
  }
  return addon;
}

export const EV = { READY: 1, ERROR: 2, EOF: 3, EXIT: 4, SYNC: 5 } as const;
export const STDIO = { INHERIT: -1, PIPE: -2, IGNORE: -3 } as const;
