// keep and commit() with containers in copies of the base mount namespace (the default here),
// and what is refused.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, ImageStore, type Image } from '../../src-ts/index.js';
import { busyboxRootfs, busyboxSkip, BUSYBOX, rejection } from './helpers.js';
import { commitSuite } from './commit-suite.js';

commitSuite('base');

describe.skipIf(busyboxSkip !== null)(`keep and commit: bad input and leftovers (${busyboxSkip ?? BUSYBOX})`, () => {
  let work: string;
  let rootfs: string;
  let store: ImageStore;
  let base: Image;
  beforeAll(async () => {
    work = mkdtempSync(`${tmpdir()}/sbx-commit-bad-`);
    rootfs = busyboxRootfs();
    store = await ImageStore.open(`${work}/store`);
    base = await store.scratch().copy(rootfs, '/').build('base:1');
  });
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
    rmSync(rootfs, { recursive: true, force: true });
  });
  const kept = () => (existsSync(`${store.dir}/containers`) ? readdirSync(`${store.dir}/containers`) : []);

  it('keep must be a boolean; store must be an ImageStore (before anything is made)', async () => {
    const e = await rejection(Container.create({ image: base, store, keep: 'yes' as unknown as boolean, args: ['/bin/true'] }));
    expect(e).toMatchObject({ code: 'EINVAL', stage: 'validate', option: 'keep' });
    const s = await rejection(Container.create({ rootfs, store: {} as ImageStore, keep: true, args: ['/bin/true'] }));
    expect(s).toMatchObject({ code: 'EINVAL', option: 'store' });
    expect(kept()).toEqual([]);
  });

  it('a failed create() leaves no kept directory behind', async () => {
    const e = await rejection(Container.create({ image: base, store, keep: true, args: ['/bin/no-such-binary'] }));
    expect(e).toMatchObject({ code: 'ENOENT', stage: 'exec' });
    expect(kept()).toEqual([]);
  });

  it("an id whose kept directory is there already is EEXIST, and that directory is left as it was", async () => {
    mkdirSync(`${store.dir}/containers/taken/upper`, { recursive: true });
    const e = await rejection(Container.create({ image: base, store, keep: true, id: 'taken', args: ['/bin/true'] }));
    expect(e).toMatchObject({ code: 'EEXIST', option: 'keep', path: `${store.dir}/containers/taken` });
    expect(readdirSync(`${store.dir}/containers/taken`)).toEqual(['upper']);
    rmSync(`${store.dir}/containers/taken`, { recursive: true });
  });

  it('commit() of a running container is refused; bad refs and config are EINVAL before anything is written', async () => {
    const c = await Container.create({ image: base, store, keep: true, args: ['/bin/sleep', '100'], stdio: 'ignore' });
    try {
      await c.start();
      expect(await rejection(c.commit())).toMatchObject({ code: 'ERR_INVALID_STATE', message: expect.stringMatching(/running/) });
      c.kill('SIGKILL');
      await c.wait();
      const images = (await store.list()).length;
      expect(await rejection(c.commit('Bad Ref'))).toMatchObject({ code: 'EINVAL', option: 'ref' });
      expect(await rejection(c.commit('x:1', { config: { cmd: 'sh' as unknown as string[] } }))).toMatchObject({ code: 'EINVAL', option: 'config.cmd' });
      expect(await rejection(c.commit('x:1', { config: { entrypont: [] } as never }))).toMatchObject({ code: 'EINVAL', option: 'config.entrypont' });
      expect(await rejection(c.commit('x:1', { message: 7 as unknown as string }))).toMatchObject({ code: 'EINVAL', option: 'message' });
      expect((await store.list()).length).toBe(images);
      // Once its directory is gone there is nothing to commit.
      rmSync(c.keptDir!, { recursive: true });
      expect(await rejection(c.commit('x:1'))).toMatchObject({ code: 'ENOENT' });
    } finally {
      await c.delete();
    }
  });

  it('a container that never started commits to its image plus nothing of its own', async () => {
    const c = await Container.create({ image: base, store, keep: true, args: ['/bin/true'], stdio: 'ignore' });
    try {
      const img = await c.commit('unchanged:1', { config: { labels: { a: 'b' } } });
      expect(img.config.labels).toEqual({ a: 'b' });
      const { layers } = await store.resolve(img);
      expect(readdirSync(layers.at(-1)!)).toEqual([]); // the runtime's own files are not the container's changes
    } finally {
      await c.delete();
      rmSync(c.keptDir!, { recursive: true });
    }
  });
});