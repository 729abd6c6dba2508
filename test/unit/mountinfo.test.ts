import { describe, expect, it } from 'vitest';
import { parseMountinfo } from '../../src-ts/container/mountinfo.js';

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
