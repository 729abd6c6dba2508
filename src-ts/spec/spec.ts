/**
 * Options → Spec: one typed, validated model of what the container should be. Pure: it checks
 * shapes and values only; what needs the file system (does the rootfs exist, is /proc a symlink
 * in it) is checked by ./check.ts, also before anything is cloned.
 */
import { posix } from 'node:path';
import { invalid } from '../errors.js';
import { checkKeys, type KeyTable } from './keys.js';
import { defaultMounts, parseMount, type MountSpec, type ParsedMount } from './mounts.js';
import { MAX_SLOTS } from '../plan/wire.js';
import { parseSeccomp, type OciSeccomp, type SeccompProfile } from '../security/seccomp-profile.js';
import type { Image, ImageStore } from '../image/index.js';
import { capabilitiesOf, hostCapabilities, type CapabilitiesOption, type CapSets, type HostCaps } from '../security/capabilities.js';
import {
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  parseDevices,
  parseOomScoreAdj,
  parsePathList,
  parseRlimits,
  parseRoot,
  parseSysctl,
  type DeviceOption,
  type DeviceSpec,
  type RlimitOption,
  type RlimitSpec,
  type RootSpec,
} from './isolation.js';
import { parseCgroup, type CgroupOption, type CgroupResources, type CgroupSpec } from '../cgroup/resources.js';
import { checkOwnDevpts, parseTty, type TtySizeOption, type TtySpec } from './tty.js';

import { parseNamespaces, type JoinSpec, type NamespaceName, type NamespacesOption } from './namespaces.js';

export type { NamespaceName } from './namespaces.js';

/** 'pipe' gives a Node stream; 'inherit' shares the Node process's fd; 'ignore' is /dev/null. */
export type StdioOption = 'pipe' | 'inherit' | 'ignore' | number;

export interface UserOption {
  uid: number;
  gid: number;
  additionalGids?: readonly number[];
}

export interface ContainerOptions {
  /** Absolute path of the root file system (or give `image`). Nothing in it is changed on disk. */
  rootfs?: string;
  /**
   * An image (an Image of an ImageStore, or a reference in `store`) instead of `rootfs`: its
   * layers are the read-only lower layers of the root, shared by every container of it; its
   * entrypoint + cmd, env, working directory and user are the defaults of `args`, `env`, `cwd`
   * and `user`.
   */
  image?: Image | string;
  /** Where a string `image` is looked up. Default: ImageStore.open() (the user's cache). */
  store?: ImageStore;
  /** The command; args[0] is resolved inside the rootfs (PATH is searched when it has no '/'). */
  args?: readonly string[];
  env?: Readonly<Record<string, string>> | readonly string[];
  cwd?: string;
  /** Default: the container id, shortened. */
  hostname?: string;
  user?: UserOption;
  stdio?: StdioOption | readonly [StdioOption, StdioOption, StdioOption];
  /** Default: `defaultMounts`. */
  mounts?: readonly MountSpec[];
  /**
   * Default: pid, network, ipc, uts (and mount, always). `network: 'shared'` joins one empty
   * network namespace (loopback only) that every 'shared' container of this process uses: cut off
   * from the host's network like a fresh one, but not from each other, and much cheaper to start
   * (no network namespace to make and tear down per container). `{ container }` or `{ path }`
   * joins another running container's namespace, or the one a /proc/PID/ns/* file names (pid,
   * network, ipc, uts, cgroup; docs/architecture.md, "Joined namespaces").
   */
  namespaces?: NamespacesOption;
  /**
   * Run scratch-init as PID 1 (like `docker run --init`): it reaps every zombie, forwards
   * signals to the process (args), and exits with its exit code (128 + N when signal N killed
   * it). Default false.
   */
  init?: boolean;
  /** Default: 16 random hex digits. */
  id?: string;
  /**
   * Once started, the container outlives the Node process (no parent-death signal). A container
   * that was created but never started exits with the Node process either way.
   */
  detached?: boolean;
  /** Kills the container (with killSignal) when aborted. */
  signal?: AbortSignal;
  /** Signal for abort and timeouts. Default 'SIGKILL': a container's PID 1 ignores SIGTERM unless it handles it. */
  killSignal?: NodeJS.Signals | number;
  /** Process umask. Default 0o022. */
  umask?: number;
  /** Time each setup step in the child; read it with container.setupTrace(). For profiling. */
  trace?: boolean;
  /**
   * Set no_new_privs before execve (OCI process.noNewPrivileges): no setuid bit or file
   * capability grants anything inside. Default true.
   */
  noNewPrivileges?: boolean;
  /**
   * The seccomp filter (OCI linux.seccomp, or one parseSeccomp returned: pass the same object
   * again and it is compiled once). Default: scratchbox's own profile (docs/security.md).
   * 'unconfined': none.
   */
  seccomp?: OciSeccomp | SeccompProfile | 'unconfined';
  /**
   * Like `docker run --privileged`: all capabilities, no seccomp filter, no masked paths. For
   * trusted workloads that need the kernel's full surface. Default false.
   */
  privileged?: boolean;
  /**
   * Default: OCI's AUDIT_WRITE, KILL, NET_BIND_SERVICE. `{ add, drop }` changes that set (names
   * with or without CAP_, any case, 'ALL'); the OCI sets `{ bounding, effective, inheritable,
   * permitted, ambient }` give each set in full. See docs/security.md.
   */
  capabilities?: CapabilitiesOption;
  /**
   * OCI linux.maskedPaths: files get /dev/null bound over them, directories an empty read-only
   * tmpfs. Default: runc's list (DEFAULT_MASKED_PATHS); a list given replaces it.
   */
  maskedPaths?: readonly string[];
  /** OCI linux.readonlyPaths: bound onto themselves read-only. Default: runc's list (DEFAULT_READONLY_PATHS). */
  readonlyPaths?: readonly string[];
  /** OCI process.rlimits. Default: RLIMIT_NOFILE 1024/1024; a list given replaces it. */
  rlimits?: readonly RlimitOption[];
  /** OCI process.oomScoreAdj, -1000..1000. A value below the Node process's needs CAP_SYS_RESOURCE. */
  oomScoreAdj?: number;
  /** OCI linux.sysctl: only sysctls of a namespace the container has of its own. */
  sysctl?: Readonly<Record<string, string>>;
  /** OCI linux.devices: device nodes made in the container's /dev besides the default ones. */
  devices?: readonly DeviceOption[];
  /**
   * How much the container may write into its root (the overlay's tmpfs upper layer): bytes, or
   * '256m' (k, m, g), or 'unlimited' (the kernel's tmpfs default, half of the RAM). Default '64m'.
   * Past it, writes fail with ENOSPC.
   */
  writableSize?: number | string;
  /** OCI root.readonly: the root (the overlay) read-only; the mounts in it keep their own flags. */
  readonlyRootfs?: boolean;
  /**
   * Limits (OCI `linux.resources`: memory, pids, cpu, blockIO, hugepageLimits, devices). Given,
   * the container gets a cgroup of its own (docs/cgroups.md); without it or `cgroup`, none is made.
   */
  resources?: CgroupResources;
  /** A cgroup of the container's own (pause, killAll, stats) even without limits; `path`: its parent. */
  cgroup?: CgroupOption;
  /**
   * Keep what the container writes after delete(): its overlay's upper layer is a directory of
   * the image store (`store`, the image's, or the default one), `<store>/containers/<id>/upper`,
   * instead of a tmpfs; `container.commit()` makes an image of it. Default false.
   */
  keep?: boolean;
  /**
   * A pseudo-terminal of the container's own devpts as the process's stdin, stdout and stderr,
   * its controlling terminal; `container.tty` is its master (docs/tty.md). Not with `stdio`.
   */
  tty?: boolean;
  /** With tty: the window size before the process starts. Default 80 x 24. */
  ttySize?: TtySizeOption;
}

/**
 * Every key of ContainerOptions: anything else is rejected, naming the key. A new option is a line
 * here and its field above (the compiler holds the two together).
 */
export const OPTION_KEYS = {
  rootfs: true,
  image: true,
  store: true,
  args: true,
  env: true,
  cwd: true,
  hostname: true,
  user: true,
  stdio: true,
  mounts: true,
  namespaces: true,
  id: true,
  detached: true,
  signal: true,
  killSignal: true,
  umask: true,
  trace: true,
  noNewPrivileges: true,
  seccomp: true,
  privileged: true,
  capabilities: true,
  maskedPaths: true,
  readonlyPaths: true,
  rlimits: true,
  oomScoreAdj: true,
  sysctl: true,
  devices: true,
  writableSize: true,
  readonlyRootfs: true,
  resources: true,
  cgroup: true,
  keep: true,
  init: true,
  tty: true,
  ttySize: true,
} as const satisfies KeyTable<ContainerOptions>;

const USER_KEYS = { uid: true, gid: true, additionalGids: true } as const satisfies KeyTable<UserOption>;

export interface Spec {
  id: string;
  rootfs: string;
  /** The overlay's lower layers, top first: [rootfs], or an image's layers (rootfs the top one). */
  layers: string[];
  args: string[];
  env: string[];
  cwd: string;
  hostname: string;
  user: { uid: number; gid: number; additionalGids: number[] };
  stdio: [StdioOption, StdioOption, StdioOption];
  mounts: ParsedMount[];
  namespaces: Record<NamespaceName, boolean>;
  /** namespaces.network was 'shared' (namespaces.network is then true). */
  sharedNetwork: boolean;
  /** The namespaces joined instead of made (their `namespaces` entry is false), pid first. */
  joins: JoinSpec[];
  /** options.init: scratch-init runs as PID 1 and execs args. */
  init: boolean;
  detached: boolean;
  umask: number;
  trace: boolean;
  /** prctl(PR_SET_NO_NEW_PRIVS) before execve. */
  noNewPrivileges: boolean;
  /** The seccomp profile to load: 'default' (scratchbox's), a parsed one, or null (none). */
  seccomp: SeccompProfile | 'default' | null;
  /** docker run --privileged: all capabilities, no seccomp, no masked paths. */
  privileged: boolean;
  capabilities: CapSets;
  maskedPaths: string[];
  readonlyPaths: string[];
  rlimits: RlimitSpec[];
  oomScoreAdj: number | null;
  /** [path under the root, value] */
  sysctl: [string, string][];
  devices: DeviceSpec[];
  root: RootSpec;
  /** Null unless `resources` or `cgroup` was given: then the container gets a cgroup of its own. */
  cgroup: CgroupSpec | null;
  /** options.keep: the upper layer is a directory on disk (upperDir), kept after delete(). */
  keep: boolean;
  /**
   * With keep: the host directory holding the overlay's upper/ and work/ (Container.create makes
   * it, under the image store, once the id is known); null: a tmpfs.
   */
  upperDir: string | null;
  /** options.tty: the terminal's initial size; null: stdio as given. */
  tty: TtySpec | null;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to the kernel

function str(v: unknown, option: string, allowEmpty = false): string {
  if (typeof v !== 'string') throw invalid(option, 'must be a string');
  if (!allowEmpty && v.length === 0) throw invalid(option, 'must not be empty');
  if (v.includes('\0')) throw invalid(option, 'contains a NUL byte');
  return v;
}

function id32(v: unknown, option: string): number {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_ID)
    throw invalid(option, `must be an integer from 0 to ${MAX_ID}`);
  return v as number;
}

export function validId(id: string): boolean {
  return ID_RE.test(id);
}

/** The default hostname: the id shortened. An id may hold '_' or '.', which a hostname label may not. */
export function defaultHostname(id: string): string {
  return id.slice(0, 12).replace(/[^A-Za-z0-9-]/g, '-').replace(/-+$/, '');
}

export function validateHostname(name: unknown, option = 'hostname'): string {
  const h = str(name, option);
  if (h.length > 64 || !h.split('.').every((l) => LABEL_RE.test(l)))
    throw invalid(option, `${JSON.stringify(h)} is not a valid hostname (RFC 1123 labels, at most 64 bytes)`);
  return h;
}

function stdioOf(v: unknown, option: string): StdioOption {
  if (v === 'pipe' || v === 'inherit' || v === 'ignore') return v;
  if (Number.isInteger(v) && (v as number) >= 0) return v as number;
  throw invalid(option, `must be 'pipe', 'inherit', 'ignore' or a file descriptor`);
}

function envOf(env: ContainerOptions['env']): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (k: string, v: string, option: string) => {
    if (k.length === 0 || k.includes('=') || k.includes('\0')) throw invalid(option, `bad variable name ${JSON.stringify(k)}`);
    str(v, option, true);
    seen.add(k);
    out.push(`${k}=${v}`);
  };
  if (Array.isArray(env)) {
    env.forEach((kv, i) => {
      const s = str(kv, `env[${i}]`);
      const eq = s.indexOf('=');
      if (eq <= 0) throw invalid(`env[${i}]`, `${JSON.stringify(s)} is not KEY=VALUE`);
      add(s.slice(0, eq), s.slice(eq + 1), `env[${i}]`);
    });
  } else if (env !== undefined) {
    if (env === null || typeof env !== 'object') throw invalid('env', 'must be an object or an array of KEY=VALUE');
    for (const [k, v] of Object.entries(env)) add(k, v, `env.${k}`);
  }
  if (!seen.has('PATH')) out.unshift(`PATH=${DEFAULT_PATH}`);
  return out;
}

/**
 * Validates options into a Spec. `newId` makes the default id (injected for tests). `context`:
 * `layers`, an image's layer directories, lowest first, when Container.create resolved `image`
 * (options.rootfs is then the top one); `caps`, what this host allows of capabilities (injected
 * for tests).
 */
export function buildSpec(
  options: ContainerOptions,
  newId: () => string,
  context: { layers?: readonly string[]; caps?: HostCaps } = {},
): Spec {
  const { layers, caps = hostCapabilities() } = context;
  if (options === null || typeof options !== 'object') throw invalid('options', 'must be an object');
  checkKeys(options, OPTION_KEYS, '');
  if (options.image !== undefined && !layers) throw invalid('image', 'is resolved by Container.create/run (buildSpec takes its layers)');
  // Overlay's lowerdir list in the host mount mode is one string: ':' and ',' separate there.
  for (const l of layers?.slice(0, -1) ?? [])
    if (typeof l !== 'string' || !l.startsWith('/') || /[:,\n\\]/.test(l)) throw invalid('image', `layer directory ${JSON.stringify(l)} cannot be an overlay layer`);
  const rootfs = str(options.rootfs, 'rootfs');
  if (!rootfs.startsWith('/')) throw invalid('rootfs', `${JSON.stringify(rootfs)} is not an absolute path`, 'EINVAL', rootfs);
  if (rootfs.split('/').some((p) => p === '..')) throw invalid('rootfs', `${JSON.stringify(rootfs)} has a '..' component`, 'EINVAL', rootfs);
  const rootfsNorm = posix.normalize(rootfs).replace(/\/+$/, '');
  if (rootfsNorm === '') throw invalid('rootfs', 'must not be the host root "/"', 'EINVAL', rootfs);

  if (!Array.isArray(options.args) || options.args.length === 0) throw invalid('args', 'must be a non-empty array of strings');
  const args = options.args.map((a, i) => str(a, `args[${i}]`, i > 0));

  const id = options.id === undefined ? newId() : str(options.id, 'id');
  if (!validId(id)) throw invalid('id', `${JSON.stringify(id)} must match ${ID_RE}`);
  const hostname = validateHostname(options.hostname ?? defaultHostname(id));

  const cwd = str(options.cwd ?? '/', 'cwd');
  if (!cwd.startsWith('/')) throw invalid('cwd', `${JSON.stringify(cwd)} is not an absolute path`);

  const u = options.user ?? { uid: 0, gid: 0 };
  if (u === null || typeof u !== 'object') throw invalid('user', 'must be { uid, gid, additionalGids? }');
  checkKeys(u, USER_KEYS, 'user');
  const additional = u.additionalGids ?? [];
  if (!Array.isArray(additional) || additional.length > 65536) throw invalid('user.additionalGids', 'must be an array of gids');
  const user = {
    uid: id32(u.uid, 'user.uid'),
    gid: id32(u.gid, 'user.gid'),
    additionalGids: additional.map((g, i) => id32(g, `user.additionalGids[${i}]`)),
  };

  const s = options.stdio ?? 'pipe';
  let stdio: [StdioOption, StdioOption, StdioOption];
  if (Array.isArray(s)) {
    if (s.length !== 3) throw invalid('stdio', 'must have three entries: [stdin, stdout, stderr]');
    stdio = [stdioOf(s[0], 'stdio[0]'), stdioOf(s[1], 'stdio[1]'), stdioOf(s[2], 'stdio[2]')];
  } else {
    const one = stdioOf(s, 'stdio');
    stdio = [one, one, one];
  }

  const { namespaces: ns, sharedNetwork, joins } = parseNamespaces(options.namespaces);
  // A joined UTS namespace keeps its hostname: the container must not set it (it would change
  // the other's). /etc/hostname then holds the other container's, or nothing (a path join).
  const utsJoined = joins.some((j) => j.ns === 'uts');
  if (utsJoined && options.hostname !== undefined) throw invalid('hostname', 'the UTS namespace is joined (namespaces.uts): its hostname is the joined one');

  const mountsIn = options.mounts ?? defaultMounts;
  if (!Array.isArray(mountsIn)) throw invalid('mounts', 'must be an array of mount descriptors');
  const mounts = mountsIn.map((m, i) => parseMount(m, i));
  const seen = new Map<string, number>();
  mounts.forEach((m, i) => {
    if (seen.has(m.destination))
      throw invalid(`mounts[${i}].destination`, `${m.destination} is already mounted by mounts[${seen.get(m.destination)}]`, 'EINVAL', m.destination);
    seen.set(m.destination, i);
  });

  // Each bind source is cloned into a slot of the child's before its namespaces are made, and so
  // is init's binary (the masks' tmpfs takes one only when one is left: plan.ts).
  const binds = mounts.filter((m) => m.type === 'bind' || m.type === 'cgroup').length;
  const slots = MAX_SLOTS - (options.init === true ? 1 : 0);
  if (binds > slots) throw invalid('mounts', `has ${binds} bind mounts: at most ${slots} are supported${options.init === true ? ' with init: true' : ''}`);

  const umask = options.umask ?? 0o022;
  if (!Number.isInteger(umask) || umask < 0 || umask > 0o777) throw invalid('umask', 'must be an integer from 0 to 0o777');

  if (options.detached !== undefined && typeof options.detached !== 'boolean') throw invalid('detached', 'must be a boolean');
  // The terminal replaces stdio: the child's 0-2 are /dev/null until tty-open puts the slave there.
  const tty = parseTty(options.tty, options.ttySize, options.stdio);
  if (tty) {
    checkOwnDevpts(mounts);
    stdio = ['ignore', 'ignore', 'ignore'];
  }
  const privileged = bool(options.privileged, 'privileged', false);
  const devices = parseDevices(options.devices, mounts);
  // 'unconfined' is not a profile: anything else must be one (parseSeccomp says what is wrong).
  if (privileged && options.seccomp !== undefined && options.seccomp !== 'unconfined')
    throw invalid('seccomp', "privileged containers run without seccomp: leave it out (or 'unconfined')");
  if (privileged && options.capabilities !== undefined) throw invalid('capabilities', 'privileged containers have every capability: leave it out');
  // As docker run --privileged (which ignores --device-cgroup-rule): every device is allowed.
  if (privileged && options.resources?.devices !== undefined)
    throw invalid('resources.devices', 'privileged containers may use every device: leave the allow-list out');

  return {
    id,
    rootfs: rootfsNorm,
    layers: layers ? [...layers].reverse() : [rootfsNorm],
    args,
    env: envOf(options.env),
    cwd,
    hostname: utsJoined ? '' : hostname,
    user,
    stdio,
    mounts,
    namespaces: ns,
    sharedNetwork,
    joins,
    init: bool(options.init, 'init', false),
    detached: options.detached ?? false,
    umask,
    trace: options.trace === true,
    noNewPrivileges: bool(options.noNewPrivileges, 'noNewPrivileges', true),
    seccomp: privileged || options.seccomp === 'unconfined' ? null : options.seccomp === undefined ? 'default' : parseSeccomp(options.seccomp, 'seccomp'),
    privileged,
    // privileged: every capability the Node process can hand on, in all five sets.
    capabilities: capabilitiesOf(privileged ? { add: ['ALL'] } : options.capabilities, caps),
    // privileged: no masked or read-only paths unless given.
    maskedPaths: parsePathList(options.maskedPaths, 'maskedPaths', privileged ? [] : DEFAULT_MASKED_PATHS),
    readonlyPaths: parsePathList(options.readonlyPaths, 'readonlyPaths', privileged ? [] : DEFAULT_READONLY_PATHS),
    rlimits: parseRlimits(options.rlimits),
    oomScoreAdj: parseOomScoreAdj(options.oomScoreAdj),
    sysctl: parseSysctl(options.sysctl, { namespaces: ns, sharedNetwork, mounts }),
    devices,
    root: parseRoot(options.writableSize, options.readonlyRootfs),
    cgroup: withDeviceNodes(parseCgroup(options.resources, options.cgroup), devices),
    keep: bool(options.keep, 'keep', false),
    upperDir: null,
    tty,
  };
}

/** The device nodes `devices` makes stay usable under a device allow-list (as runc adds them). */
function withDeviceNodes(cgroup: CgroupSpec | null, devices: readonly DeviceSpec[]): CgroupSpec | null {
  const rules = cgroup?.resources.devices;
  if (!cgroup || !rules || devices.length === 0) return cgroup;
  const nodes = devices.filter((d) => d.type !== 'p').map((d) => ({ allow: true, type: d.type === 'b' ? ('b' as const) : ('c' as const), major: d.major, minor: d.minor, access: 'rwm' }));
  return { ...cgroup, resources: { ...cgroup.resources, devices: [...rules, ...nodes] } };
}

function bool(v: unknown, option: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw invalid(option, 'must be a boolean');
  return v;
}
