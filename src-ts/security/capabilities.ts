/**
 * The capabilities option → the five capability sets as bit masks, checked against this kernel and
 * this process. Pure given the host's facts (`HostCaps`), which are read once per process; the
 * child only applies the masks (src-native/child/ops_security.c).
 */
import { readFileSync } from 'node:fs';
import { invalid } from '../errors.js';
import { checkKeys, closest, type KeyTable } from '../spec/keys.js';

/** Capability numbers, linux/capability.h (index = number). */
export const CAPABILITY_NAMES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;
export type CapabilityName = (typeof CAPABILITY_NAMES)[number];

/** The OCI default (`runc spec`, `crun spec`). */
export const DEFAULT_CAPABILITIES: readonly CapabilityName[] = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** Changes to the default set: names with or without CAP_, any case; 'ALL' for every one. */
export interface CapabilityChanges {
  add?: readonly string[];
  drop?: readonly string[];
}

/** OCI `process.capabilities`: each set given in full (a missing set is empty). */
export interface OciCapabilities {
  bounding?: readonly string[];
  effective?: readonly string[];
  inheritable?: readonly string[];
  permitted?: readonly string[];
  ambient?: readonly string[];
}

export type CapabilitiesOption = CapabilityChanges | OciCapabilities;

/** The five sets as masks (bit i = capability i), and the kernel's highest capability. */
export interface CapSets {
  bounding: number;
  effective: number;
  permitted: number;
  inheritable: number;
  ambient: number;
  /** /proc/sys/kernel/cap_last_cap: the child drops the bounding set up to it. */
  last: number;
}

/** What the host allows: the kernel's highest capability, and the Node process's bounding set. */
export interface HostCaps {
  last: number;
  bounding: number;
}

const CHANGE_KEYS = { add: true, drop: true } as const satisfies KeyTable<CapabilityChanges>;
const OCI_KEYS = { bounding: true, effective: true, inheritable: true, permitted: true, ambient: true } as const satisfies KeyTable<OciCapabilities>;
const OCI_SETS = Object.keys(OCI_KEYS) as (keyof OciCapabilities)[];
const ALL_KEYS = { ...CHANGE_KEYS, ...OCI_KEYS };
const NUMBER = new Map<string, number>(CAPABILITY_NAMES.map((n, i) => [n, i]));

// Masks are plain numbers (capabilities stop well below 2^53); JS bit operators stop at 32 bits,
// so bits are tested and set by arithmetic, with the powers of two precomputed.
const POW = Array.from({ length: 64 }, (_, i) => 2 ** i);
const has = (mask: number, c: number) => Math.floor(mask / POW[c]!) % 2 === 1;
const withCap = (mask: number, c: number) => (has(mask, c) ? mask : mask + POW[c]!);
const withoutCap = (mask: number, c: number) => (has(mask, c) ? mask - POW[c]! : mask);
/** The capabilities of a mask, lowest first. */
export function capsOf(mask: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < 53 && POW[c]! <= mask; c++) if (has(mask, c)) out.push(c);
  return out;
}
const maskOf = (caps: Iterable<number>) => {
  let m = 0;
  for (const c of caps) m = withCap(m, c);
  return m;
};

/** A mask as the names of its capabilities (for messages and tests). */
export function capabilityNames(mask: number): string[] {
  return capsOf(mask).map((c) => CAPABILITY_NAMES[c] ?? `cap ${c}`);
}

/**
 * A capability name → its number, or the option path's error: unknown (EINVAL), above this
 * kernel's cap_last_cap (EINVAL), or missing from the Node process's own bounding set (EPERM: a
 * process cannot hand on what it cannot have).
 */
function capNumber(v: unknown, option: string, host: HostCaps): number {
  if (typeof v !== 'string') throw invalid(option, 'must be a capability name (a string)');
  const upper = v.toUpperCase();
  const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  const c = NUMBER.get(name);
  if (c === undefined) {
    const near = closest(name, CAPABILITY_NAMES);
    throw invalid(option, `${JSON.stringify(v)} is not a Linux capability${near ? ` (did you mean '${near.slice(4)}'?)` : ''}`);
  }
  if (c > host.last) throw invalid(option, `${name} is not known to this kernel (cap_last_cap is ${host.last})`);
  if (!has(host.bounding, c))
    throw invalid(option, `${name} is not in the bounding set of this Node process, so no container it starts can have it`, 'EPERM');
  return c;
}

function nameList(v: unknown, option: string): readonly unknown[] {
  if (!Array.isArray(v)) throw invalid(option, 'must be an array of capability names');
  return v;
}

/** Every capability this process can give: the kernel's, within its own bounding set. */
function allOf(host: HostCaps): number {
  let m = 0;
  for (let c = 0; c <= Math.min(host.last, 52); c++) if (has(host.bounding, c)) m += POW[c]!;
  return m;
}

const isAll = (v: unknown) => typeof v === 'string' && v.toUpperCase() === 'ALL';

function fromChanges(o: CapabilityChanges, host: HostCaps): number {
  const add = nameList(o.add ?? [], 'capabilities.add');
  const drop = nameList(o.drop ?? [], 'capabilities.drop');
  const named = (list: readonly unknown[], at: string) =>
    list.flatMap((v, i) => (isAll(v) ? [] : [[capNumber(v, `${at}[${i}]`, host), i] as const]));
  const adds = named(add, 'capabilities.add');
  const drops = named(drop, 'capabilities.drop');
  for (const [c, i] of drops)
    if (adds.some(([a]) => a === c)) throw invalid(`capabilities.drop[${i}]`, `${CAPABILITY_NAMES[c]} is in capabilities.add too`);
  // ALL in drop starts from nothing, ALL in add from everything; then the named ones.
  let set = defaultMask(host);
  if (drop.some(isAll)) set = 0;
  if (add.some(isAll)) set = allOf(host);
  for (const [c] of drops) set = withoutCap(set, c);
  for (const [c] of adds) set = withCap(set, c);
  return set;
}

function fromOci(o: OciCapabilities, host: HostCaps): CapSets {
  const sets = {} as Record<keyof OciCapabilities, number>;
  const where = {} as Record<keyof OciCapabilities, Map<number, number>>; // cap → index, for messages
  for (const k of OCI_SETS) {
    const list = nameList(o[k] ?? [], `capabilities.${k}`);
    where[k] = new Map();
    list.forEach((v, i) => {
      if (isAll(v))
        throw invalid(`capabilities.${k}[${i}]`, "'ALL' is allowed in add and drop only; list the capabilities of each OCI set");
      const c = capNumber(v, `capabilities.${k}[${i}]`, host);
      if (!where[k].has(c)) where[k].set(c, i);
    });
    sets[k] = maskOf(where[k].keys());
  }
  // What capset(2) and PR_CAP_AMBIENT_RAISE would refuse in the child, refused here with the entry.
  const within = (k: keyof OciCapabilities, of: number, why: string) => {
    for (const [c, i] of where[k]) if (!has(of, c)) throw invalid(`capabilities.${k}[${i}]`, `${CAPABILITY_NAMES[c]} ${why}`);
  };
  within('effective', sets.permitted, 'is not in capabilities.permitted (effective must be a subset of permitted)');
  within('inheritable', sets.bounding, 'is not in capabilities.bounding (inheritable must be a subset of bounding)');
  within(
    'ambient',
    maskOf(capsOf(sets.inheritable).filter((c) => has(sets.permitted, c))),
    'must be in both capabilities.permitted and capabilities.inheritable to be ambient (runc and crun skip it silently)',
  );
  return { ...sets, last: host.last };
}

const DEFAULT_NUMBERS = DEFAULT_CAPABILITIES.map((n) => NUMBER.get(n)!);
const defaultMask = (host: HostCaps) => maskOf(DEFAULT_NUMBERS.filter((c) => c <= host.last && has(host.bounding, c)));

/**
 * The short form's one set in all five: bounding, effective and permitted as OCI's default has
 * it, and inheritable and ambient too, so that a non-root user keeps the set across execve (see
 * docs/security.md for why that differs from `runc spec`).
 */
const allFive = (mask: number, host: HostCaps): CapSets => ({
  bounding: mask,
  effective: mask,
  permitted: mask,
  inheritable: mask,
  ambient: mask,
  last: host.last,
});

function deepFrozen(o: object): boolean {
  if (!Object.isFrozen(o)) return false;
  for (const k in o) {
    const v = (o as Record<string, unknown>)[k];
    if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) return false;
  }
  return true;
}
const cache = new WeakMap<HostCaps, { default: CapSets; frozen: WeakMap<object, CapSets> }>();

/**
 * The capabilities option → CapSets, or a ContainerError (stage 'validate') naming the entry.
 * The default and a (deeply) frozen option object are computed once per host; any other object is
 * computed each time, since it may have changed since.
 */
export function capabilitiesOf(option: unknown, host: HostCaps): CapSets {
  let c = cache.get(host);
  if (!c) cache.set(host, (c = { default: allFive(defaultMask(host), host), frozen: new WeakMap() }));
  if (option === undefined) return c.default;
  if (option === null || typeof option !== 'object' || Array.isArray(option))
    throw invalid('capabilities', 'must be { add?, drop? } or the OCI sets { bounding, effective, inheritable, permitted, ambient }');
  const frozen = deepFrozen(option);
  const hit = frozen ? c.frozen.get(option) : undefined;
  if (hit) return hit;
  checkKeys(option, ALL_KEYS, 'capabilities');
  const o = option as Record<string, unknown>;
  const oci = OCI_SETS.some((k) => o[k] !== undefined);
  if (oci && (o.add !== undefined || o.drop !== undefined))
    throw invalid('capabilities', 'takes either { add, drop } or the OCI sets, not both');
  const sets = oci ? fromOci(option as OciCapabilities, host) : allFive(fromChanges(option as CapabilityChanges, host), host);
  if (frozen) c.frozen.set(option, sets);
  return sets;
}

/** A /proc/self/status mask line ("CapBnd:\t000001ffffffffff") as a number. */
export function parseCapMask(hex: string): number {
  const h = hex.trim();
  if (!/^[0-9a-fA-F]{1,16}$/.test(h)) throw new RangeError(`not a capability mask: ${JSON.stringify(hex)}`);
  const lo = parseInt(h.slice(-8), 16);
  const hi = h.length > 8 ? parseInt(h.slice(0, -8), 16) : 0;
  return hi * 2 ** 32 + lo;
}

let hostCaps: HostCaps | undefined;
/** This kernel's cap_last_cap and this process's bounding set, read once. */
export function hostCapabilities(): HostCaps {
  if (hostCaps) return hostCaps;
  const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  const line = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  const bounding = line ? parseCapMask(line[1]!) : 0;
  return (hostCaps = { last: Math.min(last, 63), bounding });
}
