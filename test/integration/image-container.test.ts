/**
 * Containers from images, against the contract of issue 12: Container.create({ image }) and
 * Container.run({ image }) take the layers from store.resolve() and the entrypoint, cmd, env,
 * working directory and user from the image config; the layers are the overlay's lower layers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, ImageStore, type Image } from '../../src-ts/index.js';
import { buildDir, busyboxRootfs, busyboxSkip, hostMountinfo, isRoot, rejection, removeRootfs, ROOT_REASON, treeDigest } from './helpers.js';
import { dockerSaveOci, layer, sleepSaysHelloAndStops, writeArchive } from './image-fixtures.js';

const create = Container.create;
const run = Container.run;

describe.skipIf(!isRoot)(`containers from images (${ROOT_REASON})`, () => {
  let work: string;
  let store: ImageStore;
  let img: Image;
  beforeAll(async () => {
    work = mkdtempSync(`${tmpdir()}/sbx-imgc-`);
    store = await ImageStore.open(`${work}/store`);
    img = await store.scratch().copy(`${buildDir}sleep`, '/sleep').entrypoint(['/sleep']).cmd(['1000']).build('sleep:latest');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('a ref without a store: the default store ($XDG_CACHE_HOME), kept open between creates, but per directory, and opened again once removed', async () => {
    const saved = process.env.XDG_CACHE_HOME;
    const a = `${work}/xdg-a`, b = `${work}/xdg-b`;
    const build = async () => {
      const s = await ImageStore.open(`${a}/scratchbox`);
      await s.scratch().copy(`${buildDir}probe`, '/probe').cmd(['/probe', 'exit', '7']).build('default-store:latest');
    };
    try {
      process.env.XDG_CACHE_HOME = a;
      await build();
      expect((await run({ image: 'default-store:latest', reject: false })).exitCode).toBe(7);
      expect((await run({ image: 'default-store:latest', reject: false })).exitCode).toBe(7);
      // Another directory: another store, which does not have the image.
      process.env.XDG_CACHE_HOME = b;
      expect(await rejection(create({ image: 'default-store:latest' }))).toMatchObject({ code: 'ENOENT' });
      // The first store removed and made again: found again, not a stale view of the old one.
      process.env.XDG_CACHE_HOME = a;
      rmSync(a, { recursive: true, force: true });
      expect(await rejection(create({ image: 'default-store:latest' }))).toMatchObject({ code: 'ENOENT' });
      await build();
      expect((await run({ image: 'default-store:latest', reject: false })).exitCode).toBe(7);
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
  });

  it('a ref moved to another image between creates of the same options: the next container runs the new one', async () => {
    // The refs file is read again when it changes, the template is keyed by the resolved layers,
    // and a pooled root is for exact plan bytes: none of them may keep the old image.
    const probe = `${buildDir}probe`;
    const first = await store.scratch().copy(probe, '/probe').env({ WHICH: 'first' }).cmd(['/probe', 'report']).build('moving:latest');
    const o = { image: 'moving:latest', store };
    const which = (stdout: string) => (JSON.parse(stdout) as { env: string[] }).env.find((e) => e.startsWith('WHICH='));
    for (let i = 0; i < 3; i++) expect(which((await run(o)).stdout)).toBe('WHICH=first');
    const second = await store.scratch().copy(probe, '/probe').env({ WHICH: 'second' }).cmd(['/probe', 'report']).build('moving:latest');
    expect(second.digest).not.toBe(first.digest);
    expect(which((await run(o)).stdout)).toBe('WHICH=second');
    expect(which((await run(o)).stdout)).toBe('WHICH=second');
  });

  it('Container.create({ image: img, args }) runs the FROM-scratch sleep', async () => {
    const c = await create({ image: img, args: ['/sleep', '5'], hostname: 'scratch', store });
    await sleepSaysHelloAndStops(c, 'scratch');
  });

  it("Container.run({ image: 'ref' }) uses the config's entrypoint, cmd and env", async () => {
    const probe = readFileSync(`${buildDir}probe`);
    const l = await layer([{ name: 'probe', content: probe, mode: 0o755 }]);
    await writeArchive(`${work}/probe.tar`, dockerSaveOci([l], ['probe:latest']).files);
    await store.import(`${work}/probe.tar`);
    const r = await run({ image: 'probe:latest', store });
    const report = JSON.parse(r.stdout) as { argv: string[]; env: string[] };
    expect(report.argv).toEqual(['/probe', 'report']);
    expect(report.env).toContain('PATH=/bin');
  });

  it('a multi-layer image shows the merged tree: whiteouts hide, opaque directories replace', async () => {
    const probe = readFileSync(`${buildDir}probe`);
    const base = await layer([{ name: 'probe', content: probe, mode: 0o755 }, { name: 'gone', content: 'x' }, { name: 'd/', type: 'directory' }, { name: 'd/old', content: 'o' }], 'gzip');
    const top = await layer([{ name: '.wh.gone', content: '' }, { name: 'd/', type: 'directory' }, { name: 'd/.wh..wh..opq', content: '' }, { name: 'd/new', content: 'n' }], 'zstd');
    await writeArchive(`${work}/ml.tar`, dockerSaveOci([base, top], ['ml:1']).files);
    await store.import(`${work}/ml.tar`);
    const r = await run({ image: 'ml:1', store });
    const report = JSON.parse(r.stdout) as { rootEntries: string[] };
    expect(report.rootEntries).not.toContain('gone');
    expect(report.rootEntries).toContain('d');
  });

  it("the article: a container of the scratch image shows /dev, /etc, /proc, /sys and /sleep in its live root", async () => {
    const c = await create({ image: img, stdio: 'ignore' });
    try {
      await c.start();
      expect(readdirSync(`/proc/${c.pid}/root`).sort()).toEqual(['dev', 'etc', 'proc', 'sleep', 'sys']);
    } finally {
      await c.delete();
    }
  });

  it('100 containers of one image alive at once share its layers; the layer directories are unchanged after', async () => {
    const { layers } = await store.resolve(img);
    const before = layers.map(treeDigest);
    const mountsBefore = hostMountinfo();
    const cs = await Promise.all(Array.from({ length: 100 }, () => create({ image: img, stdio: 'ignore' })));
    try {
      await Promise.all(cs.map((c) => c.start()));
      // Each writes into its own upper layer (a file the image's layer must never see).
      for (const c of cs.slice(0, 5)) writeFileSync(`/proc/${c.pid}/root/written-by-${c.id}`, 'x');
      expect(new Set(cs.map((c) => readdirSync(`/proc/${c.pid}/root`).length)).size).toBe(2);
    } finally {
      await Promise.all(cs.map((c) => c.delete()));
    }
    expect(layers.map(treeDigest)).toEqual(before);
    expect(hostMountinfo()).toBe(mountsBefore); // no upper layer or overlay left on the host
  });

  it('the host mount mode (pivot_root, layers by path) runs a multi-layer image too', () => {
    const script = `
      import { Container, ImageStore } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
      const store = await ImageStore.open(${JSON.stringify(`${work}/store`)});
      const r = await Container.run({ image: 'ml:1', store });
      process.stdout.write(r.stdout);`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, SCRATCHBOX_BASE_MNTNS: '0' } }).toString();
    const report = JSON.parse(out) as { rootEntries: string[] };
    expect(report.rootEntries).not.toContain('gone');
    expect(report.rootEntries).toEqual(expect.arrayContaining(['d', 'probe', 'proc', 'etc']));
  });

  it('bad image options are typed errors', async () => {
    const e1 = await rejection(create({ image: img, rootfs: '/srv' }));
    expect([e1.code, e1.option]).toEqual(['EINVAL', 'rootfs']);
    const e2 = await rejection(create({ image: 'no-such:image', store }));
    expect([e2.code, e2.stage]).toEqual(['ENOENT', 'image']);
    const e3 = await rejection(create({ image: 42 as never, store }));
    expect([e3.code, e3.option]).toEqual(['EINVAL', 'image']);
    const e4 = await rejection(create({ image: img, storee: store } as never));
    expect([e4.code, e4.option]).toEqual(['EINVAL', 'storee']);
  });

  it.skipIf(busyboxSkip !== null)(`copy() of a directory tree (subdirectories, symlinks: a busybox rootfs) builds, and its containers run (${busyboxSkip ?? 'busybox-static'})`, async () => {
    // A directory of the tree used to be written without its tar type, and build() never settled.
    const bb = busyboxRootfs();
    try {
      const sh = await store.scratch().copy(bb, '/').entrypoint(['/bin/sh', '-c']).cmd(['echo hello from $0', 'an image']).build('sh:latest');
      expect((await run({ image: sh })).stdout).toBe('hello from an image\n');
      expect((await run({ image: 'sh:latest', store, args: ['/bin/ls', '/bin/sh'] })).stdout).toBe('/bin/sh\n');
    } finally {
      removeRootfs(bb);
    }
  });
});
