/**
 * The OCI runtime-spec `linux.seccomp` object: its TypeScript model and `parseSeccomp`, which
 * validates one strictly into a normalised, frozen `SeccompProfile`. Pure: no addon, no kernel.
 * What libseccomp itself must decide (does a syscall name exist) is left to ./seccomp.ts.
 */
import { invalid } from '../errors.js';

export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
] as const;
export type SeccompActionName = (typeof SECCOMP_ACTIONS)[number];
/** After normalisation: SCMP_ACT_KILL is libseccomp's alias of KILL_THREAD; NOTIFY is refused. */
export type SeccompAction = Exclude<SeccompActionName, 'SCMP_ACT_KILL' | 'SCMP_ACT_NOTIFY'>;

export const SECCOMP_OPS = [
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
] as const;
export type SeccompOp = (typeof SECCOMP_OPS)[number];

/** The architectures of the runtime spec that libseccomp 2.5.4 knows. */
export const SECCOMP_ARCHES = [
  'SCMP_ARCH_X86',
  'SCMP_ARCH_X86_64',
  'SCMP_ARCH_X32',
  'SCMP_ARCH_ARM',
  'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL',
  'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC',
  'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE',
  'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64',
] as const;
export type SeccompArch = (typeof SECCOMP_ARCHES)[number];
/** In the runtime spec, but newer than the libseccomp scratchbox links. */
const UNSUPPORTED_ARCHES: Readonly<Record<string, string>> = Object.fromEntries(
  ['SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB'].map((a) => [a, 'is not known to libseccomp 2.5.4']),
);

export const SECCOMP_FLAGS = ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] as const;
export type SeccompFlag = (typeof SECCOMP_FLAGS)[number];
const UNSUPPORTED_FLAGS: Readonly<Record<string, string>> = {
  // seccomp(2) would sync the filter to every thread of the caller: the container's process
  // has one thread when it loads the filter, and the flag means nothing there.
  SECCOMP_FILTER_FLAG_TSYNC: 'is meaningless for a single-threaded process before execve',
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 'applies to SCMP_ACT_NOTIFY only, which needs a listener (and libseccomp 2.6)',
};

/** The OCI shape, as it appears in config.json (`linux.seccomp`). */
export interface OciSeccompArg {
  index: number;
  value: number | bigint;
  valueTwo?: number | bigint;
  op: SeccompOp;
}
export interface OciSeccompSyscall {
  names: string[];
  action: SeccompActionName;
  errnoRet?: number;
  args?: OciSeccompArg[];
}
export interface OciSeccomp {
  defaultAction: SeccompActionName;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSeccompSyscall[];
}

/** The normalised profile: every field present, values exact, frozen. */
export interface SeccompArg {
  readonly index: number;
  readonly op: SeccompOp;
  readonly value: bigint;
  readonly valueTwo: bigint;
}
export interface SeccompRule {
  readonly names: readonly string[];
  readonly action: SeccompAction;
  /** Set for SCMP_ACT_ERRNO (the errno, default EPERM) and SCMP_ACT_TRACE (the tracer's data). */
  readonly errnoRet?: number;
  readonly args: readonly SeccompArg[];
}
export interface SeccompProfile {
  readonly defaultAction: SeccompAction;
  readonly defaultErrnoRet?: number;
  /** Besides the native architecture, which a filter always covers. */
  readonly architectures: readonly SeccompArch[];
  readonly flags: readonly SeccompFlag[];
  readonly syscalls: readonly SeccompRule[];
}

const EPERM = 1;
const MAX_ERRNO = 4095; // the kernel's limit on an errno a syscall can return
const U64_MAX = (1n << 64n) - 1n;
const NAME_RE = /^[a-z_][a-z0-9_]{0,63}$/;

const parsed = new WeakSet<SeccompProfile>();

/** True for a profile parseSeccomp made (frozen, so safe to cache by identity). */
export function isParsedProfile(p: unknown): p is SeccompProfile {
  return typeof p === 'object' && p !== null && parsed.has(p as SeccompProfile);
}

/** Fields of Docker's profile format (moby's default.json), which is not the OCI one. */
const DOCKER_FIELDS = new Set(['archMap', 'includes', 'excludes', 'comment', 'name']);

function record(v: unknown, option: string, fields: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(option, 'must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (fields.includes(k)) continue;
    const docker = DOCKER_FIELDS.has(k) ? "; it belongs to Docker's profile format, give the OCI form (linux.seccomp)" : '';
    throw invalid(`${option}.${k}`, `unknown field (known: ${fields.join(', ')})${docker}`);
  }
  return o;
}

function list(v: unknown, option: string): unknown[] {
  if (!Array.isArray(v)) throw invalid(option, 'must be an array');
  return v;
}

function action(v: unknown, option: string): SeccompAction {
  if (v === 'SCMP_ACT_NOTIFY')
    throw invalid(option, 'SCMP_ACT_NOTIFY needs a seccomp listener, which scratchbox does not provide', 'ENOTSUP');
  if (typeof v !== 'string' || !(SECCOMP_ACTIONS as readonly string[]).includes(v))
    throw invalid(option, `must be one of ${SECCOMP_ACTIONS.join(', ')}`);
  return v === 'SCMP_ACT_KILL' ? 'SCMP_ACT_KILL_THREAD' : (v as SeccompAction);
}

/** The errno (ERRNO) or tracer data (TRACE) an action carries; undefined for the others. */
function errnoRet(act: SeccompAction, v: unknown, option: string): number | undefined {
  const max = act === 'SCMP_ACT_TRACE' ? 0xffff : MAX_ERRNO;
  if (act !== 'SCMP_ACT_ERRNO' && act !== 'SCMP_ACT_TRACE') {
    if (v !== undefined) throw invalid(option, `applies only to SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not ${act}`);
    return undefined;
  }
  if (v === undefined) return EPERM;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > max)
    throw invalid(option, `must be an integer from 0 to ${max}`);
  return v as number;
}

function u64(v: unknown, option: string): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_MAX) throw invalid(option, 'must be from 0 to 2^64-1');
    return v;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw invalid(option, 'must be a non-negative integer (a number, or a bigint above 2^53)');
  // JSON.parse has already rounded a larger number: the value is not the one written.
  if (!Number.isSafeInteger(v)) throw invalid(option, `${v} is above 2^53 and lost precision; pass a bigint`);
  return BigInt(v);
}

function parseArg(v: unknown, option: string): SeccompArg {
  const o = record(v, option, ['index', 'value', 'valueTwo', 'op']);
  if (!Number.isInteger(o.index) || (o.index as number) < 0 || (o.index as number) > 5)
    throw invalid(`${option}.index`, 'must be an integer from 0 to 5 (a syscall has six arguments)');
  if (o.value === undefined) throw invalid(`${option}.value`, 'is required');
  if (o.op === undefined) throw invalid(`${option}.op`, 'is required');
  if (typeof o.op !== 'string' || !(SECCOMP_OPS as readonly string[]).includes(o.op))
    throw invalid(`${option}.op`, `must be one of ${SECCOMP_OPS.join(', ')}`);
  return Object.freeze({
    index: o.index as number,
    op: o.op as SeccompOp,
    value: u64(o.value, `${option}.value`),
    valueTwo: o.valueTwo === undefined ? 0n : u64(o.valueTwo, `${option}.valueTwo`),
  });
}

function parseRule(v: unknown, option: string): SeccompRule {
  const o = record(v, option, ['names', 'action', 'errnoRet', 'args']);
  if (o.names === undefined) throw invalid(`${option}.names`, 'is required');
  const names = list(o.names, `${option}.names`);
  if (names.length === 0) throw invalid(`${option}.names`, 'must not be empty');
  names.forEach((n, i) => {
    if (typeof n !== 'string' || !NAME_RE.test(n))
      throw invalid(`${option}.names[${i}]`, `${JSON.stringify(n)} is not a syscall name`);
  });
  if (o.action === undefined) throw invalid(`${option}.action`, 'is required');
  const act = action(o.action, `${option}.action`);
  const ret = errnoRet(act, o.errnoRet, `${option}.errnoRet`);
  const args = o.args === undefined ? [] : list(o.args, `${option}.args`).map((a, i) => parseArg(a, `${option}.args[${i}]`));
  // libseccomp compares each argument at most once per rule (it refuses the rule otherwise).
  args.forEach((a, i) => {
    const j = args.findIndex((b) => b.index === a.index);
    if (j < i)
      throw invalid(`${option}.args[${i}].index`, `argument ${a.index} is already compared in args[${j}]; use one rule per comparison`);
  });
  return Object.freeze({
    names: Object.freeze([...new Set(names as string[])]),
    action: act,
    ...(ret === undefined ? {} : { errnoRet: ret }),
    args: Object.freeze(args),
  });
}

function oneOf<T extends string>(v: unknown, option: string, known: readonly T[], unsupported: Readonly<Record<string, string>>): T {
  if (typeof v === 'string' && v in unsupported) throw invalid(option, `${v} ${unsupported[v]}`, 'ENOTSUP');
  if (typeof v !== 'string' || !(known as readonly string[]).includes(v)) throw invalid(option, `must be one of ${known.join(', ')}`);
  return v as T;
}

/**
 * Validates an OCI `linux.seccomp` object. Anything unknown or malformed is a ContainerError
 * (code EINVAL, stage 'validate', option naming the field, e.g. 'seccomp.syscalls[3].args[0].op');
 * what scratchbox cannot do (SCMP_ACT_NOTIFY, a listener, TSYNC) is ENOTSUP.
 */
export function parseSeccomp(value: unknown, option = 'seccomp'): SeccompProfile {
  const o = record(value, option, [
    'defaultAction',
    'defaultErrnoRet',
    'architectures',
    'flags',
    'listenerPath',
    'listenerMetadata',
    'syscalls',
  ]);
  for (const k of ['listenerPath', 'listenerMetadata'])
    if (o[k] !== undefined) throw invalid(`${option}.${k}`, 'a seccomp listener (SCMP_ACT_NOTIFY) is not supported', 'ENOTSUP');
  if (o.defaultAction === undefined) throw invalid(`${option}.defaultAction`, 'is required');
  const defaultAction = action(o.defaultAction, `${option}.defaultAction`);
  const defaultErrnoRet = errnoRet(defaultAction, o.defaultErrnoRet, `${option}.defaultErrnoRet`);
  const architectures = o.architectures === undefined ? [] : list(o.architectures, `${option}.architectures`).map((a, i) =>
    oneOf(a, `${option}.architectures[${i}]`, SECCOMP_ARCHES, UNSUPPORTED_ARCHES),
  );
  const flags = o.flags === undefined ? [] : list(o.flags, `${option}.flags`).map((f, i) =>
    oneOf(f, `${option}.flags[${i}]`, SECCOMP_FLAGS, UNSUPPORTED_FLAGS),
  );
  const syscalls = o.syscalls === undefined ? [] : list(o.syscalls, `${option}.syscalls`).map((s, i) =>
    parseRule(s, `${option}.syscalls[${i}]`),
  );
  const profile: SeccompProfile = Object.freeze({
    defaultAction,
    ...(defaultErrnoRet === undefined ? {} : { defaultErrnoRet }),
    architectures: Object.freeze([...new Set(architectures)]),
    flags: Object.freeze([...new Set(flags)]),
    syscalls: Object.freeze(syscalls),
  });
  parsed.add(profile);
  return profile;
}
