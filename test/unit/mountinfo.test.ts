import { describe, expect, it } from 'vitest';
import { parseMountinfo, treeOrder } from '../../src-ts/container/mountinfo.js';

const TEXT = [
  '22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w',
  '23 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  '24 22 0:23 / /dev rw,nosuid,strictatime - tmpfs tmpfs rw,size=65536k,mode=755',
  '25 24 0:24 / /dev/pts rw,nosuid,noexec,relatime master:7 propagate_from:3 - devpts devpts rw,gid=5,mode=620,ptmxmode=666',
  '31 22 8:1 /srv/my\\040data /mnt/with\\040space\\011tab ro,nosuid unbindable - ext4 /dev/sda\\0401 ro,errors=remount-ro',
  '32 22 8:1 /back\\134slash /x rw - ext4 /dev/sda1 ',
  '',
].join('\n');

describe('parseMountinfo', () => {
  const m = parseMountinfo(TEXT);

  it('one entry per non-empty line', () => {
    expect(m).toHaveLength(6);
    expect(m.map((e) => e.id)).toEqual([22, 23, 24, 25, 31, 32]);
  });

  it('the root overlay, with a shared: optional field', () => {
    expect(m[0]).toEqual({
      id: 22,
      parentId: 1,
      device: '0:21',
      root: '/',
      mountPoint: '/',
      options: ['rw', 'relatime'],
      optional: ['shared:1'],
      fstype: 'overlay',
      source: 'overlay',
      superOptions: ['rw', 'lowerdir=/l', 'upperdir=/u', 'workdir=/w'],
    });
  });

  it('no optional fields', () => {
    expect(m[1]).toMatchObject({ parentId: 22, mountPoint: '/proc', optional: [], fstype: 'proc', source: 'proc', superOptions: ['rw'] });
    expect(m[2]).toMatchObject({ mountPoint: '/dev', options: ['rw', 'nosuid', 'strictatime'], superOptions: ['rw', 'size=65536k', 'mode=755'] });
  });

  it('several optional fields', () => {
    expect(m[3]!.optional).toEqual(['master:7', 'propagate_from:3']);
    expect(m[3]!.fstype).toBe('devpts');
  });

  it('octal escapes in root, mount point and source', () => {
    expect(m[4]).toMatchObject({
      device: '8:1',
      root: '/srv/my data',
      mountPoint: '/mnt/with space\ttab',
      options: ['ro', 'nosuid'],
      optional: ['unbindable'],
      fstype: 'ext4',
      source: '/dev/sda 1',
      superOptions: ['ro', 'errors=remount-ro'],
    });
    expect(m[5]!.root).toBe('/back\\slash');
    expect(m[5]!.superOptions).toEqual([]);
  });

  it('rejects a line without the separator', () => {
    expect(() => parseMountinfo('1 2 0:1 / / rw shared:1 overlay overlay rw')).toThrow(/unparsable/);
  });

  it('empty text: no entries', () => {
    expect(parseMountinfo('')).toEqual([]);
  });
});

describe('treeOrder', () => {
  // As a container's mountinfo lists them: the cgroup binds (cloned first) before the root.
  const TABLE = [
    '44 68 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs rw',
    '45 44 0:29 / /sys/fs/cgroup/cpu ro - cgroup cgroup rw,cpu',
    '61 58 0:42 / / rw - overlay none rw',
    '43 61 0:46 / /proc rw - proc proc rw',
    '64 61 0:47 / /dev rw - tmpfs tmpfs rw',
    '65 64 0:48 / /dev/pts rw - devpts devpts rw',
    '68 61 0:50 / /sys ro - sysfs sysfs ro',
  ].join('\n');

  it('puts each mount after the one it sits on, siblings in the given order', () => {
    const order = treeOrder(parseMountinfo(TABLE)).map((m) => m.mountPoint);
    expect(order).toEqual(['/', '/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/sys/fs/cgroup/cpu']);
  });

  it('keeps every entry, also with a parent outside the table or a cycle', () => {
    const cyc = parseMountinfo(['1 2 0:1 / /a rw - tmpfs t rw', '2 1 0:2 / /b rw - tmpfs t rw', '3 9 0:3 / /c rw - tmpfs t rw'].join('\n'));
    expect(treeOrder(cyc).map((m) => m.id).sort()).toEqual([1, 2, 3]);
  });
});
