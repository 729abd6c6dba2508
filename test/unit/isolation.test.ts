/**
 * The file-system isolation options without root: parsing into the spec, and the ops the plan
 * makes of them (their order against /proc, /dev/null, /proc/sys and the root).
 */
import { describe, expect, it } from 'vitest';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildPlan, opPath, type HostInfo, type Op } from '../../src-ts/plan/plan.js';
import { defaultMounts } from '../../src-ts/spec/mounts.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, RLIM_INFINITY } from '../../src-ts/spec/isolation.js';
import { buildSpec, type ContainerOptions, type Spec } from '../../src-ts/spec/spec.js';
import { expectInvalid } from './helpers.js';
import { WireReader } from './wire-reader.js';

const HOST: HostInfo = { cgroup: 'hybrid', resolvConf: '', mountMode: 'base' };
const spec = (o: Record<string, unknown> = {}): Spec =>
  buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep'], ...o } as unknown as ContainerOptions, () => '0123456789abcdef');
const plan = (o: Record<string, unknown> = {}) => {
  const s = spec(o);
  return buildPlan(s, HOST, { bindSourceIsFile: s.mounts.map(() => false) });
};
const index = (ops: Op[], kind: Op['kind']) => ops.findIndex((op) => op.kind === kind);

describe('maskedPaths and readonlyPaths', () => {
  it("default to runc's lists", () => {
    const s = spec();
    expect(s.maskedPaths).toEqual(DEFAULT_MASKED_PATHS);
    expect(s.readonlyPaths).toEqual(DEFAULT_READONLY_PATHS);
    expect(s.maskedPaths).toContain('/proc/kcore');
    expect(s.readonlyPaths).toContain('/proc/sys');
  });

  it('a list replaces the default, normalised and without duplicates; [] turns them off', () => {
    expect(spec({ maskedPaths: ['/proc//keys', '/proc/keys/'] }).maskedPaths).toEqual(['/proc/keys']);
    const off = plan({ maskedPaths: [], readonlyPaths: [] }).ops;
    expect(off.some((op) => op.kind === 'mask-path' || op.kind === 'readonly-path')).toBe(false);
  });

  it.each([['proc/kcore'], ['/proc/../etc'], ['/proc/./x'], ['/'], [''], [7], ['/a\0b']])('%j is EINVAL naming the entry', (p) => {
    expectInvalid(() => spec({ maskedPaths: [p] }), { option: 'maskedPaths[0]' });
    expectInvalid(() => spec({ readonlyPaths: ['/ok', p] }), { option: 'readonlyPaths[1]' });
  });

  it('not a list: EINVAL', () => {
    expectInvalid(() => spec({ maskedPaths: '/proc/kcore' }), { option: 'maskedPaths' });
  });

  it('come after proc, sysfs and /dev/null, sysctls before them, and all before the root is entered', () => {
    const ops = plan({ sysctl: { 'net.ipv4.ip_forward': '1' } }).ops;
    const lastMount = ops.map((op) => op.kind).lastIndexOf('bind'); // the cgroup bind, the last mount
    const nullNode = ops.findIndex((op) => op.kind === 'mknod' && op.path === 'dev/null');
    const sysctl = index(ops, 'sysctl');
    const ro = index(ops, 'readonly-path');
    const mask = index(ops, 'mask-path');
    const chroot = index(ops, 'chroot');
    expect(lastMount).toBeLessThan(sysctl);
    expect(nullNode).toBeLessThan(sysctl);
    expect(sysctl).toBeLessThan(ro);
    expect(ro).toBeLessThan(mask);
    expect(ops.map((op) => op.kind).lastIndexOf('mask-path')).toBeLessThan(chroot);
    expect(ops.filter((op) => op.kind === 'mask-path').every((op) => op.kind === 'mask-path' && op.nullDevice === 'dev/null')).toBe(true);
    expect(opPath(ops[mask]!)).toBe('/proc/acpi');
  });
});

describe('rlimits', () => {
  it('default RLIMIT_NOFILE 1024/1024, prlimit64 after the root is entered and before setuser', () => {
    const ops = plan().ops;
    const r = ops.filter((op) => op.kind === 'rlimit');
    expect(r).toEqual([{ stage: 'security', kind: 'rlimit', resource: 7, softLo: 1024, softHi: 0, hardLo: 1024, hardHi: 0 }]);
    expect(index(ops, 'chroot')).toBeLessThan(index(ops, 'rlimit'));
    expect(index(ops, 'rlimit')).toBeLessThan(index(ops, 'setuser'));
  });

  it("a list replaces the default; 'unlimited', Infinity and 2^64 (JSON's rounding) are RLIM_INFINITY; bigints are exact", () => {
    const s = spec({
      rlimits: [
        { type: 'RLIMIT_CORE', soft: 0, hard: 'unlimited' },
        { type: 'RLIMIT_AS', soft: 2n ** 40n + 1n, hard: Infinity },
        { type: 'RLIMIT_STACK', soft: 8388608, hard: 2 ** 64 },
      ],
    });
    expect(s.rlimits.map((r) => [r.type, r.resource, r.soft, r.hard])).toEqual([
      ['RLIMIT_CORE', 4, 0n, RLIM_INFINITY],
      ['RLIMIT_AS', 9, 2n ** 40n + 1n, RLIM_INFINITY],
      ['RLIMIT_STACK', 3, 8388608n, RLIM_INFINITY],
    ]);
    const ops = buildPlan(s, HOST, { bindSourceIsFile: s.mounts.map(() => false) }).ops.filter((op) => op.kind === 'rlimit');
    expect(ops[1]).toMatchObject({ resource: 9, softLo: 1, softHi: 256, hardLo: 0xffffffff, hardHi: 0xffffffff });
    // On the wire: resource in mflags, the halves in n[0..3].
    const w = new WireReader(encodePlan(buildPlan(s, HOST, { bindSourceIsFile: s.mounts.map(() => false) }))).ops.find((o) => o.kind === 34 && o.mflags === 9n)!;
    expect(w.n).toEqual([1, 256, 0xffffffff, 0xffffffff]);
  });

  it.each([
    [[{ type: 'RLIMIT_NOPE', soft: 1, hard: 1 }], 'rlimits[0].type'],
    [[{ type: 'RLIMIT_NOFILE', soft: 2, hard: 1 }], 'rlimits[0].soft'],
    [[{ type: 'RLIMIT_NOFILE', soft: -1, hard: 1 }], 'rlimits[0].soft'],
    [[{ type: 'RLIMIT_NOFILE', soft: 1, hard: 2 ** 60 }], 'rlimits[0].hard'],
    [[{ type: 'RLIMIT_NOFILE', soft: 1, hard: 1 }, { type: 'RLIMIT_NOFILE', soft: 1, hard: 1 }], 'rlimits[1].type'],
    [[{ type: 'RLIMIT_NOFILE', soft: 1, hard: 1, extra: 1 }], 'rlimits[0].extra'],
    [{ type: 'RLIMIT_NOFILE' }, 'rlimits'],
  ])('%j is EINVAL at %s', (rlimits, option) => {
    expectInvalid(() => spec({ rlimits }), { option });
  });

  it("a type without its RLIMIT_ prefix is refused with the name it lacks", () => {
    const e = expectInvalid(() => spec({ rlimits: [{ type: 'nofile', soft: 1, hard: 1 }] }), { option: 'rlimits[0].type' });
    expect(e.message).toContain("did you mean 'RLIMIT_NOFILE'?");
  });
});

describe('oomScoreAdj', () => {
  it('-1000..1000, no op in the child (the parent writes it after exec)', () => {
    expect(spec({ oomScoreAdj: -1000 }).oomScoreAdj).toBe(-1000);
    expect(spec().oomScoreAdj).toBeNull();
    expect(plan({ oomScoreAdj: 500 }).ops).toEqual(plan().ops);
    for (const v of [1001, -1001, 1.5, '5']) expectInvalid(() => spec({ oomScoreAdj: v }), { option: 'oomScoreAdj' });
  });
});

describe('sysctl', () => {
  it('namespaced keys become paths under proc/sys, dots or slashes', () => {
    const s = spec({ sysctl: { 'net.ipv4.ip_forward': '1', 'kernel/shmmax': '4096', 'fs.mqueue.msg_max': '20', 'kernel.domainname': 'example' } });
    expect(s.sysctl).toEqual([
      ['proc/sys/net/ipv4/ip_forward', '1'],
      ['proc/sys/kernel/shmmax', '4096'],
      ['proc/sys/fs/mqueue/msg_max', '20'],
      ['proc/sys/kernel/domainname', 'example'],
    ]);
  });

  it.each([
    [{ 'vm.swappiness': '1' }, {}, 'EPERM'],
    [{ 'kernel.pid_max': '1' }, {}, 'EPERM'],
    [{ 'kernel.sem': '1' }, { namespaces: { ipc: false } }, 'EPERM'],
    [{ 'net.core.somaxconn': '1' }, { namespaces: { network: false } }, 'EPERM'],
    [{ 'net.core.somaxconn': '1' }, { namespaces: { network: 'shared' } }, 'EPERM'],
    [{ 'kernel.domainname': 'x' }, { namespaces: { uts: false } }, 'EPERM'],
    [{ 'kernel.hostname': 'x' }, {}, 'EINVAL'],
    [{ 'net..x': '1' }, {}, 'EINVAL'],
    [{ 'net/../vm/x': '1' }, {}, 'EINVAL'],
    [{ 'net.ipv4.ip_forward': 1 }, {}, 'EINVAL'],
  ])('%j with %j is %s at validate', (sysctl, extra, code) => {
    expectInvalid(() => spec({ sysctl, ...extra }), { code, option: `sysctl.${Object.keys(sysctl)[0]}` });
  });

  it('needs proc at /proc', () => {
    expectInvalid(() => spec({ sysctl: { 'net.ipv4.ip_forward': '1' }, mounts: defaultMounts.filter((m) => m.destination !== '/proc') }), { option: 'sysctl' });
  });
});

describe('devices', () => {
  it('mknod with the type and mode, a parent made first, chown only when not root; a default node replaced', () => {
    const ops = plan({
      devices: [
        { path: '/dev/net/tun', type: 'c', major: 10, minor: 200, fileMode: 0o600, uid: 5, gid: 6 },
        { path: '/dev/null', type: 'u', major: 1, minor: 3, fileMode: 0o600 },
        { path: '/dev/loop0', type: 'b', major: 7, minor: 0 },
        { path: '/dev/fifo', type: 'p' },
      ],
    }).ops;
    const dev = ops.filter((op) => ['mkdir', 'mknod', 'chown'].includes(op.kind) && op.stage === 'device');
    const nodes = ops.filter((op) => op.kind === 'mknod' && op.path === 'dev/null');
    expect(nodes).toEqual([{ stage: 'device', kind: 'mknod', path: 'dev/null', mode: 0o020600, major: 1, minor: 3, hostPath: '', bindFallback: false }]);
    expect(dev.slice(-6)).toEqual([
      { stage: 'device', kind: 'mkdir', path: 'dev/net' },
      { stage: 'device', kind: 'mknod', path: 'dev/net/tun', mode: 0o020600, major: 10, minor: 200, hostPath: '', bindFallback: false },
      { stage: 'device', kind: 'chown', path: 'dev/net/tun', uid: 5, gid: 6 },
      { stage: 'device', kind: 'mknod', path: 'dev/null', mode: 0o020600, major: 1, minor: 3, hostPath: '', bindFallback: false },
      { stage: 'device', kind: 'mknod', path: 'dev/loop0', mode: 0o060666, major: 7, minor: 0, hostPath: '', bindFallback: false },
      { stage: 'device', kind: 'mknod', path: 'dev/fifo', mode: 0o010666, major: 0, minor: 0, hostPath: '', bindFallback: false },
    ]);
    // The masks still come after every node (they bind the container's /dev/null).
    expect(ops.map((op) => op.kind).lastIndexOf('mknod')).toBeLessThan(index(ops, 'mask-path'));
  });

  it.each([
    [{ path: '/etc/x', type: 'c', major: 1, minor: 1 }, 'devices[0].path'],
    [{ path: '/dev', type: 'c', major: 1, minor: 1 }, 'devices[0].path'],
    [{ path: 'dev/x', type: 'c', major: 1, minor: 1 }, 'devices[0].path'],
    [{ path: '/dev/../x', type: 'c', major: 1, minor: 1 }, 'devices[0].path'],
    [{ path: '/dev/pts', type: 'c', major: 1, minor: 1 }, 'devices[0].path'],
    [{ path: '/dev/x', type: 'z', major: 1, minor: 1 }, 'devices[0].type'],
    [{ path: '/dev/x', type: 'c', minor: 1 }, 'devices[0].major'],
    [{ path: '/dev/x', type: 'c', major: 4096, minor: 1 }, 'devices[0].major'],
    [{ path: '/dev/x', type: 'c', major: 1, minor: 1, fileMode: 0o1777 }, 'devices[0].fileMode'],
    [{ path: '/dev/x', type: 'c', major: 1, minor: 1, uid: -1 }, 'devices[0].uid'],
    [{ path: '/dev/x', type: 'c', major: 1, minor: 1, owner: 0 }, 'devices[0].owner'],
  ])('%j is EINVAL at %s', (d, option) => {
    expectInvalid(() => spec({ devices: [d] }), { option });
  });

  it('twice the same path, or no /dev tmpfs in the mounts: EINVAL', () => {
    const d = { path: '/dev/x', type: 'c', major: 1, minor: 1 };
    expectInvalid(() => spec({ devices: [d, d] }), { option: 'devices[1].path' });
    expectInvalid(() => spec({ devices: [d], mounts: defaultMounts.filter((m) => !m.destination.startsWith('/dev')) }), { option: 'devices' });
  });
});

describe('writableSize and readonlyRootfs', () => {
  it("64 MiB by default; bytes, k/m/g, 'unlimited' (no size=)", () => {
    expect(spec().root).toEqual({ writableKiB: 65536, readonly: false });
    expect(spec({ writableSize: '256m' }).root.writableKiB).toBe(262144);
    expect(spec({ writableSize: '2G' }).root.writableKiB).toBe(2 * 1024 * 1024);
    expect(spec({ writableSize: 1024 * 1024 + 1 }).root.writableKiB).toBe(1025); // rounded up to a KiB
    expect(spec({ writableSize: 'unlimited' }).root.writableKiB).toBe(0);
    expect(plan({ writableSize: '8m' }).ops.find((op) => op.kind === 'root-upper-detached')).toEqual({ stage: 'rootfs', kind: 'root-upper-detached', sizeKiB: 8192 });
  });

  it.each([['1k'], [0], [-5], ['12x'], ['5 m'], [1.5], ['5t'], [2 ** 53]])('writableSize %j is EINVAL', (v) => {
    expectInvalid(() => spec({ writableSize: v }), { option: 'writableSize' });
  });

  it('readonlyRootfs: root-readonly after every write into the root, before it is entered', () => {
    const ops = plan({ readonlyRootfs: true, devices: [{ path: '/dev/a/b', type: 'p' }] }).ops;
    const i = index(ops, 'root-readonly');
    expect(ops[i]).toEqual({ stage: 'rootfs', kind: 'root-readonly' });
    expect(ops.map((op) => op.kind).lastIndexOf('mkdir')).toBeLessThan(i);
    expect(ops.map((op) => op.kind).lastIndexOf('mask-path')).toBeLessThan(i);
    expect(i).toBeLessThan(index(ops, 'chroot'));
    expect(index(plan().ops, 'root-readonly')).toBe(-1);
    expectInvalid(() => spec({ readonlyRootfs: 'yes' }), { option: 'readonlyRootfs' });
  });
});
