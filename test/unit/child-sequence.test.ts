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
import { buildPlan, type Compiled, type HostInfo } from '../../src-ts/plan/plan.js';
import { FD } from '../../src-ts/plan/wire.js';
import { buildSpec } from '../../src-ts/spec/spec.js';

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

const defaultSpec = buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep', '1'] }, () => '0123456789abcdef');

/** The child's calls for the default plan in this mode, given these MSG_FDS fds. */
function record(mode: HostInfo['mountMode'], fds: number[], compiled: Compiled = {}, spec = defaultSpec): string[] {
  const plan = buildPlan(spec, { cgroup: 'hybrid', resolvConf: 'nameserver 1.1.1.1\n', mountMode: mode }, { bindSourceIsFile: spec.mounts.map(() => false) }, compiled);
  const file = `${out}.${mode}.plan`;
  writeFileSync(file, encodePlan(plan));
  const mask = fds.reduce((m, i) => m | (1 << i), 0);
  return execFileSync(out, [file, String(mask)], { encoding: 'utf8' }).trimEnd().split('\n');
}

/** The calls that decide where things are mounted and who runs: the sequence under test. */
const KEY = /^(open_tree|openat "\/|fsopen|setns|unshare|mount |move_mount|pivot_root|umount2|chroot|chdir|set(groups|resgid|resuid)|prctl 38|execve|send|recv)/; // 38: PR_SET_NO_NEW_PRIVS
const key = (log: string[]) => log.filter((l) => KEY.test(l));

const MOUNTS = [
  'mount "proc" "." "proc" 0x0 null',
  'mount "tmpfs" "." "tmpfs" 0x1000002 "mode=755,size=65536k"',
  'mount "devpts" "." "devpts" 0xa "newinstance,ptmxmode=0666,mode=0620,gid=5"',
  'mount "shm" "." "tmpfs" 0xe "mode=1777,size=65536k"',
  'mount "mqueue" "." "mqueue" 0xe null',
];
const TAIL = ['setgroups 0', 'setresgid 0', 'setresuid 0', 'chdir "/"', 'prctl 38', 'send READY', 'recv START', 'execve "/sleep"'];

describe('the child against a recording syscall table: the default plan', () => {
  it('base mode: host paths taken first, then the base namespace copied, the root attached and chroot', () => {
    const log = record('base', [FD.POOLED_NETNS, FD.POOLED_SYSFS, FD.BASE_MNTNS]);
    expect(key(log)).toEqual([
      'recvmsg MSG_FDS',
      'open_tree "/sys/fs/cgroup" 0x8001', // OPEN_TREE_CLONE | AT_RECURSIVE, while the host is in sight
      'fsopen "tmpfs"',
      'fsopen "overlay"',
      'openat "/srv/rootfs"', // the lower layer, opened in the host's namespace, given by fd
      `setns ${100 + FD.BASE_MNTNS} 0x20000`, // into the base mount namespace
      `setns ${100 + FD.POOLED_NETNS} 0x40000000`, // the pooled network namespace
      'unshare 0xc020000', // NEWNS | NEWIPC | NEWUTS: a copy of the base, not of the host
      'openat "/"',
      'move_mount', // the upper tmpfs on the base's "/"
      'move_mount', // the overlay on it
      ...MOUNTS,
      'move_mount', // the pooled sysfs, attached
      'move_mount', // the cgroup tree cloned before
      'chroot "."',
      'chdir "/"',
      ...TAIL,
    ]);
    expect(log).not.toContain('pivot_root "." "."');
    expect(log.filter((l) => l.startsWith('mount_setattr'))).toHaveLength(3); // clone made private; sysfs and cgroup attributes
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
      'unshare 0xc020000',
      'mount null "/" null 0x44000 null', // MS_REC | MS_PRIVATE before anything is mounted
      'openat "/srv/rootfs"',
      'fsopen "tmpfs"',
      'move_mount', // the upper tmpfs on the rootfs directory
      'fsopen "overlay"',
      'move_mount', // the overlay on it
      ...MOUNTS,
      'mount "sysfs" "." "sysfs" 0xf null',
      'move_mount', // the cgroup tree
      'pivot_root "." "."',
      'umount2 "." 2', // MNT_DETACH: the host's mounts go
      'chdir "/"',
      ...TAIL,
    ]);
    expect(log).toContain('fsconfig "lowerdir" "/proc/self/fd/12"'); // the rootfs by its fd, not its covered path
    expect(log).not.toContain('chroot "."');
  });

  it('with a seccomp program: loaded after the handshake, as the last call before execve', () => {
    const log = record('base', [FD.BASE_MNTNS], { seccomp: { bpf: new Uint8Array(5 * 8), flags: 2 } });
    expect(log.slice(-3)).toEqual(['recv START', 'seccomp 1 0x2 5', 'execve "/sleep"']); // SECCOMP_SET_MODE_FILTER, FLAG_LOG
  });
});

describe('the child against a recording syscall table: keep (root-upper-dir)', () => {
  const kept = buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep', '1'], keep: true }, () => '0123456789abcdef');
  kept.upperDir = '/store/containers/x';
  const upperSteps = (log: string[]) => log.filter((l) => /^(open_tree "\/store|mount_setattr|openat2 "(upper|work)"|fsopen|fsconfig "(upperdir|workdir)"|openat "\/srv|move_mount)/.test(l));

  it('base mode: a private clone of the kept directory where the tmpfs was, upper/ and work/ in it by fd', () => {
    const log = record('base', [FD.POOLED_NETNS, FD.POOLED_SYSFS, FD.BASE_MNTNS], {}, kept);
    expect(log).not.toContain('fsopen "tmpfs"');
    expect(upperSteps(log).slice(0, 11)).toEqual([
      'mount_setattr ""', // the cgroup tree's clone made private
      'open_tree "/store/containers/x" 0x1', // OPEN_TREE_CLONE, not recursive: the directory alone
      'mount_setattr ""', // made private: nothing propagates from or to the store's mount
      'openat2 "upper"',
      'fsopen "overlay"',
      'openat "/srv/rootfs"',
      'openat2 "work"',
      'fsconfig "upperdir"', // upper/ of the clone, by fd
      'fsconfig "workdir"',
      'move_mount', // the clone on the base's "/"
      'move_mount', // the overlay on it
    ]);
  });

  it('host mode: the clone attached on the rootfs at once, the overlay takes upper/ and work/ by path through it', () => {
    const log = record('host', [], {}, kept);
    expect(log).not.toContain('fsopen "tmpfs"');
    const i = log.indexOf('open_tree "/store/containers/x" 0x1');
    expect(i).toBeGreaterThan(log.indexOf('mount null "/" null 0x44000 null')); // after make-private, in the copy
    expect(upperSteps(log.slice(i))).toEqual(expect.arrayContaining(['openat "/srv/rootfs"', 'move_mount', 'fsopen "overlay"']));
    expect(log.filter((l) => l.startsWith('fsconfig "upperdir"'))).toEqual([expect.stringMatching(/^fsconfig "upperdir" "\/proc\/self\/fd\/\d+\/upper"$/)]);
  });
});
