/**
 * Joined namespaces and init: true, without root: options → spec (parseNamespaces), spec → ops
 * (buildPlan, buildExecPlan). The addon's checks of them: plan-validate.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { buildExecPlan, joinFlagsOf } from '../../src-ts/plan/exec.js';
import { INIT_PATH } from '../../src-ts/plan/joins.js';
import { buildPlan, cloneFlagsOf, unshareFlagsOf, type FsFacts, type HostInfo, type Op } from '../../src-ts/plan/plan.js';
import { CLONE, FD } from '../../src-ts/plan/wire.js';
import { MOUNT_ATTR } from '../../src-ts/spec/mounts.js';
import { buildSpec, type ContainerOptions, type Spec } from '../../src-ts/spec/spec.js';
import type { HostCaps } from '../../src-ts/security/capabilities.js';
import { expectInvalid } from './helpers.js';

const CAPS: HostCaps = { last: 40, bounding: 2 ** 41 - 1 };
const spec = (o: Partial<ContainerOptions> = {}): Spec => buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep', '1'], ...o } as ContainerOptions, () => '0123456789abcdef', { caps: CAPS });
const facts = (s: Spec, init?: string): FsFacts => ({ bindSourceIsFile: s.mounts.map(() => false), ...(init ? { initBinary: init } : {}) });
const host = (mountMode: HostInfo['mountMode']): HostInfo => ({ cgroup: 'v2', resolvConf: 'nameserver 1.1.1.1\n', mountMode });
const planOf = (o: Partial<ContainerOptions>, mode: HostInfo['mountMode'] = 'base', init?: string) => {
  const s = spec(o);
  return buildPlan(s, host(mode), facts(s, init));
};
const setns = (ops: Op[]) => ops.filter((o): o is Extract<Op, { kind: 'setns' }> => o.kind === 'setns');
const ALL_PATHS = { pid: { path: '/proc/9/ns/pid' }, network: { path: '/proc/9/ns/net' }, ipc: { path: '/proc/9/ns/ipc' }, uts: { path: '/proc/9/ns/uts' }, cgroup: { path: '/proc/9/ns/cgroup' } };

describe('namespaces: { container } / { path } (parseNamespaces via buildSpec)', () => {
  it('a joined namespace is not the container\'s own, and is listed in spec.joins, pid first', () => {
    const s = spec({ namespaces: { uts: { path: '/run/uts' }, pid: { path: '/run/pid' } } });
    expect(s.namespaces).toMatchObject({ pid: false, uts: false, network: true, ipc: true, mount: true });
    expect(s.joins).toEqual([
      { ns: 'pid', source: { path: '/run/pid' } },
      { ns: 'uts', source: { path: '/run/uts' } },
    ]);
    expect(spec().joins).toEqual([]);
  });

  it('mount: EINVAL; user: ENOTSUP; time: ENOTSUP (the kernel joins a time namespace only for a process sharing its memory with no other)', () => {
    expectInvalid(() => spec({ namespaces: { mount: { path: '/proc/1/ns/mnt' } } }), { option: 'namespaces.mount' });
    expectInvalid(() => spec({ namespaces: { user: { path: '/proc/1/ns/user' } } }), { option: 'namespaces.user', code: 'ENOTSUP' });
    const t = expectInvalid(() => spec({ namespaces: { time: { path: '/proc/1/ns/time' } } }), { option: 'namespaces.time', code: 'ENOTSUP' });
    expect(t.message).toMatch(/shares its memory/);
  });

  it('bad shapes: both or neither of container/path, an unknown key, a relative or empty path, a non-object container', () => {
    expectInvalid(() => spec({ namespaces: { pid: { path: '/a', container: {} } as never } }), { option: 'namespaces.pid' });
    expectInvalid(() => spec({ namespaces: { pid: {} as never } }), { option: 'namespaces.pid' });
    const k = expectInvalid(() => spec({ namespaces: { pid: { pth: '/a' } as never } }), { option: 'namespaces.pid.pth' });
    expect(k.message).toContain("did you mean 'path'?");
    expectInvalid(() => spec({ namespaces: { network: { path: 'proc/1/ns/net' } } }), { option: 'namespaces.network.path', path: 'proc/1/ns/net' });
    expectInvalid(() => spec({ namespaces: { network: { path: '' } } }), { option: 'namespaces.network.path' });
    expectInvalid(() => spec({ namespaces: { ipc: { container: 'web' } as never } }), { option: 'namespaces.ipc.container' });
    expectInvalid(() => spec({ namespaces: { ipc: 'yes' as never } }), { option: 'namespaces.ipc' });
  });

  it('a joined UTS namespace: no hostname option (it would be the other\'s), and none to write unless the join says it', () => {
    expectInvalid(() => spec({ hostname: 'box', namespaces: { uts: { path: '/proc/9/ns/uts' } } }), { option: 'hostname' });
    expect(spec({ namespaces: { uts: { path: '/proc/9/ns/uts' } } }).hostname).toBe('');
  });

  it('sysctls of a joined namespace are refused (they would change the other\'s)', () => {
    expectInvalid(() => spec({ namespaces: { network: { path: '/proc/9/ns/net' } }, sysctl: { 'net.ipv4.ip_forward': '1' } }), { option: 'sysctl.net.ipv4.ip_forward', code: 'EPERM' });
  });

  it('init: a boolean, default false', () => {
    expect(spec().init).toBe(false);
    expect(spec({ init: true }).init).toBe(true);
    expectInvalid(() => spec({ init: 'yes' as never }), { option: 'init' });
  });
});

describe('buildPlan with joined namespaces', () => {
  it('clone3 makes no pid namespace; unshare only the mount one; the pid join is the first op, the others after the base namespace, before unshare', () => {
    const s = spec({ namespaces: ALL_PATHS });
    expect(cloneFlagsOf(s.namespaces)).toBe(0);
    expect(unshareFlagsOf(s.namespaces)).toBe(CLONE.NEWNS);
    const p = planOf({ namespaces: ALL_PATHS });
    expect(p.cloneFlags).toBe(0);
    expect(p.ops[0]).toEqual({ stage: 'prepare', kind: 'setns', fd: FD.PLAN0, nstype: CLONE.NEWPID });
    const u = p.ops.findIndex((o) => o.kind === 'unshare');
    const base = p.ops.findIndex((o) => o.kind === 'setns' && o.fd === FD.BASE_MNTNS);
    expect(p.ops.slice(base + 1, u)).toEqual([
      { stage: 'network', kind: 'setns', fd: FD.PLAN0 + 1, nstype: CLONE.NEWNET },
      { stage: 'prepare', kind: 'setns', fd: FD.PLAN0 + 2, nstype: CLONE.NEWIPC },
      { stage: 'prepare', kind: 'setns', fd: FD.PLAN0 + 3, nstype: CLONE.NEWUTS },
      { stage: 'prepare', kind: 'setns', fd: FD.PLAN0 + 4, nstype: CLONE.NEWCGROUP },
    ]);
    expect(p.ops[u]).toMatchObject({ flags: CLONE.NEWNS });
    // Every mount comes after the joins (mqueue in the joined ipc namespace, sysfs in the joined network one).
    expect(p.ops.findIndex((o) => o.kind === 'mount')).toBeGreaterThan(u);
  });

  it('a joined network namespace: no netns-fresh, no premounted sysfs; /etc/hosts and resolv.conf as for a fresh one', () => {
    const p = planOf({ namespaces: { network: { path: '/proc/9/ns/net' } } });
    expect(p.ops.some((o) => o.kind === 'netns-fresh')).toBe(false);
    const sysfs = p.ops.find((o) => o.kind === 'mount' && o.fstype === 'sysfs');
    expect(sysfs).toBeDefined();
    expect(sysfs && 'premounted' in sysfs).toBe(false);
    const fresh = planOf({});
    const etc = (ops: Op[]) => ops.filter((o) => o.kind === 'write-file');
    expect(etc(p.ops)).toEqual(etc(fresh.ops));
  });

  it('a joined UTS namespace: no sethostname; with its hostname known (a container join) /etc/hostname and hosts hold it, unknown (a path) no /etc/hostname', () => {
    const s = spec({ namespaces: { uts: { path: '/proc/9/ns/uts' } } });
    const byPath = buildPlan(s, host('base'), facts(s));
    expect(byPath.ops.some((o) => o.kind === 'sethostname')).toBe(false);
    expect(byPath.ops.some((o) => o.kind === 'write-file' && o.path === 'etc/hostname')).toBe(false);
    // The last write: with a pooled root, the file is made empty first (plan.ts).
    expect([...byPath.ops].reverse().find((o) => o.kind === 'write-file' && o.path === 'etc/hosts')).toMatchObject({ content: expect.stringMatching(/^127\.0\.0\.1\tlocalhost\n/) });
    s.hostname = 'other'; // what resolveJoins sets for { container }
    const byContainer = buildPlan(s, host('base'), facts(s));
    expect([...byContainer.ops].reverse().find((o) => o.kind === 'write-file' && o.path === 'etc/hostname')).toMatchObject({ content: 'other\n' });
    expect(byContainer.ops.some((o) => o.kind === 'sethostname')).toBe(false);
  });

  it('host mode: the joins before unshare and make-private', () => {
    const p = planOf({ namespaces: ALL_PATHS }, 'host');
    expect(setns(p.ops).map((o) => o.nstype)).toEqual([CLONE.NEWPID, CLONE.NEWNET, CLONE.NEWIPC, CLONE.NEWUTS, CLONE.NEWCGROUP]);
    expect(p.ops.findIndex((o) => o.kind === 'make-private')).toBeGreaterThan(p.ops.findIndex((o) => o.kind === 'unshare'));
  });

  it('an exec into a container that joined namespaces joins those too (they are not the host\'s)', () => {
    const s = spec({ namespaces: { pid: { path: '/p' }, network: { path: '/n' } } });
    expect(joinFlagsOf(s.namespaces, s.joins)).toBe(CLONE.NEWNS | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWPID | CLONE.NEWNET);
    const e = buildExecPlan(s, { ...s, args: ['/probe'] }, {});
    expect(e.ops[0]).toMatchObject({ kind: 'join', nstypes: CLONE.NEWNS | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWPID | CLONE.NEWNET });
  });
});

describe('buildPlan with init: true', () => {
  it('clones scratch-init with the bind sources, binds it read-only on /dev/init after the mounts (inside the /dev tmpfs), and ends in exec-init', () => {
    const p = planOf({ init: true }, 'base', '/pkg/scratch-init');
    const clone = p.ops.find((o) => o.kind === 'clone-tree' && o.source === '/pkg/scratch-init');
    expect(clone).toMatchObject({ recursive: false, ignoreMissing: false });
    const bind = p.ops.findIndex((o) => o.kind === 'bind' && o.target === 'dev/init');
    expect(p.ops[bind]).toMatchObject({ source: '/pkg/scratch-init', file: true, attrs: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV, slot: clone && 'slot' in clone ? clone.slot : -1 });
    const dev = p.ops.findIndex((o) => o.kind === 'mount-detached' && o.target === 'dev');
    expect(bind).toBeGreaterThan(dev);
    // /dev is a tmpfs of the plan: no mount point made in the upper layer, but a file in that
    // tmpfs, made with it (base mode: with a pooled root, ahead).
    const mk = p.ops.findIndex((o) => o.kind === 'mkdir' && o.path === 'dev/init');
    expect(p.ops[mk]).toMatchObject({ stage: 'mount', file: true });
    expect(mk).toBeGreaterThan(dev);
    expect(mk).toBeLessThan(p.ops.findIndex((o) => o.kind === 'attach-root'));
    expect(p.ops.at(-1)).toEqual({ stage: 'exec', kind: 'exec-init', init: INIT_PATH, args: ['/sleep', '1'], env: expect.any(Array), umask: 0o22 });
    expect(p.ops.some((o) => o.kind === 'exec')).toBe(false);
    expect(p.ops.at(-4)).toMatchObject({ kind: 'resolve-exec', file: '/sleep' });
  });

  it('without a /dev tmpfs the mount point is a file made in the upper layer (so commit() knows it is the runtime\'s)', () => {
    const p = planOf({ init: true, mounts: [{ destination: '/proc', type: 'proc' }] }, 'base', '/pkg/scratch-init');
    const mk = p.ops.findIndex((o) => o.kind === 'mkdir' && o.path === 'dev/init');
    expect(p.ops[mk]).toMatchObject({ stage: 'rootfs', file: true });
    expect(mk).toBeLessThan(p.ops.findIndex((o) => o.kind === 'root-overlay-detached'));
  });

  it('without the binary\'s path the plan cannot be made', () => {
    expect(() => planOf({ init: true })).toThrow(/initBinary/);
  });
});

describe('error words for the joins and the init (childError)', () => {
  it('names the namespace and its option, the base and shared namespaces, and the init', async () => {
    const { describeJoinOrInit } = await import('../../src-ts/container/join.js');
    expect(describeJoinOrInit({ stage: 'network', kind: 'setns', fd: FD.PLAN0 + 1, nstype: CLONE.NEWNET })).toBe('join the network namespace (namespaces.network)');
    expect(describeJoinOrInit({ stage: 'prepare', kind: 'setns', fd: FD.BASE_MNTNS, nstype: CLONE.NEWNS })).toBe('enter the base mount namespace');
    expect(describeJoinOrInit({ stage: 'network', kind: 'setns', fd: FD.SHARED_NETNS, nstype: CLONE.NEWNET })).toBe("join network 'shared'");
    expect(describeJoinOrInit({ stage: 'exec', kind: 'exec-init', init: INIT_PATH, args: ['/bin/sh'], env: [], umask: 0 })).toBe('exec the init /dev/init for /bin/sh');
  });
});
