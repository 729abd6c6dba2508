/**
 * The child's syscall sequence for the default plan in both root modes, without root: the child's
 * own code (src-native/child, compiled with -DSBX_SYS_RECORD) runs against the recording syscall
 * table of test/native/recorder.cc, which logs every call with its strings and answers it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildExecPlan } from '../../src-ts/plan/exec.js';
import { buildPlan, type Compiled, type HostInfo, type Plan } from '../../src-ts/plan/plan.js';
import { FD } from '../../src-ts/plan/wire.js';
import { buildSpec, type ContainerOptions } from '../../src-ts/spec/spec.js';
import type { HostCaps } from '../../src-ts/security/capabilities.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const out = `${root}test/.build/recorder`;

beforeAll(() => {
  mkdirSync(`${out}.obj`, { recursive: true });
  const objs: string[] = [];
  for (const f of readdirSync(`${root}src-native/child`).filter((n) => n.endsWith('.c'))) {
    const o = `${out}.obj/${f}.o`;
    execFileSync('gcc', ['-std=gnu11', '-O1', '-DSBX_SYS_RECORD', '-c', `${root}src-native/child/${f}`, '-o', o]);
    objs.push(o);
  }
  execFileSync('g++', ['-std=c++17', '-O1', '-o', out, `${root}test/native/recorder.cc`, `${root}src-native/parent/plan.cc`, ...objs]);
}, 60_000);

/** A kernel with cap_last_cap 40, every capability in the Node process's bounding set. */
const CAPS: HostCaps = { last: 40, bounding: 2 ** 41 - 1 };
const specOf = (o: Partial<ContainerOptions> = {}) => buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep', '1'], ...o }, () => '0123456789abcdef', { caps: CAPS });

/** The child's calls for the default plan (or these options) in this mode, given these MSG_FDS fds. */
function record(mode: HostInfo['mountMode'], fds: number[], spec = specOf(), compiled: Compiled = {}): string[] {
  const plan = buildPlan(spec, { cgroup: 'hybrid', resolvConf: 'nameserver 1.1.1.1\n', mountMode: mode }, { bindSourceIsFile: spec.mounts.map(() => false) }, compiled);
  return recordPlan(plan, mode, fds);
}

function recordPlan(plan: Plan, name: string, fds: number[], env: Record<string, string> = {}): string[] {
  const file = `${out}.${name}.plan`;
  writeFileSync(file, encodePlan(plan));
  const mask = fds.reduce((m, i) => m | (1 << i), 0);
  return execFileSync(out, [file, String(mask)], { encoding: 'utf8', env: { ...process.env, ...env } }).trimEnd().split('\n');
}

/** The calls that decide where things are mounted and who runs: the sequence under test. */
// prctl 38: PR_SET_NO_NEW_PRIVS; 24 PR_CAPBSET_DROP, 8 PR_SET_KEEPCAPS, 47 PR_CAP_AMBIENT (4 clear all, 2 raise)
const KEY = /^(prlimit64|fchownat|open_tree|openat "\/|fsopen|setns|unshare|mount |move_mount|pivot_root|umount2|chroot|chdir|set(groups|resgid|resuid)|prctl (8|24|38|47) |capset|execve|send|recv)/;
const key = (log: string[]) => log.filter((l) => KEY.test(l));

const MOUNTS = [
  'mount "proc" "." "proc" 0x0 null',
  'mount "tmpfs" "." "tmpfs" 0x1000002 "mode=755,size=65536k"',
  'mount "devpts" "." "devpts" 0xa "newinstance,ptmxmode=0666,mode=0620,gid=5"',
  'mount "shm" "." "tmpfs" 0xe "mode=1777,size=65536k"',
  'mount "mqueue" "." "mqueue" 0xe null',
];
/** Base mode: /dev, /dev/pts and /dev/shm are made in the detached root (fsopen, then moved into it). */
const DEV_DETACHED = ['fsopen "tmpfs"', 'move_mount', 'fsopen "devpts"', 'move_mount', 'fsopen "tmpfs"', 'move_mount'];
// Capabilities: every one the kernel knows (0..40) out of the bounding set but the OCI default's
// KILL (5), NET_BIND_SERVICE (10) and AUDIT_WRITE (29); after setuser those three in effective,
// permitted and inheritable (0x20000420), and raised one by one in ambient.
const OCI = 0x20000420;
const DROPS = Array.from({ length: 41 }, (_, c) => c)
  .filter((c) => ![5, 10, 29].includes(c))
  .map((c) => `prctl 24 ${c}`);
const CAPSET = `capset v0x20080522 e 0x${OCI.toString(16)} p 0x${OCI.toString(16)} i 0x${OCI.toString(16)}`; // _LINUX_CAPABILITY_VERSION_3
const AMBIENT = ['prctl 47 4', 'prctl 47 2 5', 'prctl 47 2 10', 'prctl 47 2 29'];
/** readonlyPaths (a clone of each, recursive, made read-only, moved back), then maskedPaths: the
 * first directory gets a new read-only tmpfs, the next ones clones of it; files the container's
 * /dev/null (the recorder answers statx: dev/null c 1:3, the /proc and /sys directories of the
 * default lists, files for the rest). */
const ISOLATION = [
  // open_tree_attr: OPEN_TREE_CLONE|AT_RECURSIVE|AT_EMPTY_PATH, attr_set MOUNT_ATTR_RDONLY, in one call
  ...['bus', 'fs', 'irq', 'sys', 'sysrq-trigger'].flatMap((p) => [`open_tree_attr fd:proc/${p} 0x9001 set 0x1`, 'move_mount']),
  'fsopen "tmpfs"', // /proc/acpi
  'move_mount',
  'open_tree fd:fsmount 0x1001', // /proc/asound: a clone of that tmpfs
  'move_mount',
  ...['kcore', 'keys', 'latency_stats', 'timer_list', 'timer_stats', 'sched_debug'].flatMap(() => ['open_tree fd:dev/null 0x1001', 'move_mount']),
  'open_tree fd:fsmount 0x1001', // /sys/firmware
  'move_mount',
  'open_tree fd:fsmount 0x1001', // /proc/scsi
  'move_mount',
];
/** Base mode: the directories' tmpfs came with the root (MASK_TMPFS), so /proc/acpi only moves it. */
const ISOLATION_BASE = ISOLATION.filter((_, i) => i !== ISOLATION.indexOf('fsopen "tmpfs"'));
const TAIL = ['prlimit64 7 1024 1024', ...DROPS, 'setgroups 0', 'setresgid 0', 'setresuid 0', 'chdir "/"', 'prctl 38 1', CAPSET, ...AMBIENT, 'send READY', 'recv START', 'execve "/sleep"'];

describe('the child against a recording syscall table: the default plan', () => {
  it('base mode: host paths taken first, then the base namespace copied, the root attached and chroot', () => {
    const log = record('base', [FD.POOLED_NETNS, FD.POOLED_SYSFS, FD.POOLED_IPCNS, FD.POOLED_MQUEUE, FD.BASE_MNTNS]);
    expect(key(log)).toEqual([
      'recvmsg MSG_FDS',
      'open_tree "/sys/fs/cgroup" 0x8001', // OPEN_TREE_CLONE | AT_RECURSIVE, while the host is in sight
      'fsopen "tmpfs"',
      'fsopen "overlay"',
      'openat "/srv/rootfs"', // the lower layer, opened in the host's namespace, given by fd
      ...DEV_DETACHED, // /dev and what is mounted in it, into the detached root
      'fsopen "tmpfs"', // and the masks' tmpfs (MASK_TMPFS), detached
      `setns ${100 + FD.BASE_MNTNS} 0x20000`, // into the base mount namespace
      `setns ${100 + FD.POOLED_NETNS} 0x40000000`, // the pooled network namespace
      `setns ${100 + FD.POOLED_IPCNS} 0x8000000`, // and the IPC namespace made with it
      'unshare 0x4020000', // NEWNS | NEWUTS: a copy of the base, not of the host
      'openat "/"',
      'move_mount', // the upper tmpfs on the base's "/"
      'move_mount', // the overlay on it (with /dev in it)
      MOUNTS[0], // proc
      'move_mount', // the pooled mqueue (of the pooled IPC namespace), attached
      'move_mount', // the pooled sysfs, attached
      'move_mount', // the cgroup tree cloned before
      ...ISOLATION_BASE,
      'chroot "."',
      'chdir "/"',
      ...TAIL,
    ]);
    expect(log).not.toContain('pivot_root "." "."');
    // clone made private; sysfs, mqueue and cgroup attributes (the read-only paths' are set by open_tree_attr)
    expect(log.filter((l) => l.startsWith('mount_setattr'))).toHaveLength(4);
    expect(log).toContain('fsconfig "size" "65536k"'); // the writable root's default limit
    expect(log).toContain('statx fd:dev/null'); // checked once to be c 1:3 before it masks anything
    // The /dev mounts' data option by option, as mount(2) would pass it on; their flags as attributes.
    const dev = log.slice(log.indexOf('fsopen "overlay"'), log.indexOf(`setns ${100 + FD.BASE_MNTNS} 0x20000`));
    const made = dev.filter((l) => /^(fsconfig|mknodat|symlinkat)/.test(l));
    expect(made.slice(made.indexOf('fsconfig create') + 1)).toEqual([
      ...['"source" "tmpfs"', '"mode" "755"', '"size" "65536k"', 'create'].map((o) => `fsconfig ${o}`),
      ...['"source" "devpts"', '"newinstance"', '"ptmxmode" "0666"', '"mode" "0620"', '"gid" "5"', 'create'].map((o) => `fsconfig ${o}`),
      ...['"source" "shm"', '"mode" "1777"', '"size" "65536k"', 'create'].map((o) => `fsconfig ${o}`),
      // and the nodes and links in the /dev tmpfs, before the container's namespace exists
      ...['null', 'zero', 'full', 'random', 'urandom', 'tty'].map((n) => `mknodat "${n}" 0x21b6`),
      ...[['/proc/self/fd', 'fd'], ['/proc/self/fd/0', 'stdin'], ['/proc/self/fd/1', 'stdout'], ['/proc/self/fd/2', 'stderr'], ['pts/ptmx', 'ptmx'], ['/proc/kcore', 'core']].map(
        ([t, n]) => `symlinkat "${t}" "${n}"`,
      ),
      // the masks' tmpfs: empty, read-only
      ...['"mode" "0555"', '"ro"', 'create'].map((o) => `fsconfig ${o}`),
    ]);
    expect(log.at(-1)).toBe('execve "/sleep"');
  });

  it('base mode without a pooled network namespace: the child makes one and brings lo up; sysfs mounted', () => {
    const log = record('base', [FD.BASE_MNTNS]);
    const i = log.indexOf('unshare 0x40000000');
    expect(i).toBeGreaterThan(log.indexOf(`setns ${100 + FD.BASE_MNTNS} 0x20000`));
    expect(log.slice(i + 1, i + 3)).toEqual(['socket 2', 'ioctl 0x8914']); // AF_INET, SIOCSIFFLAGS on lo
    expect(log).toContain('mount "sysfs" "." "sysfs" 0xf null');
  });

  it('host mode: a copy of the host namespace made private, the root built on the rootfs, pivot_root', () => {
    const log = record('host', []);
    expect(key(log)).toEqual([
      'recvmsg MSG_FDS',
      'open_tree "/sys/fs/cgroup" 0x8001',
      'unshare 0x40000000', // no pooled namespace sent: a new one
      'unshare 0x8000000', // and a new IPC namespace
      'unshare 0x4020000',
      'mount null "/" null 0x44000 null', // MS_REC | MS_PRIVATE before anything is mounted
      'openat "/srv/rootfs"',
      'fsopen "tmpfs"',
      'move_mount', // the upper tmpfs on the rootfs directory
      'fsopen "overlay"',
      'move_mount', // the overlay on it
      ...MOUNTS,
      'mount "sysfs" "." "sysfs" 0xf null',
      'move_mount', // the cgroup tree
      ...ISOLATION,
      'pivot_root "." "."',
      'umount2 "." 2', // MNT_DETACH: the host's mounts go
      'chdir "/"',
      ...TAIL,
    ]);
    expect(log).toContain('fsconfig "lowerdir" "/proc/self/fd/12"'); // the rootfs by its fd, not its covered path
    expect(log).not.toContain('chroot "."');
  });

  it('a host without /etc/resolv.conf: the container gets an empty one (an empty content is a string, not none)', () => {
    const s = specOf();
    const plan = buildPlan(s, { cgroup: 'hybrid', resolvConf: '', mountMode: 'host' }, { bindSourceIsFile: s.mounts.map(() => false) });
    const log = recordPlan(plan, 'no-resolv', []);
    const i = log.findIndex((l) => l.startsWith('openat') && l.includes('resolv.conf'));
    expect(i).toBeGreaterThan(0);
    expect(log.at(-1)).toBe('execve "/sleep"');
  });

  it('a kernel without open_tree_attr (before 6.15): each read-only path is open_tree, then mount_setattr', () => {
    const s = specOf();
    const plan = buildPlan(s, { cgroup: 'hybrid', resolvConf: 'nameserver 1.1.1.1\n', mountMode: 'host' }, { bindSourceIsFile: s.mounts.map(() => false) });
    const log = recordPlan(plan, 'no-ota', [], { SBX_RECORD_ENOSYS: '467' });
    const i = log.findIndex((l) => l === 'openat2 "proc/sys"');
    expect(log.slice(i + 1, i + 5)).toEqual(['syscall 467 ENOSYS', 'open_tree fd:proc/sys 0x9001', 'mount_setattr ""', 'move_mount']);
  });

  it('with a seccomp program: loaded after the handshake, as the last call before execve', () => {
    const log = record('base', [FD.BASE_MNTNS], specOf(), { seccomp: { bpf: new Uint8Array(5 * 8), flags: 2 } });
    expect(log.slice(-4)).toEqual(['recv START', 'seccomp 1 0x2 5', 'argv "/sleep" "1"', 'execve "/sleep"']); // SECCOMP_SET_MODE_FILTER, FLAG_LOG
  });

  it('a non-root user: PR_SET_KEEPCAPS before the uid changes, so the permitted set is still there for capset', () => {
    const log = key(record('base', [FD.BASE_MNTNS], specOf({ user: { uid: 1000, gid: 1000 } })));
    const from = log.indexOf('prctl 24 0');
    expect(log.slice(from, from + DROPS.length)).toEqual(DROPS);
    expect(log.slice(from + DROPS.length)).toEqual([
      'prctl 8 1',
      'setgroups 0',
      'setresgid 1000',
      'setresuid 1000',
      'chdir "/"',
      'prctl 38 1',
      CAPSET,
      ...AMBIENT,
      'send READY',
      'recv START',
      'execve "/sleep"',
    ]);
  });

  it('drop ALL: the whole bounding set dropped, every set empty, nothing raised', () => {
    const log = key(record('base', [FD.BASE_MNTNS], specOf({ capabilities: { drop: ['ALL'] } })));
    expect(log.filter((l) => l.startsWith('prctl 24 '))).toHaveLength(41);
    expect(log).toContain('capset v0x20080522 e 0x0 p 0x0 i 0x0');
    expect(log.filter((l) => l.startsWith('prctl 47'))).toEqual(['prctl 47 4']);
  });
});

describe('the child against a recording syscall table: keep (root-upper-dir)', () => {
  const kept = buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep', '1'], keep: true }, () => '0123456789abcdef');
  kept.upperDir = '/store/containers/x';
  const upperSteps = (log: string[]) => log.filter((l) => /^(open_tree "\/store|mount_setattr|openat2 "(upper|work)"|fsopen|fsconfig "(upperdir|workdir)"|openat "\/srv|move_mount)/.test(l));

  it('base mode: a private clone of the kept directory where the tmpfs was, upper/ and work/ in it by fd', () => {
    const log = record('base', [FD.POOLED_NETNS, FD.POOLED_SYSFS, FD.BASE_MNTNS], kept);
    expect(log.slice(0, log.indexOf('fsopen "overlay"'))).not.toContain('fsopen "tmpfs"'); // (the masks make one later)
    expect(upperSteps(log).slice(0, 18)).toEqual([
      'mount_setattr ""', // the cgroup tree's clone made private
      'open_tree "/store/containers/x" 0x1', // OPEN_TREE_CLONE, not recursive: the directory alone
      'mount_setattr ""', // made private: nothing propagates from or to the store's mount
      'openat2 "upper"',
      'fsopen "overlay"',
      'openat "/srv/rootfs"',
      'openat2 "work"',
      'fsconfig "upperdir"', // upper/ of the clone, by fd
      'fsconfig "workdir"',
      ...DEV_DETACHED,
      'fsopen "tmpfs"', // the masks' tmpfs
      'move_mount', // the clone on the base's "/"
      'move_mount', // the overlay on it
    ]);
  });

  it('host mode: the clone attached on the rootfs at once, the overlay takes upper/ and work/ by path through it', () => {
    const log = record('host', [], kept);
    expect(log.slice(0, log.indexOf('fsopen "overlay"'))).not.toContain('fsopen "tmpfs"'); // (the masks make one later)
    const i = log.indexOf('open_tree "/store/containers/x" 0x1');
    expect(i).toBeGreaterThan(log.indexOf('mount null "/" null 0x44000 null')); // after make-private, in the copy
    expect(upperSteps(log.slice(i))).toEqual(expect.arrayContaining(['openat "/srv/rootfs"', 'move_mount', 'fsopen "overlay"']));
    expect(log.filter((l) => l.startsWith('fsconfig "upperdir"'))).toEqual([expect.stringMatching(/^fsconfig "upperdir" "\/proc\/self\/fd\/\d+\/upper"$/)]);
  });
});

describe('the child for an exec into a running container (buildExecPlan)', () => {
  it('joins every namespace in one setns of the pidfd, chroots to PID 1\'s root, closes both, then runs the container\'s process ops', () => {
    const spec = specOf();
    const log = recordPlan(buildExecPlan(spec, { ...spec, args: ['/probe'] }, {}), 'exec', [FD.PLAN0, FD.PLAN0 + 1]);
    // One setns of the pidfd (plan fd 0) for the mount, network, IPC and UTS namespaces, without
    // CLONE_NEWPID (the parent's thread joined it around clone3); then PID 1's root (plan fd 1).
    expect(log.slice(0, 7)).toEqual(['prctl 1 9', 'prctl 15 "sbx/setup"', 'recvmsg MSG_FDS', `setns ${100 + FD.PLAN0} 0x4c020000`, 'fchdir', 'chroot "."', 'chdir "/"']);
    expect(log.slice(7).filter((l) => KEY.test(l))).toEqual([...TAIL.slice(0, -1), 'execve "/probe"']);
  });
});

describe('the child against a recording syscall table: joined namespaces and init', () => {
  const joined = specOf({
    namespaces: { pid: { path: '/proc/9/ns/pid' }, network: { path: '/proc/9/ns/net' }, ipc: { path: '/proc/9/ns/ipc' }, uts: { path: '/proc/9/ns/uts' }, cgroup: { path: '/proc/9/ns/cgroup' } },
  });
  const plan0 = (i: number) => 100 + FD.PLAN0 + i;

  it('base mode: born in the pid namespace (its setns first), the others joined after the base, unshare makes only the mount namespace, no sethostname', () => {
    const log = record('base', [FD.BASE_MNTNS, FD.PLAN0, FD.PLAN0 + 1, FD.PLAN0 + 2, FD.PLAN0 + 3, FD.PLAN0 + 4], joined);
    const ns = key(log).filter((l) => /^(setns|unshare|mount "mqueue"|recvmsg)/.test(l));
    expect(ns).toEqual([
      'recvmsg MSG_FDS',
      `setns ${plan0(0)} 0x20000000`, // the pid namespace the parent's thread cloned it into: a no-op join
      `setns ${100 + FD.BASE_MNTNS} 0x20000`,
      `setns ${plan0(1)} 0x40000000`, // network, where netns-fresh would be
      `setns ${plan0(2)} 0x8000000`, // ipc, before the mqueue mount
      `setns ${plan0(3)} 0x4000000`, // uts
      `setns ${plan0(4)} 0x2000000`, // cgroup
      'unshare 0x20000', // the mount namespace only
      'mount "mqueue" "." "mqueue" 0xe null',
    ]);
    expect(log.some((l) => l.startsWith('sethostname'))).toBe(false);
    expect(log.some((l) => l.startsWith('socket'))).toBe(false); // no lo to bring up: not ours
  });

  it('host mode: the same joins before unshare, then make-private and pivot_root', () => {
    const log = key(record('host', [FD.PLAN0, FD.PLAN0 + 1, FD.PLAN0 + 2, FD.PLAN0 + 3, FD.PLAN0 + 4], joined));
    expect(log.slice(0, 9)).toEqual([
      'recvmsg MSG_FDS',
      `setns ${plan0(0)} 0x20000000`,
      'open_tree "/sys/fs/cgroup" 0x8001',
      `setns ${plan0(1)} 0x40000000`,
      `setns ${plan0(2)} 0x8000000`,
      `setns ${plan0(3)} 0x4000000`,
      `setns ${plan0(4)} 0x2000000`,
      'unshare 0x20000',
      'mount null "/" null 0x44000 null', // MS_REC | MS_PRIVATE
    ]);
  });

  it('init: scratch-init cloned from the host with the bind sources, bound read-only on /dev/init in the /dev tmpfs, exec\'d with -- and the found binary', () => {
    const spec = specOf({ init: true });
    const plan = buildPlan(spec, { cgroup: 'hybrid', resolvConf: 'nameserver 1.1.1.1\n', mountMode: 'base' }, { bindSourceIsFile: spec.mounts.map(() => false), initBinary: '/pkg/scratch-init' });
    const log = recordPlan(plan, 'init', [FD.POOLED_NETNS, FD.POOLED_SYSFS, FD.BASE_MNTNS]);
    const k = key(log);
    expect(k.slice(1, 3)).toEqual(['open_tree "/sys/fs/cgroup" 0x8001', 'open_tree "/pkg/scratch-init" 0x1']); // OPEN_TREE_CLONE, not recursive
    // After the user's mounts (the cgroup tree the last), the init's tree moved onto dev/init.
    const cg = k.indexOf('move_mount', k.indexOf('move_mount', k.indexOf('mount "mqueue" "." "mqueue" 0xe null') + 1) + 1);
    expect(k[cg + 1]).toBe('move_mount');
    expect(log).toContain('openat2 "dev/init"');
    expect(log.slice(-2)).toEqual(['argv "/dev/init" "--" "/sleep" "/sleep" "1"', 'execve "/dev/init"']);
  });
});

describe('the child against a recording syscall table: tty: true', () => {
  /** From the ptmx's open to the master sent: the calls tty-open makes, in order. */
  function ttySteps(log: string[]): string[] {
    const i = log.indexOf('openat2 "dev/pts/ptmx"');
    expect(i).toBeGreaterThan(0);
    const end = log.findIndex((l, k) => k > i && l.startsWith('sendmsg'));
    return log.slice(i, end + 1).filter((l) => !l.startsWith('syscall 3 ')); // (no close is logged)
  }
  const STEPS = (cols: number, rows: number, socket: number) => [
    'openat2 "dev/pts/ptmx"', // the container's own devpts, beneath the root (O_RDWR | O_NOCTTY)
    'ioctl 0x40045431 0', // TIOCSPTLCK 0: unlockpt
    'ioctl 0x5441 0x80102', // TIOCGPTPEER (O_RDWR | O_NOCTTY | O_CLOEXEC): the slave, no lookup by name
    `ioctl 0x5414 ${cols}x${rows}`, // TIOCSWINSZ
    'setsid',
    'ioctl 0x540e', // TIOCSCTTY: the controlling terminal of the new session
    expect.stringMatching(/^dup3 \d+ 0$/),
    expect.stringMatching(/^dup3 \d+ 1$/),
    expect.stringMatching(/^dup3 \d+ 2$/),
    expect.stringMatching(new RegExp(`^sendmsg ${100 + socket} type 5 fd \\d+$`)), // MSG_CONSOLE on the console socket
  ];

  it('base mode: after the mounts and masks, right before chroot; the slave onto 0-2, the master sent', () => {
    const log = record('base', [FD.POOLED_NETNS, FD.POOLED_SYSFS, FD.BASE_MNTNS, FD.PLAN0], specOf({ tty: true, ttySize: { cols: 120, rows: 40 } }));
    const steps = ttySteps(log);
    expect(steps).toEqual(STEPS(120, 40, FD.PLAN0));
    const slave = /^dup3 (\d+) 0$/.exec(steps[6]!)![1];
    expect(steps.slice(7, 9)).toEqual([`dup3 ${slave} 1`, `dup3 ${slave} 2`]); // one slave on all three
    expect(steps[9]).not.toMatch(new RegExp(`fd ${slave}$`)); // the master goes, not the slave
    // Everything else is the default plan's sequence, in its order.
    const rest = key(log);
    expect(rest.indexOf('chroot "."')).toBe(rest.indexOf(rest.find((l) => l.startsWith('sendmsg'))!) + 1);
    expect(rest.filter((l) => !l.startsWith('sendmsg'))).toEqual(key(record('base', [FD.POOLED_NETNS, FD.POOLED_SYSFS, FD.BASE_MNTNS])));
  });

  it('host mode: the same, right before pivot_root', () => {
    const log = record('host', [FD.PLAN0], specOf({ tty: true }));
    expect(ttySteps(log)).toEqual(STEPS(80, 24, FD.PLAN0));
    const k = key(log);
    expect(k[k.findIndex((l) => l.startsWith('sendmsg')) + 1]).toBe('pivot_root "." "."');
  });

  it('exec: between the join and entering PID 1\'s root', () => {
    const spec = specOf();
    const log = recordPlan(buildExecPlan(spec, { ...spec, args: ['/probe'] }, {}, { tty: { cols: 90, rows: 30 } }), 'exec-tty', [FD.PLAN0, FD.PLAN0 + 1, FD.PLAN0 + 2]);
    expect(ttySteps(log)).toEqual(STEPS(90, 30, FD.PLAN0 + 2));
    expect(log.indexOf(`setns ${100 + FD.PLAN0} 0x4c020000`)).toBeLessThan(log.indexOf('openat2 "dev/pts/ptmx"'));
    expect(log.slice(log.findIndex((l) => l.startsWith('sendmsg')) + 1).slice(0, 3)).toEqual(['fchdir', 'chroot "."', 'chdir "/"']);
  });

  it("a non-root user: the slave is given to its uid (the group, tty, stays) right after it becomes the terminal", () => {
    const steps = ttySteps(record('base', [FD.BASE_MNTNS, FD.PLAN0], specOf({ tty: true, user: { uid: 1000, gid: 1000 } })));
    expect(steps.slice(5, 7)).toEqual(['ioctl 0x540e', expect.stringMatching(/^fchown 1000 -1$/)]);
  });

  it('no console socket sent: EBADF at the op, before anything is opened', () => {
    let log: string[] = [];
    try {
      record('base', [FD.BASE_MNTNS], specOf({ tty: true }));
    } catch (e) {
      log = String((e as { stdout: string }).stdout).trimEnd().split('\n'); // the recorder exits 255 as the child does
    }
    expect(log).not.toContain('openat2 "dev/pts/ptmx"');
    expect(log.slice(-3)).toEqual(['send ERROR', expect.stringMatching(/^ {2}error stage 4 op \d+ errno 9$/), 'exit_group 255']);
  });
});
