/**
 * keep and commit(), in either mount mode: what a container wrote, deleted and replaced (a
 * directory made opaque included) comes back exactly in a container of the committed image.
 * The tree is compared as the containers see it, through /proc/PID/root.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, defaultMounts, ImageStore, type Image } from '../../src-ts/index.js';
import { BUSYBOX, buildDir, busyboxRootfs, busyboxSkip, expectMountMode, hostMountinfo, suiteSkip, type MountMode } from './helpers.js';
import { listing } from './image-fixtures.js';

/** The applets the change script uses, besides busyboxRootfs()'s. */
const APPLETS = ['rm', 'mkdir', 'mv', 'chmod', 'chown', 'ln', 'touch'];

/** A base tree to change: files to delete, to replace, a directory to replace, links. */
export function baseTree(): string {
  const dir = busyboxRootfs();
  for (const a of APPLETS) symlinkSync('busybox', `${dir}/bin/${a}`);
  mkdirSync(`${dir}/d/sub`, { recursive: true });
  writeFileSync(`${dir}/d/old`, 'old');
  writeFileSync(`${dir}/d/sub/deep`, 'deep');
  mkdirSync(`${dir}/keep`);
  writeFileSync(`${dir}/keep/gone`, 'gone');
  writeFileSync(`${dir}/keep/stays`, 'stays');
  writeFileSync(`${dir}/keep/replaced`, 'before');
  writeFileSync(`${dir}/mode`, 'm');
  writeFileSync(`${dir}/top-gone`, 't');
  symlinkSync('keep/stays', `${dir}/link`);
  return dir;
}

/** Writes, deletes, replaces: the overlay records each as new files, whiteouts and an opaque directory. */
export const CHANGES = [
  'echo new > /new',
  'rm /top-gone /keep/gone',
  'echo after > /keep/replaced',
  'rm -r /d && mkdir /d && echo fresh > /d/only', // /d becomes opaque: d/old and d/sub must not come back
  'chmod 0600 /mode && chown 1000:1000 /mode',
  'rm /link && ln -s /new /link',
  'mkdir -p /a/b && echo x > /a/b/c && ln /a/b/c /a/hard',
  'rm /bin/true',
  'echo hi > /etc/motd',
].join(' && ');

/** The tree as a container sees it, but for the runtime's mounts and its own /etc files. */
export function seen(pid: number): string[] {
  const runtime = new Set(['dev', 'proc', 'sys', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'etc/mtab']);
  return listing(`/proc/${pid}/root`, (rel) => runtime.has(rel));
}

/** Starts a container that makes CHANGES (or only sleeps) and stays up; gives its tree. */
async function changed(opts: Parameters<typeof Container.create>[0], script: string): Promise<{ c: Container; tree: string[] }> {
  // CHANGES chowns a file: CAP_CHOWN, which the default capability set lacks.
  const c = await Container.create({ capabilities: { add: ['CHOWN'] }, ...opts, args: ['/bin/sh', '-c', `${script} && echo done && exec sleep 1000`], hostname: 'box' });
  await c.start();
  c.stdout!.setEncoding('utf8');
  let out = '';
  for await (const t of c.stdout!) if ((out += t as string).includes('done')) break;
  expect(out).toContain('done');
  return { c, tree: seen(c.pid) };
}

async function stop(c: Container): Promise<void> {
  c.kill('SIGKILL');
  await c.wait();
}

export function commitSuite(mode: MountMode): void {
  const skip = suiteSkip(mode) ?? busyboxSkip;
  describe.skipIf(skip !== null)(`keep and commit, mount namespace copied from the ${mode}'s (${skip ?? BUSYBOX})`, () => {
    expectMountMode(mode);
    let work: string;
    let rootfs: string;
    let store: ImageStore;
    let base: Image;
    beforeAll(async () => {
      work = mkdtempSync(`${tmpdir()}/sbx-commit-`);
      rootfs = baseTree();
      store = await ImageStore.open(`${work}/store`);
      base = await store.scratch().copy(rootfs, '/').cmd(['/bin/sh']).env({ FROM: 'base' }).build('base:1');
    });
    afterAll(() => {
      rmSync(work, { recursive: true, force: true });
      rmSync(rootfs, { recursive: true, force: true });
    });

    it('a container of the committed image sees exactly the tree the kept container left', async () => {
      const mounts = hostMountinfo();
      const { c, tree } = await changed({ image: base, store, keep: true }, CHANGES);
      await stop(c);
      const img = await c.commit('changed:1', { message: 'the changes' });
      await c.delete();
      expect(hostMountinfo()).toBe(mounts); // nothing of the kept upper layer is mounted on the host
      expect(img.layers).toHaveLength(2);
      expect(img.layers[0]!.diffId).toBe(base.layers[0]!.diffId);
      expect(img.config).toMatchObject({ cmd: ['/bin/sh'], env: base.config.env });
      expect(img.configDoc.history?.at(-1)).toMatchObject({ comment: 'the changes' });

      const again = await changed({ image: 'changed:1', store }, 'true');
      try {
        expect(again.tree).toEqual(tree);
      } finally {
        await again.c.delete();
      }
      // And what that tree is, spelled out.
      const at = (path: string) => tree.filter((l) => l.split(' ')[3] === path);
      expect(at('new')).toEqual([expect.stringMatching(/^f 0644 0:0 new \S+ 4 t\d+$/)]);
      expect([...at('top-gone'), ...at('keep/gone'), ...at('bin/true')]).toEqual([]);
      expect(at('keep/replaced')).toEqual([expect.stringMatching(/^f 0644 0:0 keep\/replaced \S+ 6 /)]);
      expect(tree.filter((l) => /^. \d+ \d+:\d+ d(\/|$)/.test(l.split(' ').slice(0, 4).join(' ')))).toEqual([
        'd 0755 0:0 d',
        expect.stringMatching(/^f 0644 0:0 d\/only /),
      ]);
      expect(at('mode')).toEqual([expect.stringMatching(/^f 0600 1000:1000 mode /)]);
      expect(at('link')).toEqual(['l 0777 0:0 link -> /new']);
      expect(at('a/hard')).toEqual([expect.stringMatching(/^f 0644 0:0 a\/hard \S+ 2 =a\/b\/c t\d+$/)]);
      expect(at('etc/motd')).toHaveLength(1);
    });

    it('the new layer holds the changes only: whiteouts, the opaque marker, no runtime files', async () => {
      const { c } = await changed({ image: base, store, keep: true }, CHANGES);
      await stop(c);
      const img = await c.commit();
      await c.delete();
      const { layers } = await store.resolve(img);
      const top = listing(layers.at(-1)!).map((l) => l.replace(/ t\d+$/, ''));
      expect(top).toContainEqual('c 0000 0:0 top-gone 0:0'); // .wh.top-gone, unpacked as overlayfs reads it
      expect(top).toContainEqual('c 0000 0:0 keep/gone 0:0');
      expect(top).toContainEqual(expect.stringMatching(/^d 0755 0:0 d \[trusted\.overlay\.opaque=y\]$/));
      expect(top.filter((l) => / (proc|sys|dev|etc\/hostname|etc\/hosts|etc\/resolv\.conf|etc\/mtab)( |$)/.test(l))).toEqual([]);
      expect(top.some((l) => / keep\/stays /.test(l))).toBe(false); // unchanged: in the base layer only
      expect(img.ref).toBeUndefined();
    });

    it('a container of a rootfs directory commits to its rootfs and the changes (two layers), with its process as the config', async () => {
      const { c, tree } = await changed({ rootfs, store, keep: true, env: { WHO: 'rootfs' } }, CHANGES);
      await stop(c);
      const img = await c.commit('from-rootfs:1', { config: { cmd: ['/bin/sh', '-c', 'cat /new'] } });
      await c.delete();
      expect(img.layers).toHaveLength(2);
      expect(img.config.cmd).toEqual(['/bin/sh', '-c', 'cat /new']);
      expect(img.config.env).toContain('WHO=rootfs');
      expect(img.config.user).toBe('0:0');
      const r = await Container.run({ image: img, store });
      expect(r.stdout).toBe('new\n');
      const again = await changed({ image: img, store }, 'true');
      try {
        expect(again.tree).toEqual(tree);
      } finally {
        await again.c.delete();
      }
    });

    it('a process with CAP_SYS_ADMIN that detaches its root finds its own kept directory below it, nothing else of the store', async () => {
      const id = `peel-${mode}`;
      const r = await Container.run({ rootfs, store, keep: true, id, args: ['/probe', 'peel'], seccomp: 'unconfined', capabilities: { add: ['SYS_ADMIN', 'SYS_CHROOT'] }, mounts: [...defaultMounts, { destination: '/probe', type: 'bind', source: `${buildDir}probe`, options: ['bind', 'ro'] }] });
      rmSync(`${store.dir}/containers/${id}`, { recursive: true });
      const peel = JSON.parse(r.stdout) as { levels: { magic: number; entries: string[] }[] };
      // Base mode: the overlay, then the clone of <store>/containers/<id> (where the tmpfs would
      // be): its root is that directory, so ".." there leads to the mount below, not to the
      // store's blobs, layers or other containers. Host mode: the clone is under the detached
      // root, and what is left is the kernel's initial rootfs (as without keep: safety-suite.ts).
      if (mode === 'base') expect(peel.levels[1]!.entries).toEqual(['upper', 'work']);
      expect(peel.levels.length).toBeGreaterThan(1);
      for (const l of peel.levels) for (const name of ['blobs', 'layers', 'containers', 'refs.json']) expect(l.entries).not.toContain(name);
    });

    it('the kept directory outlives delete(); without keep nothing is kept and commit is refused', async () => {
      const c = await Container.create({ image: base, store, keep: true, args: ['/bin/sh', '-c', 'echo kept > /kept'], stdio: 'ignore' });
      await c.start();
      await c.wait();
      await c.delete();
      expect(c.keptDir).toBe(`${store.dir}/containers/${c.id}`);
      expect(readdirSync(`${c.keptDir}/upper`)).toContain('kept');
      rmSync(c.keptDir!, { recursive: true });

      const plain = await Container.create({ image: base, store, args: ['/bin/true'], stdio: 'ignore' });
      try {
        expect(plain.keptDir).toBeNull();
        await expect(plain.commit()).rejects.toMatchObject({ code: 'ERR_INVALID_STATE', message: expect.stringMatching(/keep: true/) });
      } finally {
        await plain.delete();
      }
      expect(existsSync(`${store.dir}/containers/${plain.id}`)).toBe(false);
    });
  });
}
