import { describe, expect, it } from 'vitest';
import { MS, defaultMounts } from '../../src-ts/spec/mounts.js';
import { DEFAULT_PATH, buildSpec, validateHostname, type ContainerOptions } from '../../src-ts/spec/spec.js';
import { expectInvalid } from './helpers.js';

const ID = '0123456789abcdef';
const newId = () => ID;
const base: ContainerOptions = { rootfs: '/srv/rootfs', args: ['/sleep', '1'] };
const build = (o: Partial<ContainerOptions> = {}) => buildSpec({ ...base, ...o } as ContainerOptions, newId);

describe('buildSpec defaults', () => {
  const spec = build();

  it('uses the injected id, and its first 12 characters as the hostname', () => {
    expect(spec.id).toBe(ID);
    expect(spec.hostname).toBe('0123456789ab');
  });

  it('derives a valid hostname from an id holding characters a hostname may not', () => {
    expect(build({ id: 'my_box.v1' }).hostname).toBe('my-box-v1');
    expect(build({ id: 'abcdefghijk-xyz' }).hostname).toBe('abcdefghijk');
    expect(build({ id: 'abcdefghijk.xyz' }).hostname).toBe('abcdefghijk');
  });

  it("namespaces.network 'shared' sets sharedNetwork and keeps network on; other strings are rejected", () => {
    const sh = build({ namespaces: { network: 'shared' } });
    expect([sh.namespaces.network, sh.sharedNetwork]).toEqual([true, true]);
    expect(spec.sharedNetwork).toBe(false);
    expectInvalid(() => build({ namespaces: { network: 'host' as never } }), { option: 'namespaces.network' });
    expectInvalid(() => build({ namespaces: { ipc: 'shared' as never } }), { option: 'namespaces.ipc' });
  });

  it('namespaces: pid network ipc uts mount on; cgroup user time off', () => {
    expect(spec.namespaces).toEqual({
      mount: true,
      pid: true,
      network: true,
      ipc: true,
      uts: true,
      cgroup: false,
      user: false,
      time: false,
    });
  });

  it("cwd '/', umask 0o22, stdio pipe ×3, not detached, root user", () => {
    expect(spec.cwd).toBe('/');
    expect(spec.umask).toBe(0o22);
    expect(spec.stdio).toEqual(['pipe', 'pipe', 'pipe']);
    expect(spec.detached).toBe(false);
    expect(spec.user).toEqual({ uid: 0, gid: 0, additionalGids: [] });
  });

  it('adds PATH when env has none', () => {
    expect(spec.env).toEqual([`PATH=${DEFAULT_PATH}`]);
    expect(DEFAULT_PATH).toBe('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  });

  it('mounts default to the parsed defaultMounts', () => {
    expect(spec.mounts.map((m) => m.destination)).toEqual(defaultMounts.map((m) => m.destination));
    expect(spec.mounts[1]!.flags).toBe(MS.NOSUID | MS.STRICTATIME);
  });

  it('keeps args and rootfs, normalising a trailing slash', () => {
    expect(spec.args).toEqual(['/sleep', '1']);
    expect(spec.rootfs).toBe('/srv/rootfs');
    expect(build({ rootfs: '/srv//rootfs/' }).rootfs).toBe('/srv/rootfs');
  });

  it('calls newId only when no id is given', () => {
    let calls = 0;
    const s = buildSpec({ ...base, id: 'given-id' }, () => {
      calls++;
      return 'x';
    });
    expect(calls).toBe(0);
    expect(s.id).toBe('given-id');
    expect(s.hostname).toBe('given-id');
  });
});

describe('buildSpec env', () => {
  it('object form, PATH first when added', () => {
    expect(build({ env: { A: '1', B: '' } }).env).toEqual([`PATH=${DEFAULT_PATH}`, 'A=1', 'B=']);
  });

  it('KEY=VALUE array form, value may contain =', () => {
    expect(build({ env: ['A=1', 'X=a=b'] }).env).toEqual([`PATH=${DEFAULT_PATH}`, 'A=1', 'X=a=b']);
  });

  it('a given PATH is kept and no default added', () => {
    expect(build({ env: { PATH: '/bin', A: '1' } }).env).toEqual(['PATH=/bin', 'A=1']);
    expect(build({ env: ['A=1', 'PATH=/opt/bin'] }).env).toEqual(['A=1', 'PATH=/opt/bin']);
  });

  it('rejects entries that are not KEY=VALUE', () => {
    expectInvalid(() => build({ env: ['NOEQUALS'] }), { option: 'env[0]' });
    expectInvalid(() => build({ env: ['A=1', '=x'] }), { option: 'env[1]' });
    expectInvalid(() => build({ env: { A: 1 as unknown as string } }), { option: 'env.A' });
    expectInvalid(() => build({ env: 'A=1' as unknown as string[] }), { option: 'env' });
  });
});

describe('buildSpec rejections', () => {
  it('with init: true one slot less for bind mounts (its binary takes one); every slot used, the masks\' tmpfs is made by the child', async () => {
    const { buildPlan } = await import('../../src-ts/plan/plan.js');
    const binds = (n: number) => [...defaultMounts, ...Array.from({ length: n }, (_, i) => ({ destination: `/b${i}`, type: 'bind', source: '/srv' }))];
    const e = expectInvalid(() => build({ mounts: binds(127), init: true }), { option: 'mounts' }); // + the cgroup bind: 128
    expect(e.message).toContain('at most 127 are supported with init: true');
    const host = { cgroup: 'hybrid', resolvConf: '', mountMode: 'base' } as const;
    const s = build({ mounts: binds(126), init: true });
    const plan = buildPlan(s, host, { bindSourceIsFile: s.mounts.map(() => false), initBinary: '/pkg/scratch-init' });
    expect(plan.ops.some((o) => o.kind === 'mask-tmpfs')).toBe(false);
    expect(plan.ops.filter((o) => o.kind === 'mask-path').every((o) => o.kind === 'mask-path' && o.slot === 0xffffffff)).toBe(true);
    const fewer = build({ mounts: binds(125), init: true });
    const p2 = buildPlan(fewer, host, { bindSourceIsFile: fewer.mounts.map(() => false), initBinary: '/pkg/scratch-init' });
    expect(p2.ops.filter((o) => o.kind === 'mask-tmpfs')).toEqual([{ stage: 'security', kind: 'mask-tmpfs', slot: 127 }]);
  });

  it('relative rootfs', () => {
    expectInvalid(() => build({ rootfs: 'srv/rootfs' }), { option: 'rootfs', path: 'srv/rootfs' });
  });

  it("rootfs '/' (and '//')", () => {
    expectInvalid(() => build({ rootfs: '/' }), { option: 'rootfs', path: '/' });
    expectInvalid(() => build({ rootfs: '//' }), { option: 'rootfs' });
  });

  // Regression: '/.' once passed the '/' check (not literally '/') and came out as rootfs ''.
  it("rootfs that normalises to the host root ('/.', '/./') is rejected, never ''", () => {
    expectInvalid(() => build({ rootfs: '/.' }), { option: 'rootfs' });
    expectInvalid(() => build({ rootfs: '/./' }), { option: 'rootfs' });
  });

  it("rootfs with a '..' component", () => {
    expectInvalid(() => build({ rootfs: '/srv/../etc' }), { option: 'rootfs', path: '/srv/../etc' });
    expectInvalid(() => build({ rootfs: '/srv/rootfs/..' }), { option: 'rootfs' });
  });

  it('empty or missing rootfs', () => {
    expectInvalid(() => build({ rootfs: '' }), { option: 'rootfs' });
    expectInvalid(() => buildSpec({ args: ['/x'] } as unknown as ContainerOptions, newId), { option: 'rootfs' });
  });

  it('more bind mounts than the child has slots for (128)', () => {
    const binds = (n: number) => Array.from({ length: n }, (_, i) => ({ destination: `/b${i}`, type: 'bind', source: '/srv' }));
    expectInvalid(() => build({ mounts: [...defaultMounts, ...binds(128)] }), { option: 'mounts' }); // + the cgroup bind
    expect(build({ mounts: [...defaultMounts, ...binds(127)] }).mounts).toHaveLength(defaultMounts.length + 127);
  });

  it('empty args, non-array args', () => {
    expectInvalid(() => build({ args: [] }), { option: 'args' });
    expectInvalid(() => build({ args: '/sleep' as unknown as string[] }), { option: 'args' });
  });

  it('non-string args', () => {
    expectInvalid(() => build({ args: ['/sleep', 1 as unknown as string] }), { option: 'args[1]' });
  });

  it('args[0] empty (later args may be empty)', () => {
    expectInvalid(() => build({ args: [''] }), { option: 'args[0]' });
    expect(build({ args: ['/echo', ''] }).args).toEqual(['/echo', '']);
  });

  it('privileged with options it overrides: seccomp, capabilities, a device allow-list', () => {
    expectInvalid(() => build({ privileged: true, seccomp: { defaultAction: 'SCMP_ACT_ALLOW' } }), { option: 'seccomp' });
    expectInvalid(() => build({ privileged: true, capabilities: { add: ['SYS_ADMIN'] } }), { option: 'capabilities' });
    expectInvalid(() => build({ privileged: true, resources: { devices: [{ allow: false, access: 'rwm' }] } }), { option: 'resources.devices' });
    // What does not contradict it is kept: no filter asked, nodes to make, other limits.
    const s = build({ privileged: true, seccomp: 'unconfined', devices: [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }], resources: { pids: { limit: 9 } } });
    expect([s.seccomp, s.devices.length, s.cgroup?.resources.pids?.limit]).toEqual([null, 1, 9]);
  });

  it('bad id', () => {
    for (const id of ['', '-x', 'a b', 'a/b', '.x', 'x'.repeat(129)]) expectInvalid(() => build({ id }), { option: 'id' });
    expectInvalid(() => buildSpec(base, () => 'bad id'), { option: 'id' });
  });

  it('invalid hostnames', () => {
    for (const hostname of ['-bad', 'bad-', 'a_b', 'x'.repeat(65), 'x..y', '.x', 'x.', ''])
      expectInvalid(() => build({ hostname }), { option: 'hostname' });
    // 64 bytes of valid labels is too long too
    expectInvalid(() => build({ hostname: `${'a'.repeat(63)}.bc` }), { option: 'hostname' });
  });

  it('valid hostnames', () => {
    for (const hostname of ['box', 'a-b.c', 'A1', 'x'.repeat(63), `${'a'.repeat(31)}.${'b'.repeat(32)}`])
      expect(build({ hostname }).hostname).toBe(hostname);
    expect(validateHostname('my-host.example')).toBe('my-host.example');
  });

  it('relative cwd', () => {
    expectInvalid(() => build({ cwd: 'tmp' }), { option: 'cwd' });
    expect(build({ cwd: '/tmp' }).cwd).toBe('/tmp');
  });

  it('uid/gid out of range', () => {
    expectInvalid(() => build({ user: { uid: -1, gid: 0 } }), { option: 'user.uid' });
    expectInvalid(() => build({ user: { uid: 0xffffffff, gid: 0 } }), { option: 'user.uid' });
    expectInvalid(() => build({ user: { uid: 1.5, gid: 0 } }), { option: 'user.uid' });
    expectInvalid(() => build({ user: { uid: 0, gid: 2 ** 32 } }), { option: 'user.gid' });
    expectInvalid(() => build({ user: { uid: 0, gid: 0, additionalGids: [1, -2] } }), { option: 'user.additionalGids[1]' });
    expect(build({ user: { uid: 0xfffffffe, gid: 1000, additionalGids: [5, 6] } }).user).toEqual({
      uid: 0xfffffffe,
      gid: 1000,
      additionalGids: [5, 6],
    });
  });

  it('unknown namespace name, non-boolean value', () => {
    expectInvalid(() => build({ namespaces: { net: true } as never }), { option: 'namespaces.net' });
    expectInvalid(() => build({ namespaces: { pid: 'yes' } as never }), { option: 'namespaces.pid' });
  });

  it('namespaces.mount false', () => {
    expectInvalid(() => build({ namespaces: { mount: false } }), { option: 'namespaces.mount' });
  });

  it('namespaces.user true: ENOTSUP', () => {
    expectInvalid(() => build({ namespaces: { user: true } }), { code: 'ENOTSUP', option: 'namespaces.user' });
  });

  it('namespace overrides are applied', () => {
    expect(build({ namespaces: { network: false, cgroup: true, time: true } }).namespaces).toMatchObject({
      network: false,
      cgroup: true,
      time: true,
      pid: true,
    });
  });

  it('duplicate mount destinations (after normalisation)', () => {
    expectInvalid(
      () =>
        build({
          mounts: [
            { destination: '/data', type: 'tmpfs' },
            { destination: '/x', type: 'tmpfs' },
            { destination: '/data/', type: 'tmpfs' },
          ],
        }),
      { option: 'mounts[2].destination', path: '/data' },
    );
    expectInvalid(() => build({ mounts: [...defaultMounts, { destination: '/proc', type: 'tmpfs' }] }), {
      option: 'mounts[7].destination',
      path: '/proc',
    });
  });

  it('mounts that are not an array; a bad mount inside', () => {
    expectInvalid(() => build({ mounts: {} as never }), { option: 'mounts' });
    expectInvalid(() => build({ mounts: [{ destination: 'rel', type: 'tmpfs' }] }), { option: 'mounts[0].destination' });
  });

  it('bad stdio values', () => {
    expectInvalid(() => build({ stdio: 'inheritt' as never }), { option: 'stdio' });
    expectInvalid(() => build({ stdio: -1 }), { option: 'stdio' });
    expectInvalid(() => build({ stdio: ['pipe', 'pipe'] as never }), { option: 'stdio' });
    expectInvalid(() => build({ stdio: ['pipe', 'nope', 'pipe'] as never }), { option: 'stdio[1]' });
    expect(build({ stdio: 'inherit' }).stdio).toEqual(['inherit', 'inherit', 'inherit']);
    expect(build({ stdio: ['ignore', 1, 'pipe'] }).stdio).toEqual(['ignore', 1, 'pipe']);
  });

  it('umask out of range', () => {
    expectInvalid(() => build({ umask: 0o1000 }), { option: 'umask' });
    expectInvalid(() => build({ umask: -1 }), { option: 'umask' });
    expectInvalid(() => build({ umask: 0.5 }), { option: 'umask' });
    expect(build({ umask: 0o777 }).umask).toBe(0o777);
    expect(build({ umask: 0 }).umask).toBe(0);
  });

  it('detached must be a boolean', () => {
    expectInvalid(() => build({ detached: 'yes' as never }), { option: 'detached' });
    expect(build({ detached: true }).detached).toBe(true);
  });

  it('options that are not an object', () => {
    expectInvalid(() => buildSpec(null as never, newId), { option: 'options' });
  });
});
