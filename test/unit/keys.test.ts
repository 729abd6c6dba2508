import { describe, expect, it } from 'vitest';
import { closest } from '../../src-ts/spec/keys.js';
import { parseMount, type MountSpec } from '../../src-ts/spec/mounts.js';
import { buildSpec, OPTION_KEYS, type ContainerOptions } from '../../src-ts/spec/spec.js';
import { expectInvalid } from './helpers.js';

const base: ContainerOptions = { rootfs: '/srv/rootfs', args: ['/sleep'] };
const build = (o: Record<string, unknown>) => buildSpec({ ...base, ...o } as ContainerOptions, () => '0123456789abcdef');

describe('unknown option keys', () => {
  it.each([
    ['memory', 1 << 20],
    ['rlimit', [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }]], // rlimits is an option now
    ['seccompProfile', {}], // noNewPrivileges was here: it is an option now (isolation issue)
    ['readonly', true],
  ])('%s (an option scratchbox does not have) is EINVAL naming it', (key, value) => {
    const e = expectInvalid(() => build({ [key]: value }), { code: 'EINVAL', option: key });
    expect(e.message).toContain('unknown option');
    expect(e.errno).toBe(22);
  });

  it('a typo names the key and the known one it resembles', () => {
    const e = expectInvalid(() => build({ hostnme: 'box' }), { option: 'hostnme' });
    expect(e.message).toContain("did you mean 'hostname'?");
    expect(expectInvalid(() => build({ Rootfs: '/x' }), { option: 'Rootfs' }).message).toContain("did you mean 'rootfs'?");
    expect(expectInvalid(() => build({ nameSpaces: {} }), { option: 'nameSpaces' }).message).toContain("did you mean 'namespaces'?");
    expect(expectInvalid(() => build({ evn: {} }), { option: 'evn' }).message).toContain("did you mean 'env'?");
    // Nothing close: no guess.
    expect(expectInvalid(() => build({ memory: 1 }), { option: 'memory' }).message).not.toContain('did you mean');
  });

  it('an unknown key is rejected even when its value is undefined (it is still a typo)', () => {
    expectInvalid(() => build({ hostnme: undefined }), { option: 'hostnme' });
  });

  it('nested: user, namespaces and mounts entries', () => {
    const u = expectInvalid(() => build({ user: { uid: 0, gid: 0, gids: [1] } }), { option: 'user.gids' });
    expect(u.message).toContain('unknown option');
    const ns = expectInvalid(() => build({ namespaces: { netwrok: false } }), { option: 'namespaces.netwrok' });
    expect(ns.message).toContain("did you mean 'network'?");
    const m = expectInvalid(() => build({ mounts: [{ destination: '/t', type: 'tmpfs' }, { destinaton: '/x', type: 'tmpfs' }] }), {
      option: 'mounts[1].destinaton',
    });
    expect(m.message).toContain("did you mean 'destination'?");
    expectInvalid(() => parseMount({ destination: '/t', type: 'tmpfs', readonly: true } as MountSpec, 0), { option: 'mounts[0].readonly' });
  });

  it('every known option is accepted', () => {
    const all: Required<ContainerOptions> = {
      rootfs: '/srv/rootfs',
      args: ['/sleep'],
      env: { A: 'b' },
      cwd: '/',
      hostname: 'box',
      user: { uid: 1, gid: 1, additionalGids: [2] },
      stdio: 'ignore',
      mounts: [{ destination: '/proc', type: 'proc' }, { destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }],
      namespaces: { mount: true, pid: true, network: 'shared', ipc: true, uts: true, cgroup: false, user: false, time: false },
      id: 'all-options',
      detached: false,
      signal: new AbortController().signal,
      killSignal: 'SIGKILL',
      umask: 0o22,
      trace: false,
      noNewPrivileges: true,
      seccomp: { defaultAction: 'SCMP_ACT_ALLOW' },
      privileged: false,
      image: 'sleep:latest',
      store: {} as never,
      capabilities: { add: ['SYS_ADMIN'] },
      maskedPaths: ['/proc/kcore'],
      readonlyPaths: ['/proc/sys'],
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 64, hard: 128 }],
      oomScoreAdj: 100,
      sysctl: { 'kernel.shmmax': '4096' },
      devices: [],
      writableSize: '16m',
      readonlyRootfs: true,
      resources: { pids: { limit: 10 } },
      cgroup: { path: '/sbx' },
      keep: false,
      init: true,
      tty: true,
      ttySize: { cols: 100, rows: 30 },
    };
    expect(Object.keys(all).sort()).toEqual(Object.keys(OPTION_KEYS).sort());
    // image and store are resolved by Container.create (into rootfs and the layers) before buildSpec.
    const { image: _image, store: _store, tty: _tty, ttySize: _ttySize, ...resolved } = all;
    expect(buildSpec(resolved, () => 'x', { layers: ['/srv/base', '/srv/rootfs'] }).layers).toEqual(['/srv/rootfs', '/srv/base']);
    expect(buildSpec(resolved, () => 'x').id).toBe('all-options');
    // tty replaces stdio, and needs a devpts of the container's own (the default mounts have one).
    const { stdio: _stdio, mounts: _mounts, ...noStdio } = resolved;
    expect(buildSpec({ ...noStdio, tty: all.tty, ttySize: all.ttySize }, () => 'x').tty).toEqual({ cols: 100, rows: 30 });
  });

  it('closest(): case, one edit or a swap per three characters, else nothing', () => {
    const known = ['hostname', 'id', 'env', 'args', 'stdio'];
    expect(closest('HOSTNAME', known)).toBe('hostname');
    expect(closest('hostnmae', known)).toBe('hostname');
    expect(closest('hst', known)).toBeUndefined();
    expect(closest('ix', known)).toBe('id');
    expect(closest('stdin', known)).toBe('stdio');
    expect(closest('capabilities', known)).toBeUndefined();
  });
});
