/**
 * Cgroup resources, pure: the options (OCI `linux.resources`), their validation, the v1 <-> v2
 * conversions runc and the OCI spec use, the files each hierarchy gets written, and the parsers
 * of what the kernel reports. Nothing here touches the file system: ./manager.ts does.
 */
import { invalid } from '../errors.js';
import { checkKeys, type KeyTable } from '../spec/keys.js';

/** One rule of the device allow-list (OCI `linux.resources.devices[]`). */
export interface DeviceRule {
  allow: boolean;
  /** 'a' (all), 'c' or 'b'. Default 'a'. */
  type?: 'a' | 'c' | 'b';
  /** Absent or -1: any. */
  major?: number;
  minor?: number;
  /** Some of 'r', 'w', 'm'. Default 'rwm'. */
  access?: string;
}

/** OCI `linux.resources`, the part scratchbox applies. Sizes in bytes; -1 means no limit. */
export interface CgroupResources {
  memory?: {
    limit?: number;
    /** Soft limit: memory.low (v2), memory.soft_limit_in_bytes (v1). */
    reservation?: number;
    /** Memory + swap, as in v1 and the OCI spec (v2 gets swap alone: swap - limit). */
    swap?: number;
  };
  pids?: { limit: number };
  cpu?: {
    /** v1 shares (2..262144); v2 gets the weight runc computes from it. */
    shares?: number;
    /** v2 weight (1..10000), instead of shares; v1 gets shares computed from it. */
    weight?: number;
    /** Microseconds of CPU time per period; -1: no limit. */
    quota?: number;
    /** Default 100000 (100 ms). */
    period?: number;
    cpus?: string;
    mems?: string;
  };
  /** v1 blkio weight (10..1000); v2 gets io.weight converted as runc does. */
  blockIO?: { weight?: number };
  /** pageSize as the kernel names it: '2MB', '1GB'. */
  hugepageLimits?: readonly { pageSize: string; limit: number }[];
  devices?: readonly DeviceRule[];
}

/** `cgroup` option: where the container's cgroup is made. */
export interface CgroupOption {
  /**
   * The parent cgroup (as /proc/self/cgroup names paths: from the hierarchy's root, e.g.
   * '/scratchbox'), made if missing and never removed. Default: the caller's own cgroup, as runc.
   * The container's cgroup is `<path>/sbx-<node pid>-<container id>`.
   */
  path?: string;
}

export const RESOURCE_KEYS = {
  memory: true,
  pids: true,
  cpu: true,
  blockIO: true,
  hugepageLimits: true,
  devices: true,
} as const satisfies KeyTable<CgroupResources>;
const MEMORY_KEYS = { limit: true, reservation: true, swap: true } as const satisfies KeyTable<NonNullable<CgroupResources['memory']>>;
const PIDS_KEYS = { limit: true } as const satisfies KeyTable<NonNullable<CgroupResources['pids']>>;
const CPU_KEYS = { shares: true, weight: true, quota: true, period: true, cpus: true, mems: true } as const satisfies KeyTable<NonNullable<CgroupResources['cpu']>>;
const BLKIO_KEYS = { weight: true } as const satisfies KeyTable<NonNullable<CgroupResources['blockIO']>>;
const DEVICE_KEYS = { allow: true, type: true, major: true, minor: true, access: true } as const satisfies KeyTable<DeviceRule>;
const HUGE_KEYS = { pageSize: true, limit: true } as const satisfies KeyTable<{ pageSize: string; limit: number }>;
const CGROUP_KEYS = { path: true } as const satisfies KeyTable<CgroupOption>;

/** What the container asked of cgroups, validated: built only when it asked (the hot path has none). */
export interface CgroupSpec {
  /** The parent, or null for the caller's own cgroup. */
  parent: string | null;
  resources: CgroupResources;
  /** Any limit at all (rootless without a delegated subtree is an error then). */
  limited: boolean;
}

function obj(v: unknown, option: string): object {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid(option, 'must be an object');
  return v;
}

function int(v: unknown, option: string, min: number, max = Number.MAX_SAFE_INTEGER, unlimited = false): number {
  if (!Number.isSafeInteger(v) || (((v as number) < min || (v as number) > max) && !(unlimited && v === -1)))
    throw invalid(option, `must be an integer from ${min} to ${max}${unlimited ? ', or -1 for no limit' : ''}`);
  return v as number;
}

const CPU_LIST_RE = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;
const PAGE_SIZE_RE = /^\d+(KB|MB|GB)$/;

/** Validates `resources` and `cgroup` into a CgroupSpec; null when neither was given. */
export function parseCgroup(resources: unknown, cgroup: unknown): CgroupSpec | null {
  if (resources === undefined && cgroup === undefined) return null;
  let parent: string | null = null;
  if (cgroup !== undefined) {
    checkKeys(obj(cgroup, 'cgroup'), CGROUP_KEYS, 'cgroup');
    const p = (cgroup as CgroupOption).path;
    if (p !== undefined) {
      if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0') || p.split('/').some((c) => c === '..' || c === '.'))
        throw invalid('cgroup.path', `${JSON.stringify(p)} must be an absolute cgroup path without '.' or '..'`);
      parent = p.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
    }
  }
  const r = (resources === undefined ? {} : obj(resources, 'resources')) as CgroupResources;
  checkKeys(r, RESOURCE_KEYS, 'resources');
  const out: CgroupResources = {};
  if (r.memory !== undefined) {
    checkKeys(obj(r.memory, 'resources.memory'), MEMORY_KEYS, 'resources.memory');
    const m: NonNullable<CgroupResources['memory']> = {};
    // Below a few pages the kernel refuses the value (EBUSY) or the container cannot start.
    if (r.memory.limit !== undefined) m.limit = int(r.memory.limit, 'resources.memory.limit', 1 << 20, undefined, true);
    if (r.memory.reservation !== undefined) m.reservation = int(r.memory.reservation, 'resources.memory.reservation', 0, undefined, true);
    if (r.memory.swap !== undefined) {
      m.swap = int(r.memory.swap, 'resources.memory.swap', 0, undefined, true);
      swapToV2(m.swap, m.limit ?? 0, 'resources.memory.swap'); // the same rules hold for v1's memsw
    }
    out.memory = m;
  }
  if (r.pids !== undefined) {
    checkKeys(obj(r.pids, 'resources.pids'), PIDS_KEYS, 'resources.pids');
    out.pids = { limit: int(r.pids.limit, 'resources.pids.limit', 1, undefined, true) };
  }
  if (r.cpu !== undefined) {
    checkKeys(obj(r.cpu, 'resources.cpu'), CPU_KEYS, 'resources.cpu');
    const c: NonNullable<CgroupResources['cpu']> = {};
    if (r.cpu.shares !== undefined && r.cpu.weight !== undefined) throw invalid('resources.cpu.weight', 'give shares or weight, not both');
    if (r.cpu.shares !== undefined) c.shares = int(r.cpu.shares, 'resources.cpu.shares', 2, 262144);
    if (r.cpu.weight !== undefined) c.weight = int(r.cpu.weight, 'resources.cpu.weight', 1, 10000);
    if (r.cpu.quota !== undefined) c.quota = int(r.cpu.quota, 'resources.cpu.quota', 1000, undefined, true);
    if (r.cpu.period !== undefined) c.period = int(r.cpu.period, 'resources.cpu.period', 1000, 1_000_000);
    for (const k of ['cpus', 'mems'] as const) {
      const v = r.cpu[k];
      if (v === undefined) continue;
      if (typeof v !== 'string' || !CPU_LIST_RE.test(v)) throw invalid(`resources.cpu.${k}`, `${JSON.stringify(v)} is not a list like '0-2,4'`);
      c[k] = v;
    }
    out.cpu = c;
  }
  if (r.blockIO !== undefined) {
    checkKeys(obj(r.blockIO, 'resources.blockIO'), BLKIO_KEYS, 'resources.blockIO');
    out.blockIO = r.blockIO.weight === undefined ? {} : { weight: int(r.blockIO.weight, 'resources.blockIO.weight', 10, 1000) };
  }
  if (r.hugepageLimits !== undefined) {
    if (!Array.isArray(r.hugepageLimits)) throw invalid('resources.hugepageLimits', 'must be an array of { pageSize, limit }');
    out.hugepageLimits = r.hugepageLimits.map((h, i) => {
      const at = `resources.hugepageLimits[${i}]`;
      checkKeys(obj(h, at), HUGE_KEYS, at);
      if (typeof h.pageSize !== 'string' || !PAGE_SIZE_RE.test(h.pageSize)) throw invalid(`${at}.pageSize`, `${JSON.stringify(h.pageSize)} is not a size like '2MB'`);
      return { pageSize: h.pageSize, limit: int(h.limit, `${at}.limit`, 0, undefined, true) };
    });
  }
  if (r.devices !== undefined) {
    if (!Array.isArray(r.devices)) throw invalid('resources.devices', 'must be an array of { allow, type, major, minor, access }');
    out.devices = r.devices.map((d, i) => {
      const at = `resources.devices[${i}]`;
      checkKeys(obj(d, at), DEVICE_KEYS, at);
      if (typeof d.allow !== 'boolean') throw invalid(`${at}.allow`, 'must be a boolean');
      const type = d.type ?? 'a';
      if (type !== 'a' && type !== 'b' && type !== 'c') throw invalid(`${at}.type`, "must be 'a', 'b' or 'c'");
      const access = d.access ?? 'rwm';
      if (typeof access !== 'string' || !/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length)
        throw invalid(`${at}.access`, "must be some of 'r', 'w', 'm'");
      const rule: DeviceRule = { allow: d.allow, type, access };
      if (d.major !== undefined) rule.major = int(d.major, `${at}.major`, 0, 0xfff, true);
      if (d.minor !== undefined) rule.minor = int(d.minor, `${at}.minor`, 0, 0xfffff, true);
      return rule;
    });
  }
  const limited = Object.values(out).some((v) => v !== undefined);
  return { parent, resources: out, limited };
}

// ---- Conversions (runc's, libcontainer/cgroups/utils.go; the OCI spec's cgroup v2 notes) ----

/** v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000], linearly (runc). */
export function sharesToWeight(shares: number): number {
  return Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

/** The inverse, for a weight asked on a v1 host. */
export function weightToShares(weight: number): number {
  return Math.floor(2 + ((weight - 1) * 262142) / 9999);
}

/** v1 blkio.weight [10, 1000] → v2 io.weight [1, 10000] (runc). */
export function blkioWeightToIoWeight(weight: number): number {
  return Math.floor(1 + ((weight - 10) * 9999) / 990);
}

/**
 * OCI memory.swap is memory + swap (v1's memsw); v2's memory.swap.max is the swap alone. -1 is no
 * limit; a swap limit needs a memory limit and may not be below it.
 */
export function swapToV2(swap: number, limit: number, option = 'resources.memory.swap'): number {
  if (swap === -1) return -1;
  if (limit === 0 || limit === -1) throw invalid(option, 'a swap limit needs a memory limit (resources.memory.limit)');
  if (swap < limit) throw invalid(option, `memory + swap (${swap}) is below the memory limit (${limit})`);
  return swap - limit;
}

/** A file of a container's cgroup and what is written to it, in order. */
export interface CgroupWrite {
  /** v1: the controller's hierarchy; v2: the controller to enable in the parent (or '' for core files). */
  controller: string;
  file: string;
  value: string;
}

const max = (n: number) => (n === -1 ? 'max' : String(n));
const v1Limit = (n: number) => String(n); // v1 takes -1 itself for "no limit"

/** The default devices (plan.ts DEFAULT_DEVICES) and /dev/pts, /dev/ptmx: the container's own nodes must stay usable. */
export const ALWAYS_ALLOWED_DEVICES: readonly DeviceRule[] = [
  ...[3, 5, 7, 8, 9].map((minor) => ({ allow: true, type: 'c' as const, major: 1, minor, access: 'rwm' })),
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
];

/** A rule as devices.allow / devices.deny take it: 'c 1:3 rwm', 'a *:* rwm'. */
export function deviceRuleLine(d: DeviceRule): string {
  const n = (v: number | undefined) => (v === undefined || v === -1 ? '*' : String(v));
  return `${d.type ?? 'a'} ${n(d.major)}:${n(d.minor)} ${d.access ?? 'rwm'}`;
}

/** A write list, starting with the cpuset (the same files on both hierarchies). */
function writes(r: CgroupResources): [CgroupWrite[], (controller: string, file: string, value: string) => void] {
  const w: CgroupWrite[] = [];
  const add = (controller: string, file: string, value: string) => void w.push({ controller, file, value });
  if (r.cpu?.cpus !== undefined) add('cpuset', 'cpuset.cpus', r.cpu.cpus);
  if (r.cpu?.mems !== undefined) add('cpuset', 'cpuset.mems', r.cpu.mems);
  return [w, add];
}

/** The v2 writes for `r`, in order (device rules are a BPF program, not a file: ./device-filter.ts). */
export function v2Writes(r: CgroupResources): CgroupWrite[] {
  const [w, add] = writes(r);
  const m = r.memory;
  if (m?.limit !== undefined) add('memory', 'memory.max', max(m.limit));
  if (m?.reservation !== undefined) add('memory', 'memory.low', max(m.reservation));
  if (m?.swap !== undefined) add('memory', 'memory.swap.max', max(swapToV2(m.swap, m.limit ?? 0)));
  if (r.pids) add('pids', 'pids.max', max(r.pids.limit));
  const c = r.cpu;
  if (c?.shares !== undefined) add('cpu', 'cpu.weight', String(sharesToWeight(c.shares)));
  if (c?.weight !== undefined) add('cpu', 'cpu.weight', String(c.weight));
  if (c?.quota !== undefined || c?.period !== undefined) add('cpu', 'cpu.max', `${c.quota === undefined ? 'max' : max(c.quota)} ${c.period ?? 100000}`);
  if (r.blockIO?.weight !== undefined) add('io', 'io.weight', `default ${blkioWeightToIoWeight(r.blockIO.weight)}`);
  for (const h of r.hugepageLimits ?? []) add('hugetlb', `hugetlb.${h.pageSize}.max`, max(h.limit));
  return w;
}

/** The v1 writes for `r`, in order: limit before memsw, period before quota, deny-all before allows. */
export function v1Writes(r: CgroupResources): CgroupWrite[] {
  const [w, add] = writes(r);
  const m = r.memory;
  if (m?.limit !== undefined) add('memory', 'memory.limit_in_bytes', v1Limit(m.limit));
  if (m?.swap !== undefined) add('memory', 'memory.memsw.limit_in_bytes', v1Limit(m.swap));
  if (m?.reservation !== undefined) add('memory', 'memory.soft_limit_in_bytes', v1Limit(m.reservation));
  if (r.pids) add('pids', 'pids.max', max(r.pids.limit));
  const c = r.cpu;
  if (c?.shares !== undefined) add('cpu', 'cpu.shares', String(c.shares));
  if (c?.weight !== undefined) add('cpu', 'cpu.shares', String(weightToShares(c.weight)));
  if (c?.period !== undefined || c?.quota !== undefined) add('cpu', 'cpu.cfs_period_us', String(c.period ?? 100000));
  if (c?.quota !== undefined) add('cpu', 'cpu.cfs_quota_us', String(c.quota));
  if (r.blockIO?.weight !== undefined) add('blkio', 'blkio.weight', String(r.blockIO.weight));
  for (const h of r.hugepageLimits ?? []) add('hugetlb', `hugetlb.${h.pageSize}.limit_in_bytes`, v1Limit(h.limit));
  if (r.devices) {
    // A new cgroup inherits its parent's list: start from nothing, then the rules in order, then
    // the nodes the runtime itself makes in /dev (as runc's allowed devices).
    add('devices', 'devices.deny', 'a *:* rwm');
    for (const d of [...r.devices, ...ALWAYS_ALLOWED_DEVICES]) add('devices', d.allow ? 'devices.allow' : 'devices.deny', deviceRuleLine(d));
  }
  return w;
}

/** The v2 controllers the writes need enabled in the parent's cgroup.subtree_control. */
export function v2Controllers(writes: readonly CgroupWrite[]): string[] {
  return [...new Set(writes.map((w) => w.controller).filter((c) => c !== ''))];
}

// ---- What the kernel reports ----

/** 'key value' lines (cpu.stat, memory.events, memory.stat, cpuacct.stat, memory.oom_control). */
export function parseKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue;
    const n = Number(line.slice(sp + 1).trim());
    if (Number.isFinite(n)) out.set(line.slice(0, sp), n);
  }
  return out;
}

export interface CgroupStats {
  /** Bytes. Absent where the memory controller is not available (v2 without it). */
  memory?: { current: number; peak?: number };
  /** Microseconds of CPU time of all the container's processes. */
  cpu?: { usageUsec: number; userUsec: number; systemUsec: number };
  pids?: { current: number };
  /** OOM events: times the limit was hit (`oom`) and processes the OOM killer killed (`oomKill`). */
  oom?: { oom: number; oomKill: number };
}
