import { describe, expect, it } from 'vitest';
import { deviceFilter, encodeInsns, OPCODES, runDeviceFilter } from '../../src-ts/cgroup/device-filter.js';
import { parseLayout } from '../../src-ts/cgroup/layout.js';
import { cgroupName, delegated } from '../../src-ts/cgroup/manager.js';
import {
  ALWAYS_ALLOWED_DEVICES,
  blkioWeightToIoWeight,
  deviceRuleLine,
  parseCgroup,
  parseKeyed,
  sharesToWeight,
  swapToV2,
  v1Writes,
  v2Controllers,
  v2Writes,
  weightToShares,
  type CgroupResources,
  type DeviceRule,
} from '../../src-ts/cgroup/resources.js';
import { buildPlan, type HostInfo } from '../../src-ts/plan/plan.js';
import { buildSpec, type ContainerOptions } from '../../src-ts/spec/spec.js';
import { expectInvalid } from './helpers.js';

const MiB = 1 << 20;
const res = (r: unknown) => parseCgroup(r, undefined)!.resources;

describe('v1 <-> v2 conversions (runc, the OCI spec)', () => {
  it('cpu shares -> weight, linearly from [2, 262144] onto [1, 10000]', () => {
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39); // the v1 default: runc gives 39
    expect(sharesToWeight(262144)).toBe(10000);
    expect(weightToShares(1)).toBe(2);
    expect(weightToShares(10000)).toBe(262144);
    expect(weightToShares(100)).toBe(2597);
    // One way and back lands within one weight step.
    for (const w of [1, 39, 100, 5000, 10000]) expect(Math.abs(sharesToWeight(weightToShares(w)) - w)).toBeLessThanOrEqual(1);
  });

  it('blkio weight [10, 1000] -> io.weight [1, 10000]', () => {
    expect(blkioWeightToIoWeight(10)).toBe(1);
    expect(blkioWeightToIoWeight(500)).toBe(4950);
    expect(blkioWeightToIoWeight(1000)).toBe(10000);
  });

  it('swap: OCI memory + swap -> v2 swap alone; -1 stays no limit; needs a memory limit at or below it', () => {
    expect(swapToV2(64 * MiB, 32 * MiB)).toBe(32 * MiB);
    expect(swapToV2(32 * MiB, 32 * MiB)).toBe(0); // no swap at all
    expect(swapToV2(-1, 32 * MiB)).toBe(-1);
    expectInvalid(() => swapToV2(64 * MiB, 0), { option: 'resources.memory.swap' });
    expectInvalid(() => swapToV2(16 * MiB, 32 * MiB), { option: 'resources.memory.swap' });
  });
});

const everything: CgroupResources = {
  memory: { limit: 32 * MiB, reservation: 16 * MiB, swap: 64 * MiB },
  pids: { limit: 10 },
  cpu: { shares: 512, quota: 20000, period: 100000, cpus: '0-1', mems: '0' },
  blockIO: { weight: 500 },
  hugepageLimits: [{ pageSize: '2MB', limit: 4 * MiB }],
  devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 200, access: 'rw' }],
};

describe('the files each hierarchy gets, for every resource', () => {
  it('v2: one file per limit, converted values', () => {
    expect(v2Writes(res(everything))).toEqual([
      { controller: 'cpuset', file: 'cpuset.cpus', value: '0-1' },
      { controller: 'cpuset', file: 'cpuset.mems', value: '0' },
      { controller: 'memory', file: 'memory.max', value: String(32 * MiB) },
      { controller: 'memory', file: 'memory.low', value: String(16 * MiB) },
      { controller: 'memory', file: 'memory.swap.max', value: String(32 * MiB) },
      { controller: 'pids', file: 'pids.max', value: '10' },
      { controller: 'cpu', file: 'cpu.weight', value: '20' },
      { controller: 'cpu', file: 'cpu.max', value: '20000 100000' },
      { controller: 'io', file: 'io.weight', value: 'default 4950' },
      { controller: 'hugetlb', file: 'hugetlb.2MB.max', value: String(4 * MiB) },
    ]);
    expect(v2Controllers(v2Writes(res(everything)))).toEqual(['cpuset', 'memory', 'pids', 'cpu', 'io', 'hugetlb']);
  });

  it('v2: -1 is "max"; a quota alone keeps the default period; a period alone is "max <period>"; weight as given', () => {
    expect(v2Writes(res({ memory: { limit: -1, swap: -1 }, pids: { limit: -1 }, cpu: { quota: -1 } }))).toEqual([
      { controller: 'memory', file: 'memory.max', value: 'max' },
      { controller: 'memory', file: 'memory.swap.max', value: 'max' },
      { controller: 'pids', file: 'pids.max', value: 'max' },
      { controller: 'cpu', file: 'cpu.max', value: 'max 100000' },
    ]);
    expect(v2Writes(res({ cpu: { quota: 50000 } }))).toEqual([{ controller: 'cpu', file: 'cpu.max', value: '50000 100000' }]);
    expect(v2Writes(res({ cpu: { period: 50000 } }))).toEqual([{ controller: 'cpu', file: 'cpu.max', value: 'max 50000' }]);
    expect(v2Writes(res({ cpu: { weight: 300 } }))).toEqual([{ controller: 'cpu', file: 'cpu.weight', value: '300' }]);
    expect(v2Writes({})).toEqual([]);
  });

  it('v1: limit before memsw, period before quota, deny-all then the rules then the runtime\'s own devices', () => {
    const w = v1Writes(res(everything));
    expect(w.map((x) => [x.controller, x.file, x.value]).slice(0, 11)).toEqual([
      ['cpuset', 'cpuset.cpus', '0-1'],
      ['cpuset', 'cpuset.mems', '0'],
      ['memory', 'memory.limit_in_bytes', String(32 * MiB)],
      ['memory', 'memory.memsw.limit_in_bytes', String(64 * MiB)],
      ['memory', 'memory.soft_limit_in_bytes', String(16 * MiB)],
      ['pids', 'pids.max', '10'],
      ['cpu', 'cpu.shares', '512'],
      ['cpu', 'cpu.cfs_period_us', '100000'],
      ['cpu', 'cpu.cfs_quota_us', '20000'],
      ['blkio', 'blkio.weight', '500'],
      ['hugetlb', 'hugetlb.2MB.limit_in_bytes', String(4 * MiB)],
    ]);
    const dev = w.slice(11).map((x) => `${x.file} ${x.value}`);
    expect(dev.slice(0, 3)).toEqual(['devices.deny a *:* rwm', 'devices.deny a *:* rwm', 'devices.allow c 10:200 rw']);
    expect(dev.slice(3)).toEqual(ALWAYS_ALLOWED_DEVICES.map((d) => `devices.allow ${deviceRuleLine(d)}`));
    expect(dev).toContain('devices.allow c 1:3 rwm');
    expect(dev).toContain('devices.allow c 136:* rwm');
  });

  it('v1: a weight becomes shares; -1 stays -1 (v1 takes it); pids -1 is "max"', () => {
    expect(v1Writes(res({ cpu: { weight: 100 }, memory: { limit: -1 }, pids: { limit: -1 } }))).toEqual([
      { controller: 'memory', file: 'memory.limit_in_bytes', value: '-1' },
      { controller: 'pids', file: 'pids.max', value: 'max' },
      { controller: 'cpu', file: 'cpu.shares', value: '2597' },
    ]);
  });
});

describe('parseCgroup: the resources and cgroup options', () => {
  it('null when neither is given (no cgroup work on the default path)', () => {
    expect(parseCgroup(undefined, undefined)).toBeNull();
    expect(parseCgroup(undefined, {})).toEqual({ parent: null, resources: {}, limited: false });
    expect(parseCgroup({ pids: { limit: 5 } }, { path: '/a//b/' })).toEqual({ parent: '/a/b', resources: { pids: { limit: 5 } }, limited: true });
  });

  it('rejects bad values and unknown keys before anything is made', () => {
    expectInvalid(() => parseCgroup({ pids: { limit: 0 } }, undefined), { option: 'resources.pids.limit' });
    expectInvalid(() => parseCgroup({ pids: { limit: 1.5 } }, undefined), { option: 'resources.pids.limit' });
    expectInvalid(() => parseCgroup({ memory: { limit: 100 } }, undefined), { option: 'resources.memory.limit' });
    expectInvalid(() => parseCgroup({ memory: { swap: 64 * MiB } }, undefined), { option: 'resources.memory.swap' });
    expectInvalid(() => parseCgroup({ memory: { limt: 1 } }, undefined), { option: 'resources.memory.limt' });
    expectInvalid(() => parseCgroup({ cpu: { shares: 1 } }, undefined), { option: 'resources.cpu.shares' });
    expectInvalid(() => parseCgroup({ cpu: { shares: 2, weight: 1 } }, undefined), { option: 'resources.cpu.weight' });
    expectInvalid(() => parseCgroup({ cpu: { cpus: 'all' } }, undefined), { option: 'resources.cpu.cpus' });
    expectInvalid(() => parseCgroup({ cpu: { period: 10 } }, undefined), { option: 'resources.cpu.period' });
    expectInvalid(() => parseCgroup({ blockIO: { weight: 5 } }, undefined), { option: 'resources.blockIO.weight' });
    expectInvalid(() => parseCgroup({ hugepageLimits: [{ pageSize: '2M', limit: 1 }] }, undefined), { option: 'resources.hugepageLimits[0].pageSize' });
    expectInvalid(() => parseCgroup({ devices: [{ allow: 'yes' }] }, undefined), { option: 'resources.devices[0].allow' });
    expectInvalid(() => parseCgroup({ devices: [{ allow: true, access: 'rr' }] }, undefined), { option: 'resources.devices[0].access' });
    expectInvalid(() => parseCgroup({ devices: [{ allow: true, type: 'x' }] }, undefined), { option: 'resources.devices[0].type' });
    expectInvalid(() => parseCgroup({ network: {} }, undefined), { option: 'resources.network' });
    expectInvalid(() => parseCgroup(undefined, { path: 'rel' }), { option: 'cgroup.path' });
    expectInvalid(() => parseCgroup(undefined, { path: '/a/../b' }), { option: 'cgroup.path' });
    expectInvalid(() => parseCgroup(undefined, { parent: '/a' }), { option: 'cgroup.parent' });
    expectInvalid(() => parseCgroup([], undefined), { option: 'resources' });
  });

  it('buildSpec carries it (and has none by default)', () => {
    const s = (o: Partial<ContainerOptions>) => buildSpec({ rootfs: '/r', args: ['/x'], ...o }, () => 'id');
    expect(s({}).cgroup).toBeNull();
    expect(s({ resources: { pids: { limit: 3 } } }).cgroup).toMatchObject({ limited: true });
    expectInvalid(() => s({ resources: { pids: { limit: -2 } } }), { option: 'resources.pids.limit' });
  });
});

describe('placement in the plan', () => {
  const host = (cgroup: HostInfo['cgroup']): HostInfo => ({ cgroup, resolvConf: '', mountMode: 'base' });
  const plan = (o: Partial<ContainerOptions>, h: HostInfo) => {
    const s = buildSpec({ rootfs: '/r', args: ['/x'], ...o }, () => 'id');
    return buildPlan(s, h, { bindSourceIsFile: s.mounts.map(() => false) });
  };

  it('no op on any host: v2 is born in the cgroup (CLONE_INTO_CGROUP), v1 moved in by the parent after the clone', () => {
    const without = plan({}, host('hybrid'));
    for (const h of ['v1', 'hybrid', 'v2'] as const) {
      const p = plan({ resources: { pids: { limit: 5 } } }, host(h));
      expect(p.ops.some((o) => o.kind === 'sync')).toBe(false);
    }
    expect(plan({ cgroup: {} }, host('hybrid')).ops).toEqual(without.ops);
  });
});

describe('layout detection', () => {
  const hybridMountinfo = [
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
    '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    '99 50 0:32 /docker/abc /inside/memory rw - cgroup cgroup rw,memory',
  ].join('\n');
  const procCgroup = '9:name=systemd:/\n4:memory:/jobs/x\n2:cpu,cpuacct:/\n8:pids:/\n0::/user.slice\n';

  it('hybrid: v1 controllers (co-mounted ones share a directory) and a cgroup2 tree; where this process is', () => {
    const l = parseLayout(hybridMountinfo, procCgroup);
    expect(l.kind).toBe('hybrid');
    expect(Object.fromEntries(l.v1)).toEqual({
      cpu: '/sys/fs/cgroup/cpu,cpuacct',
      cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
      memory: '/sys/fs/cgroup/memory',
      pids: '/sys/fs/cgroup/pids',
    });
    expect(l.v2).toBe('/sys/fs/cgroup/unified');
    expect(l.self.get('memory')).toBe('/jobs/x');
    expect(l.self.get('cpuacct')).toBe('/');
    expect(l.self.get('')).toBe('/user.slice');
  });

  it('v2 alone, v1 alone, none', () => {
    expect(parseLayout('30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate', '0::/a\n').kind).toBe('v2');
    expect(parseLayout(hybridMountinfo.split('\n').filter((l) => !l.includes('cgroup2')).join('\n'), procCgroup).kind).toBe('v1');
    expect(parseLayout('31 23 0:28 / /tmp rw - tmpfs tmpfs rw', '').kind).toBe('none');
  });
});

describe('small parts', () => {
  it('parseKeyed reads cpu.stat, memory.events, memory.oom_control', () => {
    expect(Object.fromEntries(parseKeyed('usage_usec 120\nuser_usec 100\nsystem_usec 20\n'))).toEqual({ usage_usec: 120, user_usec: 100, system_usec: 20 });
    expect(parseKeyed('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n').get('oom_kill')).toBe(2);
    expect(parseKeyed('populated 1\nfrozen 0\n').get('frozen')).toBe(0);
  });

  it('cgroup names carry the creating pid (for cleanup after a crash)', () => {
    expect(cgroupName('web', 42)).toBe('sbx-42-web');
  });

  it('delegated(): the parent and its cgroup.procs must both be writable', () => {
    expect(delegated('/cg', () => {})).toBe(true);
    const denied = (p: string) => {
      if (p.endsWith('cgroup.procs')) throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    };
    expect(delegated('/cg', denied)).toBe(false);
  });
});

describe('the v2 device program (BPF_PROG_TYPE_CGROUP_DEVICE), run by an interpreter of its instructions', () => {
  const allowed = (rules: DeviceRule[], type: 'c' | 'b', major: number, minor: number, access: string) =>
    runDeviceFilter(deviceFilter(rules), type, major, minor, access);

  it('deny-all, then a rule: only what the rule names (and the runtime\'s own nodes) is allowed', () => {
    const rules: DeviceRule[] = [{ allow: false }, { allow: true, type: 'c', major: 10, minor: 200, access: 'rw' }];
    expect(allowed(rules, 'c', 10, 200, 'r')).toBe(true);
    expect(allowed(rules, 'c', 10, 200, 'rw')).toBe(true);
    expect(allowed(rules, 'c', 10, 200, 'm')).toBe(false); // mknod not named
    expect(allowed(rules, 'c', 10, 201, 'r')).toBe(false);
    expect(allowed(rules, 'b', 10, 200, 'r')).toBe(false);
    expect(allowed(rules, 'b', 8, 0, 'rw')).toBe(false);
    for (const d of ALWAYS_ALLOWED_DEVICES) expect(allowed(rules, 'c', d.major!, d.minor ?? 7, 'rwm')).toBe(true);
  });

  it('later rules win; no rules at all is deny (but for the runtime\'s nodes); wildcards', () => {
    expect(allowed([{ allow: true }, { allow: false, type: 'c', major: 1, minor: 11 }], 'c', 1, 11, 'r')).toBe(false);
    expect(allowed([{ allow: true }, { allow: false, type: 'c', major: 1, minor: 11 }], 'c', 1, 12, 'r')).toBe(true);
    expect(allowed([{ allow: false, type: 'c', major: 1, minor: 11 }, { allow: true }], 'c', 1, 11, 'r')).toBe(true);
    expect(allowed([], 'c', 4, 1, 'r')).toBe(false);
    expect(allowed([], 'c', 1, 3, 'rw')).toBe(true);
    expect(allowed([{ allow: true, type: 'b', major: 8 }], 'b', 8, 17, 'rwm')).toBe(true);
    expect(allowed([{ allow: true, type: 'b', major: 8 }], 'b', 9, 0, 'r')).toBe(false);
  });

  it('a rule matching everything ends the program (the kernel refuses unreachable instructions)', () => {
    const p = deviceFilter([{ allow: false }]);
    // The runtime's rules first (checked last-first), then deny-all as the final word: no default after it.
    expect(p.at(-2)).toEqual({ code: OPCODES.MOV64_K, dst: 0, src: 0, off: 0, imm: 0 });
    expect(p.filter((x) => x.code === OPCODES.EXIT)).toHaveLength(ALWAYS_ALLOWED_DEVICES.length + 1);
    for (const [i, x] of p.entries()) if (x.code === OPCODES.JNE_K) expect(i + 1 + x.off).toBeLessThan(p.length);
  });

  it('encodes struct bpf_insn: code, dst | src << 4, off, imm, little-endian', () => {
    const b = encodeInsns([{ code: OPCODES.LDX_W, dst: 2, src: 1, off: 4, imm: 0 }, { code: OPCODES.JNE_K, dst: 4, src: 0, off: 3, imm: -1 }]);
    expect([...b]).toEqual([0x61, 0x12, 4, 0, 0, 0, 0, 0, 0x55, 0x04, 3, 0, 0xff, 0xff, 0xff, 0xff]);
  });
});

describe('devices and a device allow-list together', () => {
  it('the nodes `devices` makes are allowed too (as runc adds them), a FIFO needs no rule', () => {
    const s = buildSpec(
      {
        rootfs: '/srv/r',
        args: ['/x'],
        devices: [
          { path: '/dev/fuse', type: 'c', major: 10, minor: 229 },
          { path: '/dev/pipe', type: 'p' },
        ],
        resources: { devices: [{ allow: false }] },
      } as ContainerOptions,
      () => 'id',
    );
    expect(s.cgroup!.resources.devices).toEqual([{ allow: false, type: 'a', access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' }]);
    // Without an allow-list nothing is added (no cgroup at all without resources).
    expect(buildSpec({ rootfs: '/srv/r', args: ['/x'], devices: [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }] } as ContainerOptions, () => 'id').cgroup).toBeNull();
  });
});

describe('cgroupFiles: a cgroup\'s file work in one native call', () => {
  it('runs mkdir, write, open and rmdir in order, stops at the first failure and says which and why', async () => {
    const { mkdtempSync, readFileSync, closeSync, fstatSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { native } = await import('../../src-ts/native/addon.js');
    const dir = mkdtempSync(`${tmpdir()}/sbx-cgfiles-`);
    try {
      const ok = native().cgroupFiles(['mkdir', `${dir}/a`, '', 'open', `${dir}/a`, '', 'rmdir', `${dir}/a`, '']);
      expect(ok.slice(0, 2)).toEqual([3, 0]);
      expect(ok).toHaveLength(3);
      expect(fstatSync(ok[2]!).isDirectory()).toBe(true); // the open's fd, the caller's to close
      closeSync(ok[2]!);
      // A write opens without O_CREAT (a cgroup's files exist): ENOENT at op 2, op 3 not run.
      const bad = native().cgroupFiles(['mkdir', `${dir}/b`, '', 'write', `${dir}/b/f`, 'x', 'mkdir', `${dir}/c`, '']);
      expect(bad).toEqual([1, 2 /* ENOENT */]);
      expect(() => readFileSync(`${dir}/c`)).toThrow(/ENOENT/);
      expect(native().cgroupFiles(['mkdir', `${dir}/b`, ''])).toEqual([0, 17 /* EEXIST */]);
      expect(native().cgroupFiles(['chmod', `${dir}/b`, ''])).toEqual([0, 22 /* EINVAL: no such kind */]);
      expect(() => native().cgroupFiles(['mkdir', `${dir}/b`])).toThrow(TypeError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
