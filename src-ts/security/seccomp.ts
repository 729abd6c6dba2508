/**
 * A seccomp profile to the BPF program the container's process loads right before execve.
 * Compiled in the parent by the addon (libseccomp), cached per distinct profile: create() asks
 * for the filter every time, and a cache hit is a map lookup.
 */
import { ContainerError, errnoName, errnoNumber } from '../errors.js';
import { native, type FlatSeccomp } from '../native/addon.js';
import { decode, optimizeFilter, run } from './bpf-optimize.js';
import { defaultSeccompProfile } from './default-seccomp.js';
import { isParsedProfile, parseSeccomp, type OciSeccomp, type SeccompAction, type SeccompProfile } from './seccomp-profile.js';

export interface SeccompFilter {
  /** struct sock_filter[] in host byte order, for seccomp(SECCOMP_SET_MODE_FILTER). Shared: do not modify. */
  readonly bpf: Uint8Array;
  /** The flags argument of seccomp(2): SECCOMP_FILTER_FLAG_LOG / _SPEC_ALLOW from the profile. */
  readonly flags: number;
  /** Syscall names of the profile that libseccomp does not know: skipped, as runc does. */
  readonly unknownSyscalls: readonly string[];
  /**
   * Architectures of the profile with the other byte order than this host's (a profile written
   * for several hosts): one filter cannot hold both, and this kernel never reports them. Skipped.
   */
  readonly skippedArchitectures: readonly string[];
  /** It lets through every call the child makes after READY (allowsTail): it may be loaded then. */
  readonly early: boolean;
}

/**
 * seccomp_data.arch of this process's architecture, and the numbers of the system calls the
 * child makes from READY on: `wait-start` (prctl PR_SET_PDEATHSIG, read; exit_group on EOF), the
 * exec's preparation (umask, close_range, rt_sigprocmask) and execve, an error report (write), a
 * trace's clock (clock_gettime).
 */
const TAIL: Partial<Record<NodeJS.Architecture, { arch: number; calls: readonly number[] }>> = {
  x64: { arch: 0xc000003e, calls: [157, 0, 231, 95, 436, 14, 59, 1, 228] },
  arm64: { arch: 0xc00000b7, calls: [167, 63, 94, 166, 436, 135, 221, 64, 113] },
};
/** Arguments tried for each call (a filter that looks at them must let all of these through). */
const ARG_SAMPLES: readonly (readonly number[])[] = [
  [0, 0, 0, 0, 0, 0],
  [1, 9, 0, 0, 0, 0], // PR_SET_PDEATHSIG, SIGKILL
  [2, 0, 0, 8, 0, 0], // SIG_SETMASK, sigsetsize 8
  [3, 0xffffffff, 4, 0, 0, 0], // close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)
  [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
];
const RET_ACTION_FULL = 0xffff0000;
const RET_ALLOW = 0x7fff0000;
const RET_LOG = 0x7ffc0000;

/**
 * Whether the program allows (or logs) each of the child's calls from READY on, whatever their
 * arguments (those tried), on this architecture. Then the child can load it right after READY,
 * while the parent answers READY, instead of after START: the ~60 us the kernel takes to load it
 * leave the start() path. False for a program this module's interpreter does not read.
 */
export function allowsTail(bpf: Uint8Array, arch: NodeJS.Architecture = process.arch): boolean {
  const tail = TAIL[arch];
  if (!tail) return false;
  try {
    const prog = decode(bpf);
    const data = new Uint32Array(16);
    data[1] = tail.arch;
    for (const nr of tail.calls)
      for (const args of ARG_SAMPLES) {
        data[0] = nr;
        args.forEach((v, i) => (data[4 + 2 * i] = v));
        const action = (run(prog, data) & RET_ACTION_FULL) >>> 0;
        if (action !== RET_ALLOW && action !== RET_LOG) return false;
      }
    return true;
  } catch {
    return false;
  }
}

/**
 * Actions that let a call through (or hand it to a tracer, which knows what ENOSYS means): under
 * them a syscall newer than the profile keeps the default action. Under the others it gets
 * ENOSYS, so that libc falls back to an older call instead of failing.
 */
const PASSING: ReadonlySet<SeccompAction> = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE']);
const EPERM = 1;
/** Distinct user profiles kept compiled; the oldest goes first. The default one is kept apart. */
const MAX_CACHED = 64;

const byProfile = new WeakMap<SeccompProfile, SeccompFilter>();
const byKey = new Map<string, SeccompFilter>();
let defaultFilter: SeccompFilter | undefined;

function u32pair(v: bigint): [number, number] {
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

/** The profile as the addon takes it. Its JSON is also the cache key. */
export function flattenSeccomp(p: SeccompProfile): FlatSeccomp {
  return {
    defaultAction: p.defaultAction,
    defaultErrno: p.defaultErrnoRet ?? EPERM,
    arches: [...p.architectures],
    flags: [...p.flags],
    rules: p.syscalls.map((r) => ({
      names: r.names,
      action: r.action,
      errno: r.errnoRet ?? EPERM,
      args: r.args.map((a) => [a.index, a.op, ...u32pair(a.value), ...u32pair(a.valueTwo)]),
    })),
    enosys: !PASSING.has(p.defaultAction),
  };
}

function compile(flat: FlatSeccomp, option: string): SeccompFilter {
  let out;
  try {
    out = native().compileSeccomp(flat);
  } catch (e) {
    const err = e as Error & { errno?: number; field?: string };
    if (typeof err.errno !== 'number') throw new ContainerError(`seccomp: ${err.message}`, { code: 'ERR_INTERNAL', stage: 'validate', option, cause: e });
    const at = err.field === undefined ? option : `${option}.${err.field}`;
    const code = errnoName(err.errno);
    throw new ContainerError(`invalid ${at}: ${err.message}`, {
      code,
      stage: 'validate',
      option: at,
      ...(errnoNumber(code) === undefined ? {} : { errno: err.errno }),
    });
  }
  const bpf = optimizeFilter(out.bpf);
  return Object.freeze({
    bpf,
    flags: out.flags,
    early: allowsTail(bpf),
    unknownSyscalls: Object.freeze(out.unknown),
    skippedArchitectures: Object.freeze(out.skippedArches),
  });
}

/**
 * The compiled filter for a profile: `undefined` is scratchbox's default profile (compiled once
 * per process, when first asked for). Any other value goes through parseSeccomp first unless it
 * came from there; `option` names it in errors.
 */
export function seccompFilter(profile?: SeccompProfile | OciSeccomp, option = 'seccomp'): SeccompFilter {
  if (profile === undefined) {
    defaultFilter ??= compile(flattenSeccomp(defaultSeccompProfile()), 'defaultSeccompProfile');
    return defaultFilter;
  }
  const p = isParsedProfile(profile) ? profile : parseSeccomp(profile, option);
  const hit = byProfile.get(p);
  if (hit) return hit;
  const flat = flattenSeccomp(p);
  const key = JSON.stringify(flat);
  let filter = byKey.get(key);
  if (filter) {
    byKey.delete(key); // re-inserted below: the map's order is the eviction order
  } else {
    filter = compile(flat, option);
    if (byKey.size >= MAX_CACHED) byKey.delete(byKey.keys().next().value as string);
  }
  byKey.set(key, filter);
  byProfile.set(p, filter);
  return filter;
}
