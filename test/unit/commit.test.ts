/**
 * The pure parts of commit (src-ts/image/commit.ts), without root: which entries of an upper layer
 * are the runtime's own, and the layer entries made from a plain tree. Whiteouts and opaque
 * directories need root to exist at all: test/integration/commit-suite.ts covers them.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { runtimeEntries, treeEntries } from '../../src-ts/image/commit.js';
import { buildPlan } from '../../src-ts/plan/plan.js';
import { buildSpec } from '../../src-ts/spec/spec.js';

const spec = buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep'], hostname: 'box', mounts: [{ destination: '/data', type: 'tmpfs' }] }, () => 'x');
const plan = buildPlan(spec, { cgroup: 'none', resolvConf: 'nameserver 1.1.1.1\n', mountMode: 'base' }, { bindSourceIsFile: [false] });

describe('runtimeEntries: what the plan writes into the upper layer before the overlay exists', () => {
  it('the /etc files with their content, the mtab link and the mount points', () => {
    const r = runtimeEntries(plan.ops);
    expect([...r.keys()].sort()).toEqual(['data', 'etc', 'etc/hostname', 'etc/hosts', 'etc/mtab', 'etc/resolv.conf']);
    expect(r.get('etc/hostname')).toEqual({ type: 'file', content: 'box\n', mode: 0o644 });
    expect(r.get('etc/mtab')).toEqual({ type: 'symlink', target: '/proc/mounts' });
    expect(r.get('data')).toEqual({ type: 'dir' });
  });
});

describe('treeEntries', () => {
  const dir = mkdtempSync(`${tmpdir()}/sbx-commit-unit-`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(`${dir}/etc`);
  mkdirSync(`${dir}/data`);
  writeFileSync(`${dir}/etc/hostname`, 'box\n', { mode: 0o644 });
  writeFileSync(`${dir}/etc/hosts`, 'changed by the container\n', { mode: 0o644 });
  symlinkSync('/proc/mounts', `${dir}/etc/mtab`);
  writeFileSync(`${dir}/new`, 'n');
  const names = (es: Awaited<ReturnType<typeof treeEntries>>) => es.map((e) => `${e.header.type} ${e.header.name}`);

  it("an upper layer: the runtime's unchanged entries are left out, what the container changed stays", async () => {
    const es = await treeEntries(dir, true, runtimeEntries(plan.ops));
    expect(names(es)).toEqual(['directory etc', 'file etc/hosts', 'file new']);
    expect(es.find((e) => e.header.name === 'new')?.from).toBe(`${dir}/new`);
  });

  it('user xattrs go into pax records; a binary value is left out rather than written wrong', async () => {
    const { setAttributeSync } = await import('@napi-rs/xattr');
    const sub = mkdtempSync(`${dir}/x-`);
    writeFileSync(`${sub}/f`, 'f');
    try {
      setAttributeSync(`${sub}/f`, 'user.text', Buffer.from('hello'));
      setAttributeSync(`${sub}/f`, 'user.bin', Buffer.from([0xff, 0xfe, 0x00, 0x01]));
    } catch {
      return expect.fail(`the temp file system (${tmpdir()}) refuses user xattrs`);
    }
    const [e] = await treeEntries(sub, false);
    expect(e!.header.pax).toEqual({ 'SCHILY.xattr.user.text': 'hello' });
    rmSync(sub, { recursive: true });
  });

  it('a plain tree (a rootfs): everything, in order, parents first', async () => {
    expect(names(await treeEntries(dir, false, runtimeEntries(plan.ops)))).toEqual([
      'directory data',
      'directory etc',
      'file etc/hostname',
      'file etc/hosts',
      'symlink etc/mtab',
      'file new',
    ]);
  });
});
