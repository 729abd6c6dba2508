/**
 * A seccomp profile to the BPF program the container's process loads right before execve.
 * Compiled in the parent by the addon (libseccomp), cached per distinct profile: create() asks
 * for the filter every time, and a cache hit is a map lookup.
 */
import { ContainerError, errnoName, errnoNumber } from '../errors.js';
import { native, type FlatSeccomp } from '../native/addon.js';
import { optimizeFilter } from './bpf-optimize.js';
import { readCachedFilter, writeCachedFilter, type CachedFilter } from './seccomp-cache.js';
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
  return frozen({ bpf: optimizeFilter(out.bpf), flags: out.flags, unknownSyscalls: out.unknown, skippedArchitectures: out.skippedArches });
}

function frozen(f: CachedFilter): SeccompFilter {
  return Object.freeze({ ...f, unknownSyscalls: Object.freeze(f.unknownSyscalls), skippedArchitectures: Object.freeze(f.skippedArchitectures) });
}

/** The default profile's filter: the one compiled at install (seccomp-cache.ts) when it is this code's, else compiled now. */
function defaultCompiled(): SeccompFilter {
  const flat = flattenSeccomp(defaultSeccompProfile());
  const cached = readCachedFilter(flat);
  return cached ? frozen(cached) : compile(flat, 'defaultSeccompProfile');
}

/** For scripts/seccomp-cache.mjs: compiles the default profile and writes it beside this module. Returns the file's path. */
export function writeDefaultFilterCache(dir?: string): string {
  const flat = flattenSeccomp(defaultSeccompProfile());
  return writeCachedFilter(flat, compile(flat, 'defaultSeccompProfile'), dir);
}

/**
 * The compiled filter for a profile: `undefined` is scratchbox's default profile (compiled once
 * per process, when first asked for). Any other value goes through parseSeccomp first unless it
 * came from there; `option` names it in errors.
 */
export function seccompFilter(profile?: SeccompProfile | OciSeccomp, option = 'seccomp'): SeccompFilter {
  if (profile === undefined) {
    defaultFilter ??= defaultCompiled();
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
