/**
 * The file-system side of isolation, options → spec: masked and read-only paths, rlimits, the OOM
 * score, sysctls, extra device nodes and the size and mode of the writable root. Pure, like
 * ./spec.ts; what needs the host (the Node process's own limits) is checked by checkRlimits.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { ContainerError, invalid } from '../errors.js';
import { checkKeys, type KeyTable } from './keys.js';
import type { ParsedMount } from './mounts.js';

/** The lists `runc spec` writes (OCI linux.maskedPaths / linux.readonlyPaths). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
];
export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Linux's resource numbers (asm-generic/resource.h), by OCI name. */
export const RLIMITS = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
} as const;
export type RlimitType = keyof typeof RLIMITS;

/** RLIM_INFINITY: 2^64 - 1. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/**
 * OCI process.rlimits entry. A limit is a non-negative integer, a bigint (above 2^53), or
 * `Infinity` / 'unlimited' for RLIM_INFINITY.
 */
export interface RlimitOption {
  type: RlimitType;
  soft: number | bigint | 'unlimited';
  hard: number | bigint | 'unlimited';
}

/** OCI linux.devices entry: 'c' (or 'u') character, 'b' block, 'p' FIFO. */
export interface DeviceOption {
  path: string;
  type: 'c' | 'u' | 'b' | 'p';
  major?: number;
  minor?: number;
  /** Permission bits. Default 0o666. */
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface RlimitSpec {
  type: RlimitType;
  resource: number;
  soft: bigint;
  hard: bigint;
}

export interface DeviceSpec {
  path: string;
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** The container's root: its size limit and whether it is read-only. */
export interface RootSpec {
  /** The upper tmpfs's size= in KiB; 0 for none (the kernel's default, half of the RAM). */
  writableKiB: number;
  readonly: boolean;
}

/** 64 MiB, the size runc gives /dev and /dev/shm: room for logs and temp files, not for a disk. */
export const DEFAULT_WRITABLE_SIZE = 64 * 1024 * 1024;
export const DEFAULT_RLIMITS: readonly RlimitSpec[] = [{ type: 'RLIMIT_NOFILE', resource: RLIMITS.RLIMIT_NOFILE, soft: 1024n, hard: 1024n }];

const RLIMIT_KEYS = { type: true, soft: true, hard: true } as const satisfies KeyTable<RlimitOption>;
const DEVICE_KEYS = { path: true, type: true, major: true, minor: true, fileMode: true, uid: true, gid: true } as const satisfies KeyTable<DeviceOption>;
const MAX_ID = 0xfffffffe;

/** An absolute, normalised container path without '.' or '..' components (not '/'). */
function containerPath(v: unknown, option: string): string {
  if (typeof v !== 'string' || v.length === 0) throw invalid(option, 'must be a non-empty string');
  if (v.includes('\0')) throw invalid(option, 'contains a NUL byte');
  if (!v.startsWith('/')) throw invalid(option, `${JSON.stringify(v)} is not an absolute path`, 'EINVAL', v);
  const parts = v.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '.' || p === '..')) throw invalid(option, `${JSON.stringify(v)} has a '.' or '..' component`, 'EINVAL', v);
  if (parts.length === 0) throw invalid(option, 'must not be /', 'EINVAL', v);
  const p = `/${parts.join('/')}`;
  if (p.length > 1024) throw invalid(option, 'is longer than 1024 bytes', 'ENAMETOOLONG', v);
  return p;
}

export function parsePathList(v: unknown, option: string, fallback: readonly string[]): string[] {
  if (v === undefined) return [...fallback];
  if (!Array.isArray(v)) throw invalid(option, 'must be an array of absolute paths');
  return [...new Set(v.map((p, i) => containerPath(p, `${option}[${i}]`)))];
}

function limitOf(v: unknown, option: string): bigint {
  if (v === 'unlimited' || v === Infinity) return RLIM_INFINITY;
  if (typeof v === 'bigint') {
    if (v < 0n || v > RLIM_INFINITY) throw invalid(option, 'must be from 0 to 2^64 - 1');
    return v;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) {
    if (v === 2 ** 64) return RLIM_INFINITY; // JSON's 18446744073709551615, rounded
    if (!Number.isSafeInteger(v)) throw invalid(option, `${v} is above 2^53: give it as a bigint`);
    return BigInt(v);
  }
  throw invalid(option, "must be a non-negative integer, a bigint, or 'unlimited'");
}

export function parseRlimits(v: unknown): RlimitSpec[] {
  if (v === undefined) return DEFAULT_RLIMITS.map((r) => ({ ...r }));
  if (!Array.isArray(v)) throw invalid('rlimits', "must be an array of { type: 'RLIMIT_…', soft, hard }");
  const seen = new Set<string>();
  return v.map((r: unknown, i) => {
    const at = `rlimits[${i}]`;
    if (r === null || typeof r !== 'object') throw invalid(at, 'must be { type, soft, hard }');
    checkKeys(r, RLIMIT_KEYS, at);
    const { type, soft, hard } = r as RlimitOption;
    if (typeof type !== 'string' || !Object.hasOwn(RLIMITS, type)) {
      const hint = typeof type === 'string' && Object.hasOwn(RLIMITS, `RLIMIT_${type.toUpperCase()}`) ? ` (did you mean 'RLIMIT_${type.toUpperCase()}'?)` : '';
      throw invalid(`${at}.type`, `unknown resource ${JSON.stringify(type)}${hint}; known: ${Object.keys(RLIMITS).join(', ')}`);
    }
    if (seen.has(type)) throw invalid(`${at}.type`, `${type} is given twice`);
    seen.add(type);
    const s = limitOf(soft, `${at}.soft`);
    const h = limitOf(hard, `${at}.hard`);
    if (s > h) throw invalid(`${at}.soft`, `soft limit ${s} is above the hard limit ${h}`);
    return { type, resource: RLIMITS[type], soft: s, hard: h };
  });
}

export function parseOomScoreAdj(v: unknown): number | null {
  if (v === undefined) return null;
  if (!Number.isInteger(v) || (v as number) < -1000 || (v as number) > 1000) throw invalid('oomScoreAdj', 'must be an integer from -1000 to 1000');
  return v as number;
}

const SYSCTL_KEY = /^[A-Za-z0-9_-]+([./][A-Za-z0-9_:-]+)*$/;

/**
 * Which namespace makes a sysctl the container's own (runc's rule), or why it is refused. Any
 * other sysctl is the host's: writing it would change the host.
 */
function sysctlNamespace(key: string): 'ipc' | 'network' | 'uts' | null {
  const k = key.replace(/\//g, '.');
  if (/^kernel\.(msg|shm)/.test(k) || k === 'kernel.sem' || k.startsWith('fs.mqueue.')) return 'ipc';
  if (k.startsWith('net.')) return 'network';
  if (k === 'kernel.domainname' || k === 'kernel.hostname') return 'uts';
  return null;
}

export interface SysctlContext {
  namespaces: { ipc: boolean; network: boolean; uts: boolean };
  sharedNetwork: boolean;
  mounts: readonly ParsedMount[];
}

/** OCI linux.sysctl → [path under the root, value], e.g. ['proc/sys/net/ipv4/ip_forward', '1']. */
export function parseSysctl(v: unknown, ctx: SysctlContext): [string, string][] {
  if (v === undefined) return [];
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid('sysctl', "must be an object, e.g. { 'net.ipv4.ip_forward': '1' }");
  const out: [string, string][] = [];
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    const option = `sysctl.${key}`;
    if (!SYSCTL_KEY.test(key) || key.split(/[./]/).some((p) => p === '..' || p === '.')) throw invalid(option, 'is not a sysctl name');
    if (typeof value !== 'string' || value.includes('\0') || value.length > 4096) throw invalid(option, 'the value must be a string (at most 4096 bytes)');
    const ns = sysctlNamespace(key);
    if (ns === null)
      throw invalid(option, 'is not namespaced: it would change the host (only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.* and kernel.domainname are the container\'s own)', 'EPERM');
    if (key.replace(/\//g, '.') === 'kernel.hostname') throw invalid(option, 'set the hostname with the hostname option');
    if (!ctx.namespaces[ns]) throw invalid(option, `belongs to the ${ns} namespace, which this container does not have of its own`, 'EPERM');
    if (ns === 'network' && ctx.sharedNetwork) throw invalid(option, "network: 'shared' is one namespace for many containers: its sysctls are not one container's", 'EPERM');
    out.push([`proc/sys/${key.includes('/') ? key : key.replace(/\./g, '/')}`, value]);
  }
  if (out.length > 0 && !ctx.mounts.some((m) => m.destination === '/proc' && m.type === 'proc'))
    throw invalid('sysctl', 'needs proc mounted at /proc (the mounts have none)');
  return out;
}

function int(v: unknown, option: string, max: number, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > max) throw invalid(option, `must be an integer from 0 to ${max}`);
  return v as number;
}

/** OCI linux.devices. Made in the container's /dev tmpfs, so the mounts must give it one. */
export function parseDevices(v: unknown, mounts: readonly ParsedMount[]): DeviceSpec[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalid('devices', 'must be an array of { path, type, major, minor, fileMode?, uid?, gid? }');
  if (v.length > 0 && !mounts.some((m) => m.destination === '/dev' && m.type === 'tmpfs'))
    throw invalid('devices', 'device nodes are made in the /dev tmpfs of the mounts, and they have none');
  const seen = new Set<string>();
  return v.map((d: unknown, i) => {
    const at = `devices[${i}]`;
    if (d === null || typeof d !== 'object') throw invalid(at, 'must be { path, type, major, minor }');
    checkKeys(d, DEVICE_KEYS, at);
    const o = d as DeviceOption;
    const path = containerPath(o.path, `${at}.path`);
    if (!path.startsWith('/dev/')) throw invalid(`${at}.path`, `${path} is not under /dev`, 'EINVAL', path);
    if (posix.basename(path).length > 255) throw invalid(`${at}.path`, 'its name is longer than 255 bytes', 'ENAMETOOLONG', path);
    if (mounts.some((m) => m.destination === path)) throw invalid(`${at}.path`, `${path} is a mount destination`, 'EINVAL', path);
    if (seen.has(path)) throw invalid(`${at}.path`, `${path} is given twice`, 'EINVAL', path);
    seen.add(path);
    if (o.type !== 'c' && o.type !== 'u' && o.type !== 'b' && o.type !== 'p') throw invalid(`${at}.type`, "must be 'c', 'u', 'b' or 'p'");
    const type = o.type === 'u' ? 'c' : o.type;
    const fifo = type === 'p';
    return {
      path,
      type,
      major: fifo ? int(o.major, `${at}.major`, 0xfff, 0) : int(o.major, `${at}.major`, 0xfff),
      minor: fifo ? int(o.minor, `${at}.minor`, 0xfffff, 0) : int(o.minor, `${at}.minor`, 0xfffff),
      fileMode: int(o.fileMode, `${at}.fileMode`, 0o777, 0o666),
      uid: int(o.uid, `${at}.uid`, MAX_ID, 0),
      gid: int(o.gid, `${at}.gid`, MAX_ID, 0),
    };
  });
}

const SIZE_RE = /^(\d+)([kmg]?)$/i;
const UNIT = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const;

/** writableSize: bytes, '256m' (k, m, g: powers of 1024) or 'unlimited'; readonlyRootfs. */
export function parseRoot(size: unknown, readonly: unknown): RootSpec {
  if (readonly !== undefined && typeof readonly !== 'boolean') throw invalid('readonlyRootfs', 'must be a boolean');
  let bytes: number;
  if (size === undefined) bytes = DEFAULT_WRITABLE_SIZE;
  else if (size === 'unlimited') bytes = 0;
  else if (typeof size === 'number' && Number.isSafeInteger(size) && size > 0) bytes = size;
  else if (typeof size === 'string' && SIZE_RE.test(size)) {
    const [, n, unit] = SIZE_RE.exec(size)!;
    bytes = Number(n) * UNIT[unit!.toLowerCase() as keyof typeof UNIT];
  } else throw invalid('writableSize', "must be a positive number of bytes, a size like '256m' (k, m, g), or 'unlimited'");
  const kib = Math.ceil(bytes / 1024);
  if (size !== 'unlimited' && (kib < 1024 || kib > 0xffffffff)) throw invalid('writableSize', 'must be from 1 MiB to 4 TiB');
  return { writableKiB: kib, readonly: readonly === true };
}

/** The Node process's limits (soft, hard) by resource number, from /proc/self/limits (read once). */
let ownLimits: Map<number, [bigint, bigint]> | undefined;
let canRaise: boolean | undefined;

function hostLimits(): { limits: Map<number, [bigint, bigint]>; canRaise: boolean } {
  if (!ownLimits) {
    ownLimits = new Map();
    const value = (s: string) => (s === 'unlimited' ? RLIM_INFINITY : BigInt(s));
    // The kernel prints one line per resource, in resource order, after a header line.
    readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .slice(1)
      .forEach((line, i) => {
        const m = /^.{26}(\S+)\s+(\S+)/.exec(line);
        if (m) ownLimits!.set(i, [value(m[1]!), value(m[2]!)]);
      });
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
    canRaise = (BigInt(`0x${capEff}`) & (1n << 24n)) !== 0n; // CAP_SYS_RESOURCE
  }
  return { limits: ownLimits, canRaise: canRaise! };
}

/**
 * A hard limit above the Node process's own needs CAP_SYS_RESOURCE; without it prlimit in the
 * child fails with EPERM. Say so before the clone, naming the limit.
 */
export function checkRlimits(rlimits: readonly RlimitSpec[]): void {
  const host = hostLimits();
  if (host.canRaise) return;
  rlimits.forEach((r, i) => {
    const own = host.limits.get(r.resource);
    if (own && r.hard > own[1])
      throw new ContainerError(
        `invalid rlimits[${i}].hard: ${r.type} ${r.hard} is above this process's hard limit ${own[1] === RLIM_INFINITY ? 'unlimited' : own[1]}, and raising it needs CAP_SYS_RESOURCE, which this process lacks`,
        { code: 'EPERM', errno: 1, stage: 'validate', option: `rlimits[${i}].hard` },
      );
  });
}

/**
 * Lowering a score below the lowest one a privileged writer gave this process (oom_score_adj_min,
 * which the kernel does not show; it is at most the current score) needs CAP_SYS_RESOURCE. The
 * check is against the current score: a value between the two is refused too.
 */
export function checkOomScoreAdj(value: number | null): void {
  if (value === null || hostLimits().canRaise) return;
  const own = Number(readFileSync('/proc/self/oom_score_adj', 'utf8'));
  if (value < own)
    throw new ContainerError(
      `invalid oomScoreAdj: ${value} is below this process's score ${own}, and lowering it needs CAP_SYS_RESOURCE, which this process lacks`,
      { code: 'EACCES', errno: 13, stage: 'validate', option: 'oomScoreAdj' },
    );
}
