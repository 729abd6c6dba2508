import { describe, expect, it } from 'vitest';
import { MOUNT_ATTR, MS, defaultMounts, normalizeDestination, parseMount, type MountSpec } from '../../src-ts/spec/mounts.js';
import { expectInvalid } from './helpers.js';

// The table of /work/shared/REFERENCE.md ("Default OCI spec"), transcribed independently.
const REFERENCE_TABLE: MountSpec[] = [
  { destination: '/proc', type: 'proc', source: 'proc', options: [] },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  {
    destination: '/dev/pts',
    type: 'devpts',
    source: 'devpts',
    options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
  },
  { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
];

describe('defaultMounts', () => {
  it('equals the libcontainer default table (destination, type, source, options, order)', () => {
    expect(defaultMounts.map((m) => ({ ...m, options: [...(m.options ?? [])] }))).toEqual(REFERENCE_TABLE);
    expect(defaultMounts.map((m) => m.destination)).toEqual([
      '/proc',
      '/dev',
      '/dev/pts',
      '/dev/shm',
      '/dev/mqueue',
      '/sys',
      '/sys/fs/cgroup',
    ]);
  });

  it('has no keys beyond destination, type, source, options', () => {
    for (const m of defaultMounts) expect(Object.keys(m).sort()).toEqual(['destination', 'options', 'source', 'type']);
  });

  it('is frozen, and so are its entries and their options arrays', () => {
    expect(Object.isFrozen(defaultMounts)).toBe(true);
    for (const m of defaultMounts) {
      expect(Object.isFrozen(m)).toBe(true);
      expect(Object.isFrozen(m.options)).toBe(true);
    }
    expect(() => (defaultMounts as MountSpec[]).push({ destination: '/x', type: 'tmpfs' })).toThrow(TypeError);
    expect(() => {
      (defaultMounts[0] as { destination: string }).destination = '/evil';
    }).toThrow(TypeError);
    expect(() => (defaultMounts[1]!.options as string[]).push('exec')).toThrow(TypeError);
    expect(defaultMounts[0]!.destination).toBe('/proc');
    expect(defaultMounts[1]!.options).toHaveLength(4);
  });

  it('can be spread into a list of ones own', () => {
    const mine = [...defaultMounts, { destination: '/data', type: 'tmpfs' }];
    expect(mine).toHaveLength(8);
    expect(defaultMounts).toHaveLength(7);
  });
});

describe('mount flag constants', () => {
  it('match linux/mount.h', () => {
    expect(MS).toMatchObject({
      RDONLY: 1,
      NOSUID: 2,
      NODEV: 4,
      NOEXEC: 8,
      BIND: 4096,
      REC: 16384,
      PRIVATE: 1 << 18,
      SLAVE: 1 << 19,
      SHARED: 1 << 20,
      UNBINDABLE: 1 << 17,
      RELATIME: 1 << 21,
      STRICTATIME: 1 << 24,
      NOATIME: 1024,
    });
    expect(MOUNT_ATTR).toMatchObject({ RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, NOATIME: 0x10, STRICTATIME: 0x20, NODIRATIME: 0x80 });
  });
});

describe('parseMount of the default mounts', () => {
  const parsed = defaultMounts.map((m, i) => parseMount(m, i));

  it('/proc: no flags, no data', () => {
    expect(parsed[0]).toEqual({
      destination: '/proc',
      type: 'proc',
      source: 'proc',
      flags: 0,
      data: '',
      recursive: false,
      attrs: 0,
      propagation: 0,
    });
  });

  it('/dev: MS_NOSUID|MS_STRICTATIME, data mode=755,size=65536k', () => {
    expect(parsed[1]).toMatchObject({ destination: '/dev', type: 'tmpfs', source: 'tmpfs', data: 'mode=755,size=65536k' });
    expect(parsed[1]!.flags).toBe(MS.NOSUID | MS.STRICTATIME);
    expect(parsed[1]!.flags).toBe(0x1000002);
  });

  it('/dev/pts: nosuid|noexec, devpts data in order', () => {
    expect(parsed[2]).toMatchObject({ type: 'devpts', source: 'devpts', data: 'newinstance,ptmxmode=0666,mode=0620,gid=5' });
    expect(parsed[2]!.flags).toBe(MS.NOSUID | MS.NOEXEC);
  });

  it('/dev/shm: tmpfs from source shm, nosuid|noexec|nodev', () => {
    expect(parsed[3]).toMatchObject({ type: 'tmpfs', source: 'shm', data: 'mode=1777,size=65536k' });
    expect(parsed[3]!.flags).toBe(MS.NOSUID | MS.NOEXEC | MS.NODEV);
  });

  it('/dev/mqueue: nosuid|noexec|nodev, no data', () => {
    expect(parsed[4]).toMatchObject({ type: 'mqueue', source: 'mqueue', data: '' });
    expect(parsed[4]!.flags).toBe(MS.NOSUID | MS.NOEXEC | MS.NODEV);
  });

  it('/sys: ro|nosuid|nodev|noexec', () => {
    expect(parsed[5]).toMatchObject({ type: 'sysfs', source: 'sysfs', data: '' });
    expect(parsed[5]!.flags).toBe(MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC);
    expect(parsed[5]!.flags).toBe(0xf);
  });

  it('/sys/fs/cgroup: ro|nosuid|nodev|noexec|relatime; attrs without relatime', () => {
    expect(parsed[6]).toMatchObject({ type: 'cgroup', source: 'cgroup', data: '' });
    expect(parsed[6]!.flags).toBe(MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RELATIME);
    expect(parsed[6]!.attrs).toBe(MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC);
  });

  it('none of them is a bind, recursive or has a propagation', () => {
    for (const p of parsed) {
      expect(p.type).not.toBe('bind');
      expect(p.recursive).toBe(false);
      expect(p.propagation).toBe(0);
    }
  });
});

describe('parseMount of bind mounts', () => {
  it('type bind: not recursive, attrs from ro/nosuid/nodev/noexec', () => {
    const p = parseMount({ destination: '/data', type: 'bind', source: '/srv/data', options: ['ro', 'nosuid', 'nodev', 'noexec'] }, 0);
    expect(p).toEqual({
      destination: '/data',
      type: 'bind',
      source: '/srv/data',
      flags: MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC,
      data: '',
      recursive: false,
      attrs: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC,
      propagation: 0,
    });
  });

  it('a bind option without a type makes a bind mount', () => {
    const p = parseMount({ destination: '/data', source: '/srv', options: ['bind'] }, 3);
    expect(p.type).toBe('bind');
    expect(p.recursive).toBe(false);
  });

  it('rbind is recursive, on any type', () => {
    const p = parseMount({ destination: '/data', type: 'none', source: '/srv', options: ['rbind', 'ro'] }, 0);
    expect(p.type).toBe('bind');
    expect(p.recursive).toBe(true);
    expect(p.attrs).toBe(MOUNT_ATTR.RDONLY);
  });

  it('propagation options', () => {
    const cases: [string, number][] = [
      ['private', MS.PRIVATE],
      ['rprivate', MS.PRIVATE],
      ['shared', MS.SHARED],
      ['rslave', MS.SLAVE],
      ['slave', MS.SLAVE],
      ['unbindable', MS.UNBINDABLE],
    ];
    for (const [opt, want] of cases)
      expect(parseMount({ destination: '/d', type: 'bind', source: '/s', options: [opt] }, 0).propagation).toBe(want);
  });

  it('rw after ro clears the read-only flag and attribute', () => {
    const p = parseMount({ destination: '/d', type: 'bind', source: '/s', options: ['ro', 'nosuid', 'rw'] }, 0);
    expect(p.flags & MS.RDONLY).toBe(0);
    expect(p.flags).toBe(MS.NOSUID);
    expect(p.attrs).toBe(MOUNT_ATTR.NOSUID);
  });

  it('other clearing options: exec, dev, suid', () => {
    const p = parseMount({ destination: '/d', type: 'tmpfs', options: ['noexec', 'nodev', 'nosuid', 'exec', 'dev'] }, 0);
    expect(p.flags).toBe(MS.NOSUID);
  });

  it('nosymfollow and noatime map to their attributes', () => {
    const p = parseMount({ destination: '/d', type: 'bind', source: '/s', options: ['nosymfollow', 'nodiratime'] }, 0);
    expect(p.flags).toBe(MS.NOSYMFOLLOW | MS.NODIRATIME);
    expect(p.attrs).toBe(MOUNT_ATTR.NOSYMFOLLOW | MOUNT_ATTR.NODIRATIME);
  });

  it('normalises the destination (duplicate and trailing slashes)', () => {
    expect(parseMount({ destination: '//data//x/', type: 'tmpfs' }, 0).destination).toBe('/data/x');
  });

  it('defaults the source to the type for a new file system', () => {
    expect(parseMount({ destination: '/t', type: 'tmpfs', options: ['size=1m'] }, 0)).toMatchObject({ source: 'tmpfs', data: 'size=1m' });
  });
});

describe('parseMount atime options', () => {
  it('relatime, noatime and strictatime are one setting: the last one wins', () => {
    const bind = (options: string[]) => parseMount({ destination: '/d', type: 'bind', source: '/s', options }, 0);
    expect(bind(['noatime', 'strictatime']).flags & (MS.NOATIME | MS.STRICTATIME | MS.RELATIME)).toBe(MS.STRICTATIME);
    expect(bind(['strictatime', 'noatime']).attrs).toBe(MOUNT_ATTR.NOATIME);
    expect(bind(['noatime', 'relatime']).attrs).toBe(0);
  });
});

describe('parseMount rejections', () => {
  it('relative destination', () => {
    expectInvalid(() => parseMount({ destination: 'proc', type: 'proc' }, 0), {
      option: 'mounts[0].destination',
      path: 'proc',
    });
  });

  it("'..' component", () => {
    expectInvalid(() => parseMount({ destination: '/dev/../etc', type: 'tmpfs' }, 2), {
      option: 'mounts[2].destination',
      path: '/dev/../etc',
    });
  });

  it("'.' component", () => {
    expectInvalid(() => parseMount({ destination: '/dev/./shm', type: 'tmpfs' }, 1), {
      option: 'mounts[1].destination',
      path: '/dev/./shm',
    });
  });

  it("'/' as the destination (also '//')", () => {
    expectInvalid(() => parseMount({ destination: '/', type: 'tmpfs' }, 0), { option: 'mounts[0].destination', path: '/' });
    expectInvalid(() => parseMount({ destination: '//', type: 'tmpfs' }, 0), { option: 'mounts[0].destination' });
  });

  it('empty and non-string destinations', () => {
    expectInvalid(() => parseMount({ destination: '', type: 'tmpfs' }, 0), { option: 'mounts[0].destination' });
    expectInvalid(() => parseMount({ destination: 5 as unknown as string, type: 'tmpfs' }, 4), { option: 'mounts[4].destination' });
    expectInvalid(() => normalizeDestination('/a\0b', 'x'), { option: 'x' });
  });

  it("unknown option 'foo'", () => {
    expectInvalid(() => parseMount({ destination: '/t', type: 'tmpfs', options: ['nosuid', 'foo'] }, 0), {
      option: 'mounts[0].options[1]',
    });
  });

  it("'mode=1' on mqueue (which takes no data)", () => {
    expectInvalid(() => parseMount({ destination: '/dev/mqueue', type: 'mqueue', options: ['mode=1'] }, 4), {
      option: 'mounts[4].options[0]',
    });
  });

  it("unsupported type 'ext4', with and without data options", () => {
    expectInvalid(() => parseMount({ destination: '/mnt', type: 'ext4', source: '/dev/sda1' }, 0), { option: 'mounts[0].type' });
    expectInvalid(() => parseMount({ destination: '/mnt', type: 'ext4', options: ['errors=remount-ro'] }, 1), {
      option: 'mounts[1].type',
    });
  });

  it('a mount without type nor bind option', () => {
    expectInvalid(() => parseMount({ destination: '/mnt' }, 0), { option: 'mounts[0].type' });
  });

  it('runc options scratchbox does not do: ENOTSUP', () => {
    for (const opt of ['tmpcopyup', 'idmap', 'ridmap'])
      expectInvalid(() => parseMount({ destination: '/t', type: 'tmpfs', options: [opt] }, 3), {
        code: 'ENOTSUP',
        option: 'mounts[3].options[0]',
      });
  });

  it('an option containing a comma', () => {
    expectInvalid(() => parseMount({ destination: '/t', type: 'tmpfs', options: ['mode=755,size=1m'] }, 0), {
      option: 'mounts[0].options[0]',
    });
    expectInvalid(() => parseMount({ destination: '/t', type: 'tmpfs', options: [''] }, 0), { option: 'mounts[0].options[0]' });
  });

  it('relative bind source', () => {
    expectInvalid(() => parseMount({ destination: '/d', type: 'bind', source: 'srv/data' }, 5), {
      option: 'mounts[5].source',
      path: 'srv/data',
    });
    expectInvalid(() => parseMount({ destination: '/d', options: ['rbind'] }, 0), { option: 'mounts[0].source' });
  });

  it('non-array options, non-object entry', () => {
    expectInvalid(() => parseMount({ destination: '/d', type: 'tmpfs', options: 'ro' as unknown as string[] }, 0), {
      option: 'mounts[0].options',
    });
    expectInvalid(() => parseMount(null as unknown as MountSpec, 7), { option: 'mounts[7]' });
  });

  it('the rejection errors have errno set for errno codes', () => {
    const e = expectInvalid(() => parseMount({ destination: 'x', type: 'tmpfs' }, 0), {});
    expect(e.errno).toBe(22);
    const e2 = expectInvalid(() => parseMount({ destination: '/t', type: 'tmpfs', options: ['tmpcopyup'] }, 0), { code: 'ENOTSUP' });
    expect(e2.errno).toBe(95);
  });
});
