import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildPlan, type HostInfo } from '../../src-ts/plan/plan.js';
import { checkBindSources, checkRootfs, checkSymlinks } from '../../src-ts/spec/check.js';
import { defaultMounts, type MountSpec } from '../../src-ts/spec/mounts.js';
import { buildSpec, type Spec } from '../../src-ts/spec/spec.js';
import { thrown } from './helpers.js';

const HOST: HostInfo = { cgroup: 'hybrid', resolvConf: 'nameserver 1.1.1.1\n', mountMode: 'host' };
const dirs: string[] = [];
let tmp: string; // per test
let root: string; // the rootfs, inside tmp

function newTmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'sbx-check-'));
  dirs.push(d);
  return d;
}

beforeEach(() => {
  tmp = newTmp();
  root = join(tmp, 'rootfs');
  mkdirSync(root);
});
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const specOf = (mounts: readonly MountSpec[] = defaultMounts, rootfs = root): Spec =>
  buildSpec({ rootfs, args: ['/sleep'], mounts }, () => '0123456789abcdef');

/** The whole pre-clone check, as container.ts runs it. */
function checkAll(spec: Spec): void {
  checkRootfs(spec);
  const facts = checkBindSources(spec);
  checkSymlinks(spec, buildPlan(spec, HOST, facts).ops);
}

const put = (rel: string, content = '') => writeFileSync(join(root, rel), content);
const dir = (rel: string) => mkdirSync(join(root, rel), { recursive: true });
const link = (rel: string, target: string) => symlinkSync(target, join(root, rel));

describe('checkRootfs', () => {
  it('accepts an empty directory (a FROM-scratch image may be almost empty)', () => {
    expect(() => checkAll(specOf())).not.toThrow();
  });

  it('missing rootfs: ENOENT', () => {
    const missing = join(tmp, 'nope');
    const e = thrown(() => checkRootfs(specOf(defaultMounts, missing)));
    expect(e).toMatchObject({ code: 'ENOENT', stage: 'validate', option: 'rootfs', path: missing });
  });

  it('rootfs that is a file: ENOTDIR', () => {
    const file = join(tmp, 'file');
    writeFileSync(file, 'x');
    const e = thrown(() => checkRootfs(specOf(defaultMounts, file)));
    expect(e).toMatchObject({ code: 'ENOTDIR', stage: 'validate', option: 'rootfs', path: file });
  });

  it('a rootfs that is a symlink to a directory is followed', () => {
    const l = join(tmp, 'link');
    symlinkSync(root, l);
    expect(() => checkRootfs(specOf(defaultMounts, l))).not.toThrow();
  });
});

describe('checkSymlinks: symlinks in the rootfs that would redirect a mount', () => {
  it("/proc -> '/': ELOOP at /proc", () => {
    link('proc', '/');
    const e = thrown(() => checkAll(specOf()));
    expect(e).toMatchObject({ code: 'ELOOP', errno: 40, stage: 'validate', option: 'rootfs', path: '/proc' });
  });

  it('/dev -> /etc: ELOOP at /dev', () => {
    link('dev', '/etc');
    const e = thrown(() => checkAll(specOf()));
    expect(e).toMatchObject({ code: 'ELOOP', stage: 'validate', path: '/dev' });
  });

  it('/sys -> relative target: ELOOP at /sys', () => {
    dir('real-sys');
    link('sys', 'real-sys');
    expect(thrown(() => checkAll(specOf()))).toMatchObject({ code: 'ELOOP', path: '/sys' });
  });

  it('/etc as a symlink: ELOOP at /etc', () => {
    dir('dev');
    link('etc', '/etc');
    expect(thrown(() => checkAll(specOf()))).toMatchObject({ code: 'ELOOP', stage: 'validate', path: '/etc' });
  });

  it('/etc/hosts, /etc/hostname, /etc/resolv.conf, /etc/mtab as symlinks are allowed (the child replaces them)', () => {
    dir('etc');
    link('etc/hosts', '/etc/hosts');
    link('etc/hostname', '/etc/hostname');
    link('etc/resolv.conf', '../run/resolv.conf');
    link('etc/mtab', '/proc/self/mounts');
    expect(() => checkAll(specOf())).not.toThrow();
  });

  it('symlinks below a mount the plan made first are not walked (/dev/pts, /sys/fs)', () => {
    dir('dev');
    link('dev/pts', '/');
    link('dev/null', '/etc/passwd');
    dir('sys');
    link('sys/fs', '/');
    expect(() => checkAll(specOf())).not.toThrow();
  });

  it('a symlink on the way to a user mount: ELOOP at that component', () => {
    link('opt', '/usr');
    const mounts = [...defaultMounts, { destination: '/opt/data', type: 'tmpfs' }];
    expect(thrown(() => checkAll(specOf(mounts)))).toMatchObject({ code: 'ELOOP', path: '/opt' });
  });

  it('a symlink at a bind target: ELOOP', () => {
    const src = newTmp();
    link('data', '/');
    const mounts = [...defaultMounts, { destination: '/data', type: 'bind', source: src }];
    expect(thrown(() => checkAll(specOf(mounts)))).toMatchObject({ code: 'ELOOP', path: '/data' });
  });
});

describe('checkSymlinks: non-directories where a directory is needed', () => {
  it('/etc as a regular file: ENOTDIR at /etc (files are written under it)', () => {
    dir('dev');
    put('etc', 'not a dir');
    const e = thrown(() => checkAll(specOf()));
    expect(e).toMatchObject({ code: 'ENOTDIR', errno: 20, stage: 'validate', path: '/etc' });
  });

  it('/dev as a regular file, under a user mount at /dev/x: ENOTDIR at /dev', () => {
    put('dev', 'x');
    const mounts = [{ destination: '/dev/x', type: 'tmpfs' }];
    expect(thrown(() => checkAll(specOf(mounts)))).toMatchObject({ code: 'ENOTDIR', stage: 'validate', path: '/dev' });
  });

  // Regression: the last component of a 'mount', non-file 'bind' or 'mkdir' target was accepted
  // when it was a non-directory, so this failed only later, in the child, at stage 'mount'.
  it('/dev as a regular file with the default mounts: ENOTDIR at /dev', () => {
    put('dev', 'x');
    const e = thrown(() => checkAll(specOf()));
    expect(e).toMatchObject({ code: 'ENOTDIR', stage: 'validate', path: '/dev' });
  });
});

describe('checkBindSources', () => {
  it('a bind source that does not exist: ENOENT with option mounts[N].source', () => {
    const missing = join(tmp, 'no-such-source');
    const spec = specOf([...defaultMounts, { destination: '/data', type: 'bind', source: missing }]);
    const e = thrown(() => checkBindSources(spec));
    expect(e).toMatchObject({ code: 'ENOENT', stage: 'validate', option: 'mounts[7].source', path: missing });
  });

  it('bindSourceIsFile: true for a file, false for a directory and for non-bind mounts', () => {
    const src = newTmp();
    writeFileSync(join(src, 'app.conf'), 'x');
    const spec = specOf([
      ...defaultMounts,
      { destination: '/data', type: 'bind', source: src },
      { destination: '/etc/app.conf', type: 'bind', source: join(src, 'app.conf'), options: ['ro'] },
    ]);
    expect(checkBindSources(spec)).toEqual({ bindSourceIsFile: [false, false, false, false, false, false, false, false, true] });
    const ops = buildPlan(spec, HOST, checkBindSources(spec)).ops;
    expect(ops.find((o) => o.kind === 'bind' && o.target === 'etc/app.conf')).toMatchObject({ file: true });
    expect(ops.find((o) => o.kind === 'bind' && o.target === 'data')).toMatchObject({ file: false });
  });

  it('the host cgroup tree is not a bind source of the spec: no check of /sys/fs/cgroup', () => {
    expect(checkBindSources(specOf()).bindSourceIsFile).toEqual(Array(7).fill(false));
  });
});
