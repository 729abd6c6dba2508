import { describe, expect, it } from 'vitest';
import { BUILTIN_PROC_ENTRIES, NO_SLOT, buildPlan, cloneFlagsOf, hostsFile, opPath, unshareFlagsOf, type FsFacts, type HostInfo, type Op } from '../../src-ts/plan/plan.js';
import { CLONE, FD } from '../../src-ts/plan/wire.js';
import { MOUNT_ATTR, MS, defaultMounts, type MountSpec } from '../../src-ts/spec/mounts.js';
import { DEFAULT_PATH, buildSpec, type ContainerOptions, type Spec } from '../../src-ts/spec/spec.js';
import type { HostCaps } from '../../src-ts/security/capabilities.js';

const HOST: HostInfo = { cgroup: 'hybrid', resolvConf: 'nameserver 1.1.1.1\n', mountMode: 'host' };
const ID = '0123456789abcdef';
const S_IFCHR = 0o020000;
/** A kernel with 41 capabilities (cap_last_cap 40), all in the Node process's bounding set. */
const CAPS: HostCaps = { last: 40, bounding: 2 ** 41 - 1 };
const OCI_DEFAULT = 2 ** 5 + 2 ** 10 + 2 ** 29; // KILL, NET_BIND_SERVICE, AUDIT_WRITE

function spec(o: Partial<ContainerOptions> = {}): Spec {
  return buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep', '1'], ...o } as ContainerOptions, () => ID, { caps: CAPS });
}
const noFiles = (s: Spec): FsFacts => ({ bindSourceIsFile: s.mounts.map(() => false) });
const plan = (o: Partial<ContainerOptions> = {}, host: HostInfo = HOST) => {
  const s = spec(o);
  return buildPlan(s, host, noFiles(s));
};
const kinds = (ops: Op[]) => ops.map((op) => op.kind);

describe('buildPlan with the defaults (hybrid host)', () => {
  const p = plan();

  it('is the exact op list', () => {
    const dev = (name: string, major: number, minor: number): Op => ({
      stage: 'device',
      kind: 'mknod',
      path: `dev/${name}`,
      mode: S_IFCHR | 0o666,
      major,
      minor,
      hostPath: `/dev/${name}`,
      bindFallback: false,
    });
    const link = (path: string, target: string): Op => ({ stage: 'device', kind: 'symlink', target, path });
    const expected: Op[] = [
      { stage: 'mount', kind: 'clone-tree', source: '/sys/fs/cgroup', recursive: true, slot: 0, ignoreMissing: true },
      { stage: 'network', kind: 'netns-fresh' },
      { stage: 'prepare', kind: 'ipcns-fresh' }, // pooled with the network namespace
      { stage: 'prepare', kind: 'unshare', flags: CLONE.NEWNS | CLONE.NEWUTS },
      { stage: 'rootfs', kind: 'make-private', flags: MS.REC | MS.PRIVATE },
      { stage: 'rootfs', kind: 'root-upper', dir: '/srv/rootfs', sizeKiB: 64 * 1024 }, // writableSize's default
      { stage: 'file', kind: 'mkdir', path: 'etc' },
      { stage: 'file', kind: 'write-file', path: 'etc/hostname', content: '0123456789ab\n', mode: 0o644 },
      {
        stage: 'file',
        kind: 'write-file',
        path: 'etc/hosts',
        content: '127.0.0.1\tlocalhost 0123456789ab\n::1\tlocalhost ip6-localhost ip6-loopback\n',
        mode: 0o644,
      },
      { stage: 'file', kind: 'write-file', path: 'etc/resolv.conf', content: 'nameserver 1.1.1.1\n', mode: 0o644 },
      { stage: 'file', kind: 'symlink', target: '/proc/mounts', path: 'etc/mtab' },
      { stage: 'rootfs', kind: 'mkdir', path: 'proc' },
      { stage: 'rootfs', kind: 'mkdir', path: 'dev' },
      { stage: 'rootfs', kind: 'mkdir', path: 'sys' },
      { stage: 'rootfs', kind: 'root-overlay', lowers: ['/srv/rootfs'], userxattr: false },
      { stage: 'mount', kind: 'mount', source: 'proc', target: 'proc', fstype: 'proc', flags: 0, data: '' },
      { stage: 'mount', kind: 'mount', source: 'tmpfs', target: 'dev', fstype: 'tmpfs', flags: MS.NOSUID | MS.STRICTATIME, data: 'mode=755,size=65536k' },
      {
        stage: 'mount',
        kind: 'mount',
        source: 'devpts',
        target: 'dev/pts',
        fstype: 'devpts',
        flags: MS.NOSUID | MS.NOEXEC,
        data: 'newinstance,ptmxmode=0666,mode=0620,gid=5',
      },
      { stage: 'mount', kind: 'mount', source: 'shm', target: 'dev/shm', fstype: 'tmpfs', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, data: 'mode=1777,size=65536k' },
      // The one made in the pooled IPC namespace (FD_POOLED_MQUEUE), when one came.
      {
        stage: 'mount',
        kind: 'mount',
        source: 'mqueue',
        target: 'dev/mqueue',
        fstype: 'mqueue',
        flags: MS.NOSUID | MS.NOEXEC | MS.NODEV,
        data: '',
        premounted: FD.POOLED_MQUEUE,
        premountedAttrs: MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC | MOUNT_ATTR.NODEV,
      },
      {
        stage: 'mount',
        kind: 'mount',
        source: 'sysfs',
        target: 'sys',
        fstype: 'sysfs',
        flags: MS.RDONLY | MS.NOSUID | MS.NOEXEC | MS.NODEV,
        data: '',
        premounted: FD.POOLED_SYSFS,
        premountedAttrs: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC | MOUNT_ATTR.NODEV,
      },
      {
        stage: 'mount',
        kind: 'bind',
        source: '/sys/fs/cgroup',
        target: 'sys/fs/cgroup',
        recursive: true,
        attrs: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC,
        propagation: 0,
        file: false,
        ignoreMissing: true,
        slot: 0,
      },
      dev('null', 1, 3),
      dev('zero', 1, 5),
      dev('full', 1, 7),
      dev('random', 1, 8),
      dev('urandom', 1, 9),
      dev('tty', 5, 0),
      link('dev/fd', '/proc/self/fd'),
      link('dev/stdin', '/proc/self/fd/0'),
      link('dev/stdout', '/proc/self/fd/1'),
      link('dev/stderr', '/proc/self/fd/2'),
      link('dev/ptmx', 'pts/ptmx'),
      link('dev/core', '/proc/kcore'),
      // runc's readonlyPaths, then its maskedPaths (files get the container's /dev/null).
      ...['bus', 'fs', 'irq', 'sys', 'sysrq-trigger'].map((p): Op => ({ stage: 'security', kind: 'readonly-path', path: `proc/${p}` })),
      ...['proc/acpi', 'proc/asound', 'proc/kcore', 'proc/keys', 'proc/latency_stats', 'proc/timer_list', 'proc/timer_stats', 'proc/sched_debug', 'sys/firmware', 'proc/scsi'].map(
        (path): Op => ({ stage: 'security', kind: 'mask-path', path, nullDevice: 'dev/null', slot: NO_SLOT }), // host mode: no mask-tmpfs
      ),
      { stage: 'hostname', kind: 'sethostname', hostname: '0123456789ab' },
      { stage: 'pivot', kind: 'pivot-root' },
      // RLIMIT_NOFILE 1024/1024, before setuser (RLIMIT_NPROC is counted at setresuid).
      { stage: 'security', kind: 'rlimit', resource: 7, softLo: 1024, softHi: 0, hardLo: 1024, hardHi: 0 },
      { stage: 'security', kind: 'cap-bounding', keep: OCI_DEFAULT, last: 40 },
      { stage: 'user', kind: 'setuser', uid: 0, gid: 0, groups: [] },
      { stage: 'cwd', kind: 'chdir', path: '/' },
      { stage: 'user', kind: 'no-new-privs' },
      { stage: 'security', kind: 'capset', effectiveLo: OCI_DEFAULT, effectiveHi: 0, permittedLo: OCI_DEFAULT, permittedHi: 0, inheritable: OCI_DEFAULT },
      { stage: 'security', kind: 'cap-ambient', ambient: OCI_DEFAULT },
      { stage: 'exec', kind: 'resolve-exec', file: '/sleep', searchPath: DEFAULT_PATH },
      { stage: 'sync', kind: 'ready' },
      { stage: 'sync', kind: 'wait-start' },
      { stage: 'exec', kind: 'exec', args: ['/sleep', '1'], env: [`PATH=${DEFAULT_PATH}`], umask: 0o22 },
    ];
    expect(p.ops).toEqual(expected);
  });

  it('kinds in order', () => {
    expect(kinds(p.ops)).toEqual([
      'clone-tree',
      'netns-fresh',
      'ipcns-fresh',
      'unshare',
      'make-private',
      'root-upper',
      'mkdir',
      'write-file',
      'write-file',
      'write-file',
      'symlink',
      'mkdir',
      'mkdir',
      'mkdir',
      'root-overlay',
      ...Array(6).fill('mount'),
      'bind',
      ...Array(6).fill('mknod'),
      ...Array(6).fill('symlink'),
      ...Array(5).fill('readonly-path'),
      ...Array(10).fill('mask-path'),
      'sethostname',
      'pivot-root',
      'rlimit',
      'cap-bounding',
      'setuser',
      'chdir',
      'no-new-privs',
      'capset',
      'cap-ambient',
      'resolve-exec',
      'ready',
      'wait-start',
      'exec',
    ]);
    expect(p.ops.at(-1)!.kind).toBe('exec');
  });

  it('copies the host mount namespace: no base flag', () => {
    expect(p.base).toBe(false);
  });

  it('device majors/minors and modes are the runc/crun defaults', () => {
    const nodes = p.ops.flatMap((op) => (op.kind === 'mknod' ? [[op.path, op.major, op.minor, op.mode]] : []));
    expect(nodes).toEqual([
      ['dev/null', 1, 3, 0o20666],
      ['dev/zero', 1, 5, 0o20666],
      ['dev/full', 1, 7, 0o20666],
      ['dev/random', 1, 8, 0o20666],
      ['dev/urandom', 1, 9, 0o20666],
      ['dev/tty', 5, 0, 0o20666],
    ]);
  });

  it('header fields: clone flags (pid only: the rest is the unshare op), detached; the rootfs in the root ops', () => {
    expect(p.cloneFlags).toBe(CLONE.NEWPID);
    expect(p.ops.find((o) => o.kind === 'root-upper')).toMatchObject({ dir: '/srv/rootfs' });
    expect(p.detached).toBe(false);
    expect(plan({ detached: true }).detached).toBe(true);
    expect(p.trace).toBe(false);
    expect(plan({ trace: true }).trace).toBe(true);
  });

  it('is deterministic', () => {
    expect(plan()).toEqual(p);
  });
});

describe('buildPlan variations', () => {
  it('no network namespace op without a network namespace; a setns of the shared one for "shared"', () => {
    const ops = plan({ namespaces: { network: false } }).ops;
    expect(kinds(ops)).not.toContain('netns-fresh');
    expect(kinds(ops)).not.toContain('ipcns-fresh'); // pooled only with a fresh network namespace
    expect(ops.find((o) => o.kind === 'setns')).toBeUndefined();
    expect(ops.find((o) => o.kind === 'unshare')).toMatchObject({ flags: CLONE.NEWNS | CLONE.NEWIPC | CLONE.NEWUTS });
    const shared = plan({ namespaces: { network: 'shared' } }).ops;
    expect(kinds(shared)).not.toContain('netns-fresh');
    expect(shared.find((o) => o.kind === 'unshare')).toMatchObject({ flags: CLONE.NEWNS | CLONE.NEWIPC | CLONE.NEWUTS });
    // no IPC namespace of its own: none pooled, none made
    // an IPC namespace joined: its setns, none pooled or made, though the network one is fresh
    const joinedIpc = plan({ namespaces: { ipc: { path: '/proc/1/ns/ipc' } } }).ops;
    expect(kinds(joinedIpc)).toContain('netns-fresh');
    expect(kinds(joinedIpc)).not.toContain('ipcns-fresh');
    expect(joinedIpc.find((o) => o.kind === 'unshare')).toMatchObject({ flags: CLONE.NEWNS | CLONE.NEWUTS });
    const hostIpc = plan({ namespaces: { ipc: false } }).ops;
    expect(kinds(hostIpc)).not.toContain('ipcns-fresh');
    expect(hostIpc.find((o) => o.kind === 'unshare')).toMatchObject({ flags: CLONE.NEWNS | CLONE.NEWUTS });
    expect(shared.find((o) => o.kind === 'setns')).toEqual({ stage: 'network', kind: 'setns', fd: FD.SHARED_NETNS, nstype: CLONE.NEWNET });
    // Only a fresh namespace comes with a sysfs made for it.
    expect(shared.find((o) => o.kind === 'mount' && o.fstype === 'sysfs')).not.toHaveProperty('premounted');
    expect(kinds(ops)).toContain('sethostname');
  });

  it('no sethostname without a uts namespace', () => {
    const ops = plan({ namespaces: { uts: false } }).ops;
    expect(kinds(ops)).not.toContain('sethostname');
    expect(kinds(ops)).toContain('netns-fresh');
    // /etc/hostname is still written
    expect(ops.find((op) => op.kind === 'write-file' && op.path === 'etc/hostname')).toBeTruthy();
  });

  it('cgroup mount: bind of the host tree on hybrid, v1, and v2 without a cgroup namespace', () => {
    for (const [cgroup, cgroupns] of [
      ['hybrid', false],
      ['hybrid', true],
      ['v1', true],
      ['v2', false],
    ] as const) {
      const ops = plan({ namespaces: { cgroup: cgroupns } }, { ...HOST, cgroup }).ops;
      const op = ops.find((o) => (o.kind === 'mount' || o.kind === 'bind') && o.target === 'sys/fs/cgroup');
      expect(op, `${cgroup} cgroupns=${cgroupns}`).toMatchObject({ kind: 'bind', source: '/sys/fs/cgroup', recursive: true, ignoreMissing: true });
      expect(op?.kind === 'bind' && op.attrs & MOUNT_ATTR.RDONLY).toBeTruthy();
    }
  });

  it('cgroup mount: a cgroup2 mount on a v2 host with a cgroup namespace', () => {
    const p = plan({ namespaces: { cgroup: true } }, { ...HOST, cgroup: 'v2' });
    const op = p.ops.find((o) => (o.kind === 'mount' || o.kind === 'bind') && o.target === 'sys/fs/cgroup');
    expect(op).toEqual({
      stage: 'mount',
      kind: 'mount',
      source: 'cgroup',
      target: 'sys/fs/cgroup',
      fstype: 'cgroup2',
      flags: MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RELATIME,
      data: '',
    });
    expect(p.ops[2]).toMatchObject({ kind: 'unshare' });
    expect((p.ops[2] as { flags: number }).flags & CLONE.NEWCGROUP).toBe(CLONE.NEWCGROUP);
  });

  it('no cgroup op at all on a host without cgroups', () => {
    const ops = plan({}, { ...HOST, cgroup: 'none' }).ops;
    expect(ops.some((o) => (o.kind === 'mount' || o.kind === 'bind') && o.target === 'sys/fs/cgroup')).toBe(false);
  });

  it('no devices nor /dev links when no tmpfs is mounted at /dev', () => {
    const ops = plan({ mounts: defaultMounts.filter((m) => m.destination !== '/dev') }).ops;
    expect(kinds(ops)).not.toContain('mknod');
    expect(ops.filter((o) => o.kind === 'symlink').map((o) => (o as { path: string }).path)).toEqual(['etc/mtab']);
    const bindDev = plan({ mounts: [{ destination: '/dev', type: 'bind', source: '/dev' }] }).ops;
    expect(kinds(bindDev)).not.toContain('mknod');
  });

  it('a user mount at /dev/null suppresses the mknod of null (only)', () => {
    const mounts: MountSpec[] = [...defaultMounts, { destination: '/dev/null', type: 'bind', source: '/dev/null' }];
    const s = spec({ mounts });
    const p = buildPlan(s, HOST, { bindSourceIsFile: s.mounts.map((_, i) => i === 7) });
    const nodes = p.ops.flatMap((o) => (o.kind === 'mknod' ? [o.path] : []));
    expect(nodes).toEqual(['dev/zero', 'dev/full', 'dev/random', 'dev/urandom', 'dev/tty']);
    // the bind itself is there, as a file target
    expect(p.ops.find((o) => o.kind === 'bind' && o.target === 'dev/null')).toMatchObject({ file: true, recursive: false, ignoreMissing: false });
  });

  it('a user mount at /dev/fd suppresses that link', () => {
    const ops = plan({ mounts: [...defaultMounts, { destination: '/dev/fd', type: 'tmpfs' }] }).ops;
    const links = ops.flatMap((o) => (o.kind === 'symlink' && o.stage === 'device' ? [o.path] : []));
    expect(links).toEqual(['dev/stdin', 'dev/stdout', 'dev/stderr', 'dev/ptmx', 'dev/core']);
  });

  it('user bind mounts keep their order after the defaults, with their attributes', () => {
    const s = spec({ mounts: [...defaultMounts, { destination: '/data', source: '/srv/data', options: ['rbind', 'ro', 'rslave'] }] });
    const p = buildPlan(s, HOST, noFiles(s));
    const i = p.ops.findIndex((o) => o.kind === 'bind' && o.target === 'data');
    expect(i).toBe(24); // after 2 clone-trees, netns-fresh, ipcns-fresh, unshare, make-private, root-upper, 5 /etc ops, 4 mount points, root-overlay, 6 mounts, the cgroup bind
    expect(p.ops[i]).toEqual({
      stage: 'mount',
      kind: 'bind',
      source: '/srv/data',
      target: 'data',
      recursive: true,
      attrs: MOUNT_ATTR.RDONLY,
      propagation: MS.SLAVE,
      file: false,
      ignoreMissing: false,
      slot: 1,
    });
    // Its host tree is cloned before the namespaces are made, into the slot the bind takes.
    const unshare = p.ops.findIndex((o) => o.kind === 'netns-fresh');
    expect(p.ops.slice(0, unshare)).toEqual([
      { stage: 'mount', kind: 'clone-tree', source: '/sys/fs/cgroup', recursive: true, slot: 0, ignoreMissing: true },
      { stage: 'mount', kind: 'clone-tree', source: '/srv/data', recursive: true, slot: 1, ignoreMissing: false },
    ]);
  });

  it('setuser, chdir, exec carry the spec', () => {
    const ops = plan({
      user: { uid: 1000, gid: 100, additionalGids: [5, 27] },
      cwd: '/home',
      umask: 0o77,
      env: { PATH: '/bin', A: 'b' },
      args: ['sh', '-c', 'true'],
      hostname: 'box',
    }).ops;
    expect(ops.find((o) => o.kind === 'setuser')).toEqual({ stage: 'user', kind: 'setuser', uid: 1000, gid: 100, groups: [5, 27] });
    expect(ops.find((o) => o.kind === 'chdir')).toEqual({ stage: 'cwd', kind: 'chdir', path: '/home' });
    expect(ops.find((o) => o.kind === 'resolve-exec')).toEqual({ stage: 'exec', kind: 'resolve-exec', file: 'sh', searchPath: '/bin' });
    expect(ops.at(-1)).toEqual({ stage: 'exec', kind: 'exec', args: ['sh', '-c', 'true'], env: ['PATH=/bin', 'A=b'], umask: 0o77 });
    expect(ops.find((o) => o.kind === 'sethostname')).toEqual({ stage: 'hostname', kind: 'sethostname', hostname: 'box' });
    expect(ops.find((o) => o.kind === 'write-file' && o.path === 'etc/hosts')).toMatchObject({ content: hostsFile('box') });
  });

  it('hostsFile', () => {
    expect(hostsFile('h')).toBe('127.0.0.1\tlocalhost h\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  });
});

describe('cloneFlagsOf and unshareFlagsOf', () => {
  const none = { mount: false, pid: false, network: false, ipc: false, uts: false, cgroup: false, user: false, time: false };
  const all = Object.fromEntries(Object.keys(none).map((k) => [k, true])) as typeof none;

  it('the linux/sched.h values', () => {
    expect(CLONE).toEqual({
      NEWTIME: 0x80,
      NEWNS: 0x20000,
      NEWCGROUP: 0x2000000,
      NEWUTS: 0x4000000,
      NEWIPC: 0x8000000,
      NEWUSER: 0x10000000,
      NEWPID: 0x20000000,
      NEWNET: 0x40000000,
    });
  });

  it('clone3 makes only the pid and time namespaces', () => {
    expect(cloneFlagsOf(none)).toBe(0);
    expect(cloneFlagsOf({ ...none, pid: true })).toBe(0x20000000);
    expect(cloneFlagsOf({ ...none, time: true })).toBe(0x80);
    expect(cloneFlagsOf(all)).toBe(0x20000080);
    for (const ns of ['mount', 'network', 'ipc', 'uts', 'cgroup', 'user']) expect(cloneFlagsOf({ ...none, [ns]: true }), ns).toBe(0);
  });

  it('the unshare op: always CLONE_NEWNS', () => {
    expect(unshareFlagsOf(none)).toBe(0x20000);
  });

  it("the unshare op: each other namespace's flag, never pid or time", () => {
    const want: Record<string, number> = {
      network: 0x40000000,
      ipc: 0x8000000,
      uts: 0x4000000,
      cgroup: 0x2000000,
      user: 0x10000000,
      pid: 0,
      time: 0,
    };
    for (const [ns, flag] of Object.entries(want)) expect(unshareFlagsOf({ ...none, [ns]: true }), ns).toBe(0x20000 | flag);
    expect(unshareFlagsOf(all)).toBe(0x5e020000);
  });

  it('clone3 and unshare together make every requested namespace once', () => {
    for (const ns of [none, all, spec().namespaces]) expect(cloneFlagsOf(ns) & unshareFlagsOf(ns)).toBe(0);
    expect(cloneFlagsOf(all) | unshareFlagsOf(all)).toBe(0x7e020080);
  });

  it('defaults: clone pid (0x20000000); unshare mount, network, ipc, uts (0x4c020000)', () => {
    expect(cloneFlagsOf(spec().namespaces)).toBe(0x20000000);
    expect(unshareFlagsOf(spec().namespaces)).toBe(0x4c020000);
  });
});

describe('opPath', () => {
  const ops = plan({ cwd: '/work' }).ops;
  const find = (pred: (o: Op) => boolean) => ops.find(pred)!;

  it('mounts and binds: / + target', () => {
    expect(opPath(find((o) => o.kind === 'mount' && o.target === 'dev/pts'))).toBe('/dev/pts');
    expect(opPath(find((o) => o.kind === 'bind'))).toBe('/sys/fs/cgroup');
  });

  it('files, nodes, links, dirs: / + path', () => {
    expect(opPath(find((o) => o.kind === 'write-file' && o.path === 'etc/hosts'))).toBe('/etc/hosts');
    expect(opPath(find((o) => o.kind === 'mknod'))).toBe('/dev/null');
    expect(opPath(find((o) => o.kind === 'symlink' && o.path === 'etc/mtab'))).toBe('/etc/mtab');
    expect(opPath(find((o) => o.kind === 'mkdir'))).toBe('/etc');
  });

  it('chdir, resolve-exec, exec', () => {
    expect(opPath(find((o) => o.kind === 'chdir'))).toBe('/work');
    expect(opPath(find((o) => o.kind === 'resolve-exec'))).toBe('/sleep');
    expect(opPath(find((o) => o.kind === 'exec'))).toBe('/sleep');
  });

  it('undefined for ops without a path', () => {
    for (const k of ['unshare', 'make-private', 'root-overlay', 'netns-fresh', 'sethostname', 'pivot-root', 'setuser', 'ready', 'wait-start'])
      expect(opPath(find((o) => o.kind === k)), k).toBeUndefined();
  });
});

describe('buildPlan for the base mount namespace', () => {
  const BASE: HostInfo = { ...HOST, mountMode: 'base' };
  const host = plan();
  const base = plan({}, BASE);

  it('builds the root detached before the namespaces, then attaches it; no make-private; the same ops otherwise', () => {
    const k = kinds(base.ops);
    expect(base.base).toBe(true);
    const DEV = 3 + 1 + 6 + 6 + 1; // /dev, /dev/pts, /dev/shm; mqueue's mount point; the nodes; the links; the masks' tmpfs
    expect(k.slice(0, 11)).toEqual(['clone-tree', 'root-upper-detached', 'mkdir', 'write-file', 'write-file', 'write-file', 'symlink', 'mkdir', 'mkdir', 'mkdir', 'root-overlay-detached']);
    // /etc/hostname and /etc/hosts made empty in the upper layer: what a pooled root holds is the
    // same for every container of these options (root_pool.h); their content comes after.
    expect(base.ops.slice(3, 5)).toEqual([
      { stage: 'file', kind: 'write-file', path: 'etc/hostname', content: '', mode: 0o644 },
      { stage: 'file', kind: 'write-file', path: 'etc/hosts', content: '', mode: 0o644 },
    ]);
    expect(k.slice(11, 11 + DEV)).toEqual([...Array(3).fill('mount-detached'), 'mkdir', ...Array(6).fill('mknod'), ...Array(6).fill('symlink'), 'mask-tmpfs']);
    // In the slot after the bind sources' (one: the cgroup tree), and every mask names it.
    expect(base.ops[10 + DEV]).toEqual({ stage: 'security', kind: 'mask-tmpfs', slot: 1 });
    expect(base.ops.filter((o) => o.kind === 'mask-path').every((o) => o.kind === 'mask-path' && o.slot === 1)).toBe(true);
    expect(base.ops.slice(11 + DEV, 13 + DEV)).toEqual([
      { stage: 'file', kind: 'write-file', path: 'etc/hostname', content: '0123456789ab\n', mode: 0o644, existing: true },
      { stage: 'file', kind: 'write-file', path: 'etc/hosts', content: hostsFile('0123456789ab'), mode: 0o644, existing: true },
    ]);
    expect(k.slice(13 + DEV, 18 + DEV)).toEqual(['setns', 'netns-fresh', 'ipcns-fresh', 'unshare', 'attach-root']);
    expect(base.ops[13 + DEV]).toEqual({ stage: 'prepare', kind: 'setns', fd: FD.BASE_MNTNS, nstype: CLONE.NEWNS });
    expect(k).not.toContain('make-private');
    expect(k).toContain('chroot');
    expect(k).not.toContain('pivot-root');
    // The same ops as the host-mode plan, but for the root's variants, in another order; a
    // mount-detached is the mount with its flags as attributes.
    const variant = new Set(['make-private', 'attach-root', 'setns', 'root-upper', 'root-upper-detached', 'root-overlay', 'root-overlay-detached', 'pivot-root', 'chroot']);
    const norm = (o: Op) => (o.kind === 'mount-detached' || o.kind === 'mount' ? `mount ${o.source} ${o.target} ${o.fstype} ${o.data}` : JSON.stringify(o));
    // The /etc files a pooled root holds empty: written into after it, the same content.
    const placeholder = (o: Op) => o.kind === 'write-file' && o.content === '' && (o.path === 'etc/hostname' || o.path === 'etc/hosts');
    const sorted = (ops: Op[]) =>
      ops
        .filter((o) => !variant.has(o.kind) && o.kind !== 'mask-tmpfs' && !(o.kind === 'mkdir' && o.stage === 'mount') && !placeholder(o))
        .map((o) => (o.kind === 'mask-path' ? { ...o, slot: NO_SLOT } : o.kind === 'write-file' ? (({ existing: _, ...w }) => w)(o) : o))
        .map(norm)
        .sort();
    expect(sorted(base.ops)).toEqual(sorted(host.ops));
    const dev = base.ops.find((o) => o.kind === 'mount-detached');
    expect(dev).toEqual({ stage: 'mount', kind: 'mount-detached', source: 'tmpfs', target: 'dev', fstype: 'tmpfs', attrs: MOUNT_ATTR.NOSUID | MOUNT_ATTR.STRICTATIME, data: 'mode=755,size=65536k' });
    expect(base.ops.find((o) => o.kind === 'root-overlay-detached')).toEqual({ stage: 'rootfs', kind: 'root-overlay-detached', lowers: ['/srv/rootfs'], userxattr: false });
    // From the mounts on, the two plans agree but for how the root is entered and what was made detached.
    const enter = (ops: Op[]) => ops.map((o) => (o.kind === 'chroot' ? { ...o, kind: 'pivot-root' as const } : o));
    const late = (ops: Op[]) => ops.filter((o) => !(o.kind === 'mount' && o.target.startsWith('dev') && o.fstype !== 'mqueue') && o.stage !== 'device');
    expect(base.ops[14]).toEqual({ stage: 'mount', kind: 'mkdir', path: 'dev/mqueue' });
    const unslot = (ops: Op[]) => ops.map((o) => (o.kind === 'mask-path' ? { ...o, slot: NO_SLOT } : o));
    expect(unslot(enter(base.ops.slice(18 + DEV)))).toEqual(late(host.ops.slice(host.ops.findIndex((o) => o.kind === 'root-overlay') + 1)));
  });

  it('a user namespace keeps the host mode (proc needs a fully visible proc in the namespace)', () => {
    const s = { ...spec(), namespaces: { ...spec().namespaces, user: true } };
    const u = buildPlan(s, BASE, noFiles(s));
    expect(u.base).toBe(false);
    expect(kinds(u.ops).slice(0, 5)).toEqual(['clone-tree', 'netns-fresh', 'ipcns-fresh', 'unshare', 'make-private']);
  });
});

describe('buildPlan: /dev made in the detached root (base mode)', () => {
  const BASE: HostInfo = { ...HOST, mountMode: 'base' };
  const early = (o: Partial<ContainerOptions>) => {
    const ops = plan(o, BASE).ops;
    const from = ops.findIndex((op) => op.kind === 'root-overlay-detached') + 1;
    const to = ops.findIndex((op) => op.kind === 'setns');
    return ops
      .slice(from, to)
      .filter((op) => op.kind !== 'mask-tmpfs' && !(op.kind === 'write-file' && op.existing))
      .map((op) => `${op.kind} ${opPath(op)}`);
  };
  const tmpfs = (destination: string, options: string[] = []): MountSpec => ({ destination, type: 'tmpfs', source: 'tmpfs', options });

  it('the default mounts: /dev, /dev/pts and /dev/shm, then the nodes and links; mqueue stays (the IPC namespace)', () => {
    const e = early({});
    expect(e.slice(0, 3)).toEqual(['mount-detached /dev', 'mount-detached /dev/pts', 'mount-detached /dev/shm']);
    expect(e).toContain('mknod /dev/null');
    expect(e).toContain('symlink /dev/ptmx');
    expect(e.filter((l) => l.includes('mqueue'))).toEqual(['mkdir /dev/mqueue']); // only its mount point
  });

  it('a user mount after them elsewhere in /dev: they stay early, and so do the nodes it does not cover', () => {
    const e = early({ mounts: [...defaultMounts, tmpfs('/dev/extra'), { destination: '/dev/fuse', type: 'bind', source: '/dev/fuse', options: ['bind'] }] });
    expect(e.filter((l) => l.startsWith('mount-detached'))).toEqual(['mount-detached /dev', 'mount-detached /dev/pts', 'mount-detached /dev/shm', 'mount-detached /dev/extra']);
    expect(e).toContain('mknod /dev/null');
  });

  it('the mount points of binds in /dev that stay: made with it, a file for a file bind', () => {
    const s = spec({ mounts: [...defaultMounts, { destination: '/dev/fuse', type: 'bind', source: '/dev/fuse', options: ['bind'] }, { destination: '/dev/data', type: 'bind', source: '/srv', options: ['bind'] }] });
    const facts: FsFacts = { bindSourceIsFile: s.mounts.map((m) => m.destination === '/dev/fuse') };
    const ops = buildPlan(s, BASE, facts).ops;
    const attach = ops.findIndex((o) => o.kind === 'attach-root');
    const mk = (path: string) => ops.findIndex((o) => o.kind === 'mkdir' && o.path === path);
    expect(ops[mk('dev/fuse')]).toEqual({ stage: 'mount', kind: 'mkdir', path: 'dev/fuse', file: true });
    expect(ops[mk('dev/data')]).toEqual({ stage: 'mount', kind: 'mkdir', path: 'dev/data' });
    expect(mk('dev/fuse')).toBeLessThan(attach);
    expect(ops.findIndex((o) => o.kind === 'bind' && o.target === 'dev/fuse')).toBeGreaterThan(attach); // the bind itself stays
  });

  it('a mount in /dev before the /dev tmpfs: nothing moves (the user order decides what covers what)', () => {
    expect(early({ mounts: [tmpfs('/dev/early'), ...defaultMounts] })).toEqual([]);
  });

  it('a /dev tmpfs with a flag fsmount cannot set (sync): made in place by mount(2)', () => {
    expect(early({ mounts: [tmpfs('/dev', ['sync', 'mode=755'])] })).toEqual([]);
  });

  it('a user device under a mount that stays (a bind): the nodes stay after it', () => {
    const dri = { destination: '/dev/dri', type: 'bind', source: '/dev/dri', options: ['bind'] } as MountSpec;
    const o: Partial<ContainerOptions> = { mounts: [...defaultMounts, dri], devices: [{ path: '/dev/dri/card0', type: 'c', major: 226, minor: 0 }] };
    const e = early(o);
    expect(e).toContain('mount-detached /dev');
    expect(e.some((l) => l.startsWith('mknod'))).toBe(false);
    const ops = plan(o, BASE).ops;
    expect(ops.findIndex((op) => op.kind === 'mknod')).toBeGreaterThan(ops.findIndex((op) => op.kind === 'bind' && op.target === 'dev/dri'));
  });

  it('host mode: nothing is made detached', () => {
    expect(kinds(plan().ops)).not.toContain('mount-detached');
  });
});

describe('buildPlan: masks on proc entries the kernel cannot have', () => {
  const masks = (host: HostInfo, o: Partial<ContainerOptions> = {}) =>
    plan(o, host)
      .ops.filter((op) => op.kind === 'mask-path')
      .map((op) => opPath(op));

  it('left out when the host found them absent (only entries built into the kernel are ever listed)', () => {
    const all = masks(HOST);
    expect(all).toContain('/proc/kcore');
    expect(BUILTIN_PROC_ENTRIES).not.toContain('/proc/asound'); // a module makes it: never left out
    const some = masks({ ...HOST, procAbsent: ['/proc/kcore', '/proc/sched_debug'] });
    expect(some).toEqual(all.filter((p) => p !== '/proc/kcore' && p !== '/proc/sched_debug'));
  });

  it('kept when a mount of the user is on, above or below the path (the mask is for what it shows)', () => {
    const host = { ...HOST, procAbsent: ['/proc/kcore'] };
    const bind = { destination: '/proc/kcore', type: 'bind', source: '/srv/k', options: ['bind'] } as MountSpec;
    expect(masks(host, { mounts: [...defaultMounts, bind] })).toContain('/proc/kcore');
  });
});

describe('buildPlan: no_new_privs and the seccomp program', () => {
  const bpf = new Uint8Array(3 * 8).fill(7); // three struct sock_filter
  const compiled = { seccomp: { bpf, flags: 2 } };

  it('the filter is loaded last before exec, after no_new_privs', () => {
    const s = spec();
    const ops = buildPlan(s, HOST, noFiles(s), compiled).ops;
    expect(kinds(ops).slice(-10)).toEqual(['setuser', 'chdir', 'no-new-privs', 'capset', 'cap-ambient', 'resolve-exec', 'ready', 'wait-start', 'seccomp', 'exec']);
    expect(ops.at(-2)).toEqual({ stage: 'security', kind: 'seccomp', bpf, instructions: 3, flags: 2 });
  });

  it('noNewPrivileges: false: no no-new-privs op, and the filter goes before the user switch (it needs CAP_SYS_ADMIN then)', () => {
    const s = spec({ noNewPrivileges: false });
    const ops = buildPlan(s, HOST, noFiles(s), compiled).ops;
    expect(kinds(ops)).not.toContain('no-new-privs');
    // Right after the bounding set is cut: CAP_SYS_ADMIN is still effective there, until capset.
    expect(kinds(ops).indexOf('seccomp')).toBe(kinds(ops).indexOf('cap-bounding') + 1);
    expect(kinds(ops).indexOf('seccomp')).toBeLessThan(kinds(ops).indexOf('setuser'));
  });

  it("privileged or 'unconfined': the spec asks for no filter", () => {
    expect(spec({ privileged: true }).seccomp).toBeNull();
    expect(spec({ seccomp: 'unconfined' }).seccomp).toBeNull();
    expect(spec().seccomp).toBe('default');
    const s = spec();
    expect(kinds(buildPlan(s, HOST, noFiles(s)).ops)).not.toContain('seccomp');
  });
});

describe('buildPlan: capabilities', () => {
  const CAP_KINDS = new Set(['cap-bounding', 'keep-caps', 'capset', 'cap-ambient', 'setuser']);
  const capOps = (o: Partial<ContainerOptions>) => plan(o).ops.filter((op) => CAP_KINDS.has(op.kind));

  it('root: the bounding set cut before setuser, the final sets after it; no keep-caps', () => {
    expect(kinds(capOps({}))).toEqual(['cap-bounding', 'setuser', 'capset', 'cap-ambient']);
    const all = kinds(plan().ops);
    // Every mount, the chroot and the rlimits done with all capabilities.
    expect(all.indexOf('cap-bounding')).toBe(all.indexOf('pivot-root') + 2);
    expect(all[all.indexOf('pivot-root') + 1]).toBe('rlimit');
    expect(all.indexOf('capset')).toBeGreaterThan(all.indexOf('chdir'));
    expect(all.indexOf('cap-ambient')).toBe(all.indexOf('capset') + 1);
    expect(all.indexOf('resolve-exec')).toBe(all.indexOf('cap-ambient') + 1);
  });

  it('a non-root user: keep-caps right before setuser, so that the permitted set survives it', () => {
    const ops = capOps({ user: { uid: 1000, gid: 1000 } });
    expect(kinds(ops)).toEqual(['cap-bounding', 'keep-caps', 'setuser', 'capset', 'cap-ambient']);
    expect(ops.find((o) => o.kind === 'capset')).toMatchObject({ effectiveLo: OCI_DEFAULT, permittedLo: OCI_DEFAULT, inheritable: OCI_DEFAULT });
    expect(ops.find((o) => o.kind === 'cap-ambient')).toMatchObject({ ambient: OCI_DEFAULT });
  });

  it('capabilities above 31 go in the high words (CAP_SYSLOG is 34, CAP_CHECKPOINT_RESTORE 40)', () => {
    const ops = capOps({ capabilities: { drop: ['ALL'], add: ['SYSLOG', 'CHECKPOINT_RESTORE', 'CHOWN'] } });
    const want = 2 ** 34 + 2 ** 40 + 1;
    expect(ops.find((o) => o.kind === 'cap-bounding')).toMatchObject({ keep: want, last: 40 });
    expect(ops.find((o) => o.kind === 'capset')).toMatchObject({ effectiveLo: 1, effectiveHi: 2 ** 2 + 2 ** 8, permittedLo: 1, permittedHi: 0x104, inheritable: want });
  });

  it('the OCI form: each set as given', () => {
    const ops = capOps({
      capabilities: { bounding: ['CAP_KILL', 'CAP_SYS_ADMIN'], effective: ['CAP_KILL'], permitted: ['CAP_KILL', 'CAP_SYS_ADMIN'], inheritable: ['CAP_KILL'], ambient: [] },
    });
    expect(ops.find((o) => o.kind === 'cap-bounding')).toMatchObject({ keep: 2 ** 5 + 2 ** 21 });
    expect(ops.find((o) => o.kind === 'capset')).toMatchObject({ effectiveLo: 2 ** 5, permittedLo: 2 ** 5 + 2 ** 21, inheritable: 2 ** 5, effectiveHi: 0, permittedHi: 0 });
    expect(ops.find((o) => o.kind === 'cap-ambient')).toMatchObject({ ambient: 0 });
  });
});

describe('buildPlan with keep (the upper layer a directory of the image store)', () => {
  const kept = (host: HostInfo) => {
    const s = spec({ keep: true });
    s.upperDir = '/store/containers/x'; // Container.create makes it once the id is known
    return buildPlan(s, host, noFiles(s)).ops;
  };

  it('base mode: root-upper-dir takes the place of root-upper-detached; the /etc files written at once (no root is pooled); nothing else changes', () => {
    const base: HostInfo = { ...HOST, mountMode: 'base' };
    const ops = kept(base);
    const plain = plan({}, base).ops;
    const i = plain.findIndex((op) => op.kind === 'root-upper-detached');
    expect(ops[i]).toEqual({ stage: 'rootfs', kind: 'root-upper-dir', dir: '/store/containers/x' });
    // The pooled plan's empty files and its writes after the overlay, folded back into writes.
    const named = (p: string) => (op: Op) => 'path' in op && op.path === p;
    const folded = plain
      .filter((op, j) => j !== i && !(op.kind === 'write-file' && op.existing))
      .map((op) => (op.kind === 'write-file' && !op.existing && op.content === '' ? plain.find((w) => w.kind === 'write-file' && w.existing && named(op.path)(w))! : op))
      .map((op) => (op.kind === 'write-file' && op.existing ? (({ existing: _, ...w }) => w)(op) : op));
    expect(ops.filter((_, j) => j !== i)).toEqual(folded);
  });

  it('host mode: root-upper-dir attaches on the rootfs, in the place of root-upper', () => {
    const ops = kept(HOST);
    const plain = plan().ops;
    const i = plain.findIndex((op) => op.kind === 'root-upper');
    expect(ops[i]).toEqual({ stage: 'rootfs', kind: 'root-upper-dir', dir: '/store/containers/x', attach: '/srv/rootfs' });
    expect(ops.filter((_, j) => j !== i)).toEqual(plain.filter((_, j) => j !== i));
  });

  it('without keep the plan has no root-upper-dir; keep is a boolean', () => {
    expect(kinds(plan({ keep: false }).ops)).not.toContain('root-upper-dir');
    expect(spec({ keep: true }).upperDir).toBeNull();
    expect(() => spec({ keep: 1 as unknown as boolean })).toThrow(expect.objectContaining({ code: 'EINVAL', option: 'keep', stage: 'validate' }));
  });
});
