/**
 * The addon's own check of a plan buffer (src-native/plan.cc, PreparePlan) on what the TypeScript
 * side never produces: a plan the addon refuses throws at stage 'plan' before anything is cloned,
 * so these run without root.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { NativeAddon } from '../../src-ts/native/addon.js';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildPlan, NO_SLOT, TTY_BUILT_ROOT, type Op, type Plan } from '../../src-ts/plan/plan.js';
import { CLONE, FD } from '../../src-ts/plan/wire.js';
import type { HostCaps } from '../../src-ts/security/capabilities.js';
import { buildSpec, type ContainerOptions } from '../../src-ts/spec/spec.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const addon = (createRequire(import.meta.url)('node-gyp-build') as (dir: string) => NativeAddon)(root);

const tail: Op[] = [
  { stage: 'exec', kind: 'resolve-exec', file: '/x', searchPath: null },
  { stage: 'sync', kind: 'ready' },
  { stage: 'sync', kind: 'wait-start' },
  { stage: 'exec', kind: 'exec', args: ['/x'], env: [], umask: 0o22 },
];
const unshare: Op = { stage: 'prepare', kind: 'unshare', flags: 0x20000 };
const clone = (slot: number, source = '/srv'): Op => ({ stage: 'mount', kind: 'clone-tree', source, recursive: false, slot, ignoreMissing: false });
const bind = (slot: number, target = 'data'): Op => ({
  stage: 'mount',
  kind: 'bind',
  source: '/srv',
  target,
  recursive: false,
  attrs: 0,
  propagation: 0,
  file: false,
  ignoreMissing: false,
  slot,
});

/** The addon's verdict on a plan of these ops: the error message, or null if it would spawn. */
function refusal(ops: Op[]): string | null {
  return planRefusal({ cloneFlags: 0, detached: false, trace: false, base: false, ops: [...ops, ...tail] });
}

/** The addon's verdict on a whole plan. */
function planRefusal(plan: Plan): string | null {
  try {
    // A valid plan would clone a child here; every case below must throw first.
    new addon.Child(encodePlan(plan), [-3, -3, -3], () => {});
  } catch (e) {
    expect((e as { stage?: string }).stage).toBe('plan');
    return (e as Error).message;
  }
  return null;
}

describe('PreparePlan: clone-tree slots', () => {
  it('a clone-tree after unshare (the child no longer sees the host)', () => {
    expect(refusal([unshare, clone(0), bind(0)])).toMatch(/CLONE_TREE after UNSHARE/);
  });

  it('a slot out of range, or filled twice', () => {
    expect(refusal([clone(128), unshare, bind(128)])).toMatch(/CLONE_TREE: slot out of range or filled twice/);
    expect(refusal([clone(3), clone(3), unshare, bind(3)])).toMatch(/CLONE_TREE: slot out of range or filled twice/);
  });

  it('a bind of a slot no clone-tree filled, or of one already taken', () => {
    expect(refusal([clone(0), unshare, bind(1)])).toMatch(/BIND: slot not filled/);
    expect(refusal([clone(0), unshare, bind(0), bind(0, 'other')])).toMatch(/BIND: slot not filled .*taken twice/);
  });

  it('attach-root in a plan that is not for the base mount namespace', () => {
    expect(refusal([unshare, { stage: 'rootfs', kind: 'attach-root' }])).toMatch(/ATTACH_ROOT without a detached root/);
  });

  it('a write-file into an existing file (upper/ beneath the tmpfs) without a detached root, or after attach-root', () => {
    const existing: Op = { stage: 'file', kind: 'write-file', path: 'etc/hostname', content: 'h\n', mode: 0o644, existing: true };
    expect(refusal([existing, unshare])).toMatch(/WRITE_FILE existing outside a detached root/);
    const upper: Op = { stage: 'rootfs', kind: 'root-upper-detached', sizeKiB: 0 };
    const overlay: Op = { stage: 'rootfs', kind: 'root-overlay-detached', lowers: ['/srv'], userxattr: false };
    const attach: Op = { stage: 'rootfs', kind: 'attach-root' };
    expect(refusal([upper, overlay, unshare, attach, existing])).toMatch(/WRITE_FILE existing outside a detached root/);
  });

  it('a second unshare', () => {
    expect(refusal([unshare, unshare])).toMatch(/a second UNSHARE/);
  });
});

describe('PreparePlan: cap-bounding', () => {
  it('cap_last_cap above 63 (the child tests a 64-bit mask by shifting)', () => {
    expect(refusal([{ stage: 'security', kind: 'cap-bounding', keep: 0, last: 64 }])).toMatch(/CAP_BOUNDING: cap_last_cap above 63 at 0/);
  });
});

describe('PreparePlan: the isolation ops', () => {
  it('a mask, read-only path, sysctl or read-only root before unshare (it would land in the host namespace)', () => {
    for (const op of [
      { stage: 'security', kind: 'mask-path', path: 'proc/kcore', nullDevice: 'dev/null', slot: NO_SLOT },
      { stage: 'security', kind: 'readonly-path', path: 'proc/sys' },
      { stage: 'security', kind: 'sysctl', path: 'proc/sys/net/ipv4/ip_forward', value: '1' },
      { stage: 'rootfs', kind: 'root-readonly' },
    ] as Op[])
      expect(refusal([op, unshare]), op.kind).toMatch(/an isolation op before UNSHARE at 0/);
  });

  it('a mask naming a slot no mask-tmpfs filled, and a bind taking the mask-tmpfs slot', () => {
    const mask: Op = { stage: 'security', kind: 'mask-path', path: 'proc/acpi', nullDevice: 'dev/null', slot: 0 };
    expect(refusal([unshare, mask])).toMatch(/MASK_PATH: slot not filled by a MASK_TMPFS at 1/);
    const bind: Op = { stage: 'mount', kind: 'bind', source: '/x', target: 'x', recursive: false, attrs: 0, propagation: 0, file: false, ignoreMissing: false, slot: 0 };
    expect(refusal([{ stage: 'security', kind: 'mask-tmpfs', slot: 0 }, unshare, bind])).toMatch(/BIND: slot not filled by a CLONE_TREE, or taken twice/);
  });

  it('an rlimit resource beyond RLIM_NLIMITS', () => {
    expect(refusal([unshare, { stage: 'security', kind: 'rlimit', resource: 16, softLo: 1, softHi: 0, hardLo: 1, hardHi: 0 }])).toMatch(/RLIMIT: resource out of range/);
  });
});

const CAPS: HostCaps = { last: 40, bounding: 2 ** 41 - 1 };
/** A plan buildPlan makes of these options (host mode, init binary at /pkg/scratch-init). */
function planOf(o: Partial<ContainerOptions>): Plan {
  const s = buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep', '1'], ...o } as ContainerOptions, () => '0123456789abcdef', { caps: CAPS });
  return buildPlan(s, { cgroup: 'v2', resolvConf: 'nameserver 1.1.1.1\n', mountMode: 'host' }, { bindSourceIsFile: s.mounts.map(() => false), initBinary: '/pkg/scratch-init' });
}

describe('PreparePlan on joins and exec-init', () => {
  it('a pid join with CLONE_NEWPID in the clone flags (two pid namespaces at once)', () => {
    const p = planOf({ namespaces: { pid: { path: '/p' } } });
    expect(planRefusal({ ...p, cloneFlags: CLONE.NEWPID })).toMatch(/SETNS of a pid namespace with CLONE_NEWPID/);
  });

  it('exec-init not last, or with more than SBX_INIT_MAX_ARGS arguments', () => {
    const p = planOf({ init: true });
    const last = p.ops.at(-1)!;
    expect(planRefusal({ ...p, ops: [...p.ops.slice(0, -1), last, { stage: 'exec', kind: 'exec', args: ['/x'], env: [], umask: 0 }] })).toMatch(/EXEC_INIT must be the last op/);
    const many = Array.from({ length: 1025 }, (_, i) => `a${i}`);
    expect(planRefusal({ ...p, ops: [...p.ops.slice(0, -1), { ...last, args: many } as Op] })).toMatch(/EXEC_INIT: argv count out of range/);
  });
});

describe('PreparePlan: tty-open', () => {
  const tty = (o: Partial<Extract<Op, { kind: 'tty-open' }>>): Op => ({ stage: 'device', kind: 'tty-open', path: 'dev/pts/ptmx', socket: FD.PLAN0, root: TTY_BUILT_ROOT, cols: 80, rows: 24, uid: 0, ...o });

  it('refuses stdio or an index out of range as the socket or root, and a size of 0 or above 65535', () => {
    for (const o of [{ socket: 1 }, { socket: 24 }, { root: 2 }, { root: 30 }, { cols: 0 }, { rows: 65536 }, { uid: 0xffffffff }, { uid: 2 ** 32 }]) expect(refusal([tty(o)]), JSON.stringify(o)).toMatch(/TTY_OPEN: bad fd index or size/);
  });

  it('takes a valid one, and then wants the console socket it names (EBADF when not given)', () => {
    expect(refusal([tty({})])).toMatch(/plan fd/);
    expect(refusal([tty({ root: FD.PLAN0 + 1, cols: 65535, rows: 1, uid: 0xfffffffe })])).toMatch(/plan fd/);
  });
});
