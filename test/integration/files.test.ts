/**
 * Host-side access to a live root (readFile, readdir, stat, copyIn, copyOut): every container path
 * resolves inside the root (openat2 RESOLVE_IN_ROOT), whatever symlinks the container planted.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from '../../src-ts/index.js';
import { isRoot, rejection, removeRootfs, ROOT_REASON, scratchRootfs, treeDigest } from './helpers.js';

describe.skipIf(!isRoot)(`host-side access to the live root (${ROOT_REASON})`, () => {
  let rootfs: string;
  let host: string; // a host directory holding a secret, at a path the container does not have
  let c: Container;
  beforeAll(async () => {
    host = mkdtempSync(`${tmpdir()}/sbx-host-`);
    writeFileSync(`${host}/secret`, 'host secret');
    mkdirSync(`${host}/dir`);
    rootfs = scratchRootfs(['probe', 'sleep']);
    mkdirSync(`${rootfs}/data/sub`, { recursive: true });
    writeFileSync(`${rootfs}/data/a.txt`, 'inside a');
    writeFileSync(`${rootfs}/data/sub/b.txt`, 'inside b');
    symlinkSync('a.txt', `${rootfs}/data/rel-link`);
    // Links a container could plant, each aimed at the host's secret or directory.
    symlinkSync(`${host}/secret`, `${rootfs}/abs-secret`);
    symlinkSync(`../../../../../../../..${host}/secret`, `${rootfs}/data/rel-secret`);
    symlinkSync(host, `${rootfs}/abs-dir`);
    symlinkSync(`data/../../../..${host}`, `${rootfs}/dotdot-dir`);
    symlinkSync('/etc/hostname', `${rootfs}/hostname-link`);
    symlinkSync('/data/through-link', `${rootfs}/into-data`);
    c = await Container.create({ rootfs, args: ['/sleep'], hostname: 'files', stdio: 'ignore' });
    await c.start();
  });
  afterAll(async () => {
    await c?.delete();
    removeRootfs(rootfs);
    removeRootfs(host);
  });

  it('readFile, readdir and stat see the container (its /etc, its overlay), not the host', async () => {
    expect(await c.readFile('/etc/hostname', 'utf8')).toBe('files\n');
    expect(await c.readFile('/hostname-link', 'utf8')).toBe('files\n'); // an absolute link, followed inside
    expect(await c.readFile('data/rel-link', 'utf8')).toBe('inside a');
    expect(await c.readdir('/data')).toEqual(['a.txt', 'rel-link', 'rel-secret', 'sub']);
    expect((await c.stat('/data')).isDirectory()).toBe(true);
    expect((await c.stat('/data/rel-link', { follow: false })).isSymbolicLink()).toBe(true);
    expect((await c.stat('/data/rel-link')).size).toBe('inside a'.length);
  });

  it('symlinks to host paths (absolute, relative, through ..) resolve inside the root: ENOENT, never the host file', async () => {
    for (const p of ['/abs-secret', '/data/rel-secret', '/abs-dir/secret', '/dotdot-dir/secret', `/../../..${host}/secret`, `${host}/secret`])
      expect(await rejection(c.readFile(p)), p).toMatchObject({ code: 'ENOENT', stage: 'files', path: p, containerId: c.id });
    for (const p of ['/abs-dir', '/dotdot-dir', `/..${host}`]) expect((await rejection(c.readdir(p))).code).toBe('ENOENT');
    expect((await rejection(c.stat('/abs-secret'))).code).toBe('ENOENT');
    // `..` above the root stays at the root.
    expect(await c.readdir('/../../')).toEqual(await c.readdir('/'));
  });

  it('magic links (/proc/N/root, /proc/N/fd) are refused: ELOOP', async () => {
    expect((await rejection(c.readFile('/proc/1/root/etc/hostname'))).code).toBe('ELOOP');
    expect((await rejection(c.readdir('/proc/1/fd/0'))).code).toBe('ELOOP');
    expect(await c.readFile('/proc/1/cmdline', 'utf8')).toBe('/sleep\0'); // its own /proc is fine
  });

  it('copyOut copies files and trees (links as links) and never follows a link to the host', async () => {
    const out = mkdtempSync(`${tmpdir()}/sbx-out-`);
    try {
      await c.copyOut('/data', `${out}/data`);
      expect(readFileSync(`${out}/data/sub/b.txt`, 'utf8')).toBe('inside b');
      expect(readlinkSync(`${out}/data/rel-link`)).toBe('a.txt');
      await c.copyOut('/etc/hostname', `${out}/hostname`);
      expect(readFileSync(`${out}/hostname`, 'utf8')).toBe('files\n');
      await c.copyOut('/hostname-link', `${out}/via-link`); // the path itself is followed, inside
      expect(readFileSync(`${out}/via-link`, 'utf8')).toBe('files\n');
      for (const p of ['/abs-dir/secret', '/dotdot-dir/secret', '/data/rel-secret/x'])
        expect((await rejection(c.copyOut(p, `${out}/x`))).code).toMatch(/^(ENOENT|ENOTDIR)$/);
      expect(existsSync(`${out}/x`)).toBe(false);
      // The target on the host must not exist: nothing is overwritten there.
      expect((await rejection(c.copyOut('/etc/hostname', `${out}/hostname`))).code).toBe('EEXIST');
    } finally {
      removeRootfs(out);
    }
  });

  it('copyIn writes inside the root only: through a planted link it lands in the container, or fails', async () => {
    const before = treeDigest(host);
    const src = mkdtempSync(`${tmpdir()}/sbx-src-`);
    try {
      writeFileSync(`${src}/f`, 'from host');
      mkdirSync(`${src}/tree/deep`, { recursive: true });
      writeFileSync(`${src}/tree/deep/g`, 'deep');
      symlinkSync('deep/g', `${src}/tree/link`);
      symlinkSync(`${src}/f`, `${src}/f-link`);
      await c.copyIn(`${src}/f`, '/f');
      expect(await c.readFile('/f', 'utf8')).toBe('from host');
      await c.copyIn(`${src}/f-link`, '/f2'); // the source itself is followed
      expect((await c.stat('/f2', { follow: false })).isFile()).toBe(true);
      await c.copyIn(`${src}/tree`, '/data/tree');
      expect(await c.readFile('/data/tree/link', 'utf8')).toBe('deep');
      expect(readdirSync(`${rootfs}/data`)).not.toContain('tree'); // the overlay's upper layer, not the rootfs
      for (const p of ['/abs-dir/new', '/dotdot-dir/new', `/../..${host}/new`]) expect((await rejection(c.copyIn(`${src}/f`, p))).code).toBe('ENOENT');
      // A file link aimed at the host path: followed inside the root, where that path's directory
      // does not exist; one aimed at a path inside: written there.
      expect((await rejection(c.copyIn(`${src}/f`, '/abs-secret'))).code).toBe('ENOENT');
      expect(readFileSync(`${host}/secret`, 'utf8')).toBe('host secret');
      await c.copyIn(`${src}/f`, '/into-data');
      expect(await c.readFile('/data/through-link', 'utf8')).toBe('from host');
      expect(treeDigest(host)).toBe(before);
      expect((await rejection(c.copyIn(`${src}/f`, '/'))).code).toBe('EINVAL');
      expect((await rejection(c.copyIn(`${src}/missing`, '/m'))).code).toBe('ENOENT');
    } finally {
      removeRootfs(src);
    }
  });

  it('on a stopped container each is ERR_INVALID_STATE; a bad path is EINVAL before anything is opened', async () => {
    const s = await Container.create({ rootfs, args: ['/probe', 'exit', '0'], stdio: 'ignore' });
    expect(await s.readFile('/etc/hostname', 'utf8')).toBe(`${s.id.slice(0, 12)}\n`); // created: the root is there already
    expect((await rejection(s.readFile(''))).code).toBe('EINVAL');
    await s.start();
    await s.wait();
    for (const p of [s.readFile('/probe'), s.readdir('/'), s.stat('/'), s.copyIn(rootfs, '/x'), s.copyOut('/probe', '/tmp/never')])
      expect(await rejection(p)).toMatchObject({ code: 'ERR_INVALID_STATE', stage: 'files' });
    expect(existsSync('/tmp/never')).toBe(false);
    await s.delete();
  });
});
