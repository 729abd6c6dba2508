/**
 * Import of archives the tests build themselves, in every format and compression, checked against
 * the exact unpacked trees; the layers stacked with overlayfs (test-only) and run; hostile archives.
 * As root: overlay whiteouts are 0:0 devices and opaque directories a trusted.* xattr.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, ImageStore, type ImageProgress } from '../../src-ts/index.js';
import { buildDir, isRoot, rejection, ROOT_REASON } from './helpers.js';
import {
  dockerSaveLegacy,
  dockerSaveOci,
  layer,
  listing,
  MTIME,
  ociLayout,
  sha,
  writeArchive,
  writeLayoutDir,
  type Compression,
  type Layer,
  type TarEntry,
} from './image-fixtures.js';

const h = (s: string | Buffer) => `${createHash('sha256').update(s).digest('hex').slice(0, 12)} ${Buffer.byteLength(s)}`;
const PASSWD = 'root:x:0:0::/:/bin/sh\n';

function baseEntries(probe: Buffer): TarEntry[] {
  return [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/probe', content: probe, mode: 0o755 },
    { name: './etc/', type: 'directory' },
    { name: 'etc/passwd', content: PASSWD },
    { name: 'etc/hard', type: 'link', linkname: 'etc/passwd' },
    { name: 'etc/link', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'data/', type: 'directory', mode: 0o750 },
    { name: 'data/old1', content: 'old1' },
    { name: 'data/sub/', type: 'directory' },
    { name: 'data/sub/old2', content: 'old2' },
    { name: 'gone', content: 'to be deleted' },
    { name: 'owned', content: 'mine', uid: 1000, gid: 1001, mode: 0o640 },
    { name: 'suid', content: 'x', mode: 0o4755 },
    { name: 'dev/', type: 'directory' },
    { name: 'dev/null-copy', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'fifo', type: 'fifo', mode: 0o600 },
    { name: 'xa', content: 'with xattr', pax: { 'SCHILY.xattr.user.test': 'hello' } },
    { name: 'implicit/parent/file', content: 'no dir entries before me' },
  ];
}

const TOP: TarEntry[] = [
  { name: '.wh.gone', content: '' },
  { name: 'data/', type: 'directory', mode: 0o750 },
  { name: 'data/.wh..wh..opq', content: '' },
  { name: 'data/new', content: 'new' },
  { name: 'etc/', type: 'directory' },
  { name: 'etc/.wh.link', content: '' },
];

function expectedBase(probe: Buffer): string[] {
  const t = ` t${MTIME}`;
  return [
    'd 0755 0:0 bin',
    `f 0755 0:0 bin/probe ${h(probe)}${t}`,
    'd 0750 0:0 data',
    `f 0644 0:0 data/old1 ${h('old1')}${t}`,
    'd 0755 0:0 data/sub',
    `f 0644 0:0 data/sub/old2 ${h('old2')}${t}`,
    'd 0755 0:0 dev',
    `c 0666 0:0 dev/null-copy 1:3${t}`,
    'd 0755 0:0 etc',
    `f 0644 0:0 etc/hard ${h(PASSWD)}${t}`,
    `l 0777 0:0 etc/link -> /etc/passwd`,
    `f 0644 0:0 etc/passwd ${h(PASSWD)} =etc/hard${t}`,
    `p 0600 0:0 fifo${t}`,
    `f 0644 0:0 gone ${h('to be deleted')}${t}`,
    'd 0755 0:0 implicit',
    'd 0755 0:0 implicit/parent',
    `f 0644 0:0 implicit/parent/file ${h('no dir entries before me')}${t}`,
    `f 0640 1000:1001 owned ${h('mine')}${t}`,
    `f 4755 0:0 suid ${h('x')}${t}`,
    `f 0644 0:0 xa ${h('with xattr')}${t} [user.test=hello]`,
  ];
}

const EXPECTED_TOP = [
  'd 0750 0:0 data [trusted.overlay.opaque=y]',
  `f 0644 0:0 data/new ${h('new')} t${MTIME}`,
  'd 0755 0:0 etc',
  `c 0000 0:0 etc/link 0:0 t${MTIME}`,
  `c 0000 0:0 gone 0:0 t${MTIME}`,
];

describe.skipIf(!isRoot)(`image import (${ROOT_REASON}; overlay whiteouts and trusted.* xattrs need it)`, () => {
  let work: string;
  let probe: Buffer;
  const layers: Record<Compression, Layer[]> = {} as Record<Compression, Layer[]>;
  beforeAll(async () => {
    work = mkdtempSync(`${tmpdir()}/sbx-img-`);
    probe = readFileSync(`${buildDir}probe`);
    for (const c of ['none', 'gzip', 'zstd'] as const) layers[c] = [await layer(baseEntries(probe), c), await layer(TOP, c)];
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  async function freshStore(name: string, opts = {}) {
    return ImageStore.open(`${work}/${name}`, opts);
  }

  function checkLayers(layerDirs: string[]) {
    expect(layerDirs).toHaveLength(2);
    expect(listing(layerDirs[0]!)).toEqual(expectedBase(probe));
    expect(listing(layerDirs[1]!)).toEqual(EXPECTED_TOP);
  }

  const formats: [string, Compression, (dir: string) => Promise<string>][] = [
    ['docker save, legacy layout (uncompressed layers)', 'none', async (d) => {
      await writeArchive(`${d}.tar`, dockerSaveLegacy(layers.none, ['test/base:1']).files);
      return `${d}.tar`;
    }],
    ['docker save, OCI layout inside (gzip layers)', 'gzip', async (d) => {
      await writeArchive(`${d}.tar`, dockerSaveOci(layers.gzip, ['test/base:1']).files);
      return `${d}.tar`;
    }],
    ['OCI archive with a multi-platform index (zstd layers)', 'zstd', async (d) => {
      await writeArchive(`${d}.tar`, ociLayout(layers.zstd, { refName: 'test/base:1', platforms: ['linux/arm64', 'linux/amd64', 'linux/s390x'] }).files);
      return `${d}.tar`;
    }],
    ['OCI layout directory (gzip layers)', 'gzip', async (d) => {
      writeLayoutDir(d, ociLayout(layers.gzip, { refName: 'test/base:1' }).files);
      return d;
    }],
    ['gzip-compressed docker save archive', 'none', async (d) => {
      await writeArchive(`${d}.tar`, dockerSaveLegacy(layers.none, ['test/base:1']).files);
      writeFileSync(`${d}.tar.gz`, gzipSync(readFileSync(`${d}.tar`)));
      return `${d}.tar.gz`;
    }],
  ];

  for (const [i, [title, compression, make]] of formats.entries()) {
    it(`imports a ${title}: exact trees, whiteouts, an opaque directory, a hardlink, a device node`, async () => {
      const store = await freshStore(`fmt${i}`);
      const src = await make(`${work}/src${i}`);
      const events: ImageProgress[] = [];
      const img = await store.import(src, { onProgress: (e) => events.push(e) });
      expect(img.ref).toBe('test/base:1');
      expect(img.config).toEqual({ entrypoint: ['/probe'], cmd: ['report'], env: ['PATH=/bin'], workingDir: '/', user: '', labels: {} });
      expect(img.layers.map((l) => l.diffId)).toEqual(layers[compression].map((l) => sha(l.tar)));
      expect(img.layers.map((l) => l.digest)).toEqual(layers[compression].map((l) => sha(l.blob)));
      const r = await store.resolve('test/base:1');
      expect(r.digest).toBe(img.digest);
      checkLayers(r.layers);
      // Progress: each layer starts, reports bytes, and ends, in both phases; then done.
      for (const phase of ['fetch', 'unpack'] as const)
        for (const index of [0, 1]) {
          expect(events.some((e) => e.type === 'layer' && e.phase === phase && e.index === index && e.count === 2)).toBe(true);
          expect(events.some((e) => e.type === 'layer-done' && e.phase === phase && e.index === index)).toBe(true);
        }
      const unpacked = events.filter((e) => e.type === 'bytes' && e.phase === 'unpack' && e.index === 0).at(-1);
      expect(unpacked && 'bytes' in unpacked ? unpacked.bytes : 0).toBe(layers[compression][0]!.blob.length);
      expect(events.at(-1)).toEqual({ type: 'done', digest: img.digest, ref: 'test/base:1', layers: 2 });
      expect(readdirSync(`${store.dir}/tmp`)).toEqual([]);
    });
  }

  it('the layers stacked as overlay lower layers give the merged tree, and a container runs on it', async () => {
    const store = await freshStore('overlay');
    await writeArchive(`${work}/ov.tar`, dockerSaveOci(layers.gzip, ['test/ov:1']).files);
    const r = await store.resolve(await store.import(`${work}/ov.tar`));
    // Test-only assembly: the lead's Container.create({ image }) mounts the layers itself.
    const merged = `${work}/merged`;
    mkdirSync(merged);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...r.layers].reverse().join(':')}`, merged]);
    try {
      const seen = listing(merged).map((l) => l.split(' ')[3]);
      expect(seen).not.toContain('gone');
      expect(seen).not.toContain('etc/link');
      expect(seen.filter((p) => p!.startsWith('data/'))).toEqual(['data/new']);
      expect(seen).toContain('etc/hard');
      const out = await Container.run({ rootfs: merged, args: ['/bin/probe', 'report'] });
      const report = JSON.parse(out.stdout) as { rootEntries: string[] };
      expect(report.rootEntries).toEqual(expect.arrayContaining(['bin', 'data', 'etc', 'owned', 'xa']));
      expect(report.rootEntries).not.toContain('gone');
    } finally {
      execFileSync('umount', [merged]);
    }
  });

  it('a second import unpacks nothing; images share layers; remove and gc free only what no ref uses', async () => {
    const store = await freshStore('share');
    await writeArchive(`${work}/a.tar`, dockerSaveOci(layers.gzip, ['test/a:1']).files);
    // Another image with the same base layer and a different top.
    const other = await layer([{ name: 'other', content: 'other' }], 'gzip');
    await writeArchive(`${work}/b.tar`, dockerSaveOci([layers.gzip[0]!, other], ['test/b:1']).files);
    await store.import(`${work}/a.tar`);
    const events: ImageProgress[] = [];
    await store.import(`${work}/a.tar`, { onProgress: (e) => events.push(e) });
    expect(events.filter((e) => e.type === 'layer' && e.phase === 'unpack').every((e) => e.type === 'layer' && e.cached)).toBe(true);
    const b = await store.import(`${work}/b.tar`);
    expect(readdirSync(`${store.dir}/layers`)).toHaveLength(3);
    expect((await store.list()).map((i) => i.ref)).toEqual(['test/a:1', 'test/b:1']);
    expect(await store.gc()).toEqual({ blobs: 0, layers: 0, bytes: 0 });
    await store.remove('test/a:1');
    expect((await rejection(store.remove('test/a:1'))).code).toBe('ENOENT');
    const freed = await store.gc();
    expect(freed.layers).toBe(1); // a's top; the shared base stays for b
    expect(freed.blobs).toBe(3); // a's manifest, config and top layer blob
    checkLayerDirs(await store.resolve('test/b:1'), b.layers.map((l) => l.diffId));
    await store.remove(b.digest); // by digest: every ref to it
    await store.gc();
    expect(readdirSync(`${store.dir}/layers`)).toEqual([]);
    expect(readdirSync(`${store.dir}/blobs/sha256`)).toEqual([]);
  });

  function checkLayerDirs(r: { layers: string[] }, diffIds: string[]) {
    expect(r.layers).toEqual(diffIds.map((d) => expect.stringContaining(d.slice(7))));
    for (const l of r.layers) expect(existsSync(l)).toBe(true);
  }

  it('two store handles (as two processes would) import and gc at once without a torn state', async () => {
    const dir = `${work}/concurrent`;
    const [s1, s2] = [await ImageStore.open(dir), await ImageStore.open(dir)];
    await writeArchive(`${work}/c1.tar`, dockerSaveOci(layers.zstd, ['test/c:1']).files);
    await writeArchive(`${work}/c2.tar`, dockerSaveLegacy(layers.none, ['test/c:2']).files);
    const [a, b] = await Promise.all([s1.import(`${work}/c1.tar`), s2.import(`${work}/c2.tar`), s1.gc(), s2.gc()]);
    expect(a.ref).toBe('test/c:1');
    expect(b.ref).toBe('test/c:2');
    expect((await s1.list()).map((i) => i.ref)).toEqual(['test/c:1', 'test/c:2']);
    checkLayers((await s2.resolve('test/c:1')).layers);
    checkLayers((await s1.resolve('test/c:2')).layers);
  });

  it('leftovers of a crash mid-import are never used, and gc sweeps them', async () => {
    const store = await freshStore('crash');
    // What a process killed mid-import leaves: a half-unpacked layer and a half-written blob, under tmp/.
    const diffId = sha(layers.none[0]!.tar);
    mkdirSync(`${store.dir}/tmp/layer-1234-abcdef/bin`, { recursive: true });
    writeFileSync(`${store.dir}/tmp/1234-abcdef`, layers.none[0]!.tar.subarray(0, 1000));
    await writeArchive(`${work}/crash.tar`, dockerSaveLegacy(layers.none, ['test/crash:1']).files);
    const img = await store.import(`${work}/crash.tar`);
    expect(img.layers[0]!.diffId).toBe(diffId);
    checkLayers((await store.resolve(img)).layers);
    await store.gc();
    expect(readdirSync(`${store.dir}/tmp`)).toEqual([]);
    checkLayers((await store.resolve('test/crash:1')).layers);
  });

  describe('hostile archives are refused with a typed error, and nothing is written outside the store', () => {
    let outside: string;
    beforeAll(() => {
      outside = mkdtempSync(`${tmpdir()}/sbx-outside-`);
    });
    afterAll(() => rmSync(outside, { recursive: true, force: true }));

    async function refuse(name: string, layerEntries: TarEntry[] | Layer, code: string, opts: { maxLayerSize?: number } = {}) {
      const store = await freshStore(`hostile-${name}`, opts);
      const l = Array.isArray(layerEntries) ? await layer(layerEntries) : layerEntries;
      await writeArchive(`${work}/${name}.tar`, ociLayout([l]).files);
      const e = await rejection(store.import(`${work}/${name}.tar`));
      expect(e).toMatchObject({ code, stage: 'image' });
      expect(readdirSync(`${store.dir}/layers`)).toEqual([]);
      expect(readdirSync(`${store.dir}/tmp`)).toEqual([]);
      expect(readdirSync(outside)).toEqual([]);
      expect(existsSync(`${work}/evil`)).toBe(false);
      return e;
    }

    it("an entry with '..'", () => refuse('dotdot', [{ name: '../../evil', content: 'x' }], 'ERR_IMAGE_UNSAFE'));
    it('an absolute entry', () => refuse('absolute', [{ name: `${outside}/evil`, content: 'x' }], 'ERR_IMAGE_UNSAFE'));
    it('a symlink out of the root, then an entry written through it', () =>
      refuse('symlink', [{ name: 'esc', type: 'symlink', linkname: outside }, { name: 'esc/pwned', content: 'x' }], 'ERR_IMAGE_UNSAFE'));
    it('a symlink to / and a hardlink through it', () =>
      refuse('link-through', [{ name: 'root', type: 'symlink', linkname: '/' }, { name: 'h', type: 'link', linkname: 'root/etc/passwd' }], 'ERR_IMAGE_UNSAFE'));
    it('a file entry over a symlink to the outside replaces the link, and writes nothing outside', async () => {
      const store = await freshStore('leaf');
      const l = await layer([{ name: 'f', type: 'symlink', linkname: `${outside}/victim` }, { name: 'f', content: 'inside' }]);
      await writeArchive(`${work}/leaf.tar`, ociLayout([l]).files);
      const { layers: dirs } = await store.resolve(await store.import(`${work}/leaf.tar`));
      expect(listing(dirs[0]!)).toEqual([`f 0644 0:0 f ${h('inside')} t${MTIME}`]);
      expect(readdirSync(outside)).toEqual([]);
    });
    it("a hardlink to '../../etc/passwd'", () => refuse('hardlink-up', [{ name: 'h', type: 'link', linkname: '../../etc/passwd' }], 'ERR_IMAGE_UNSAFE'));
    it('a hardlink to an absolute host path', () => refuse('hardlink-abs', [{ name: 'h', type: 'link', linkname: '/etc/passwd' }], 'ERR_IMAGE_UNSAFE'));
    it('a layer bomb larger than maxLayerSize', async () => {
      const bomb = await layer([{ name: 'zeros', content: Buffer.alloc(8 << 20) }], 'gzip');
      expect(bomb.blob.length).toBeLessThan(64 << 10);
      const e = await refuse('bomb', bomb, 'ERR_IMAGE_TOO_LARGE', { maxLayerSize: 1 << 20 });
      expect(e.message).toContain('maxLayerSize');
    });
    it('a truncated layer tar', async () => {
      const l = await layer([{ name: 'big', content: Buffer.alloc(100_000, 7) }]);
      await refuse('truncated', { ...l, blob: l.tar.subarray(0, 50_000), tar: l.tar.subarray(0, 50_000) }, 'ERR_IMAGE_CORRUPT');
    });
    it('a corrupt gzip layer', async () => {
      const l = await layer([{ name: 'big', content: Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251)) }], 'gzip');
      const blob = Buffer.from(l.blob);
      for (let i = 100; i < 200; i++) blob[i] = blob[i]! ^ 0xff;
      await refuse('gzip', { ...l, blob }, 'ERR_IMAGE_CORRUPT');
    });
    it('a corrupt zstd layer', async () => {
      const l = await layer([{ name: 'big', content: Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251)) }], 'zstd');
      await refuse('zstd', { ...l, blob: l.blob.subarray(0, l.blob.length - 30) }, 'ERR_IMAGE_CORRUPT');
    });
    it("a layer whose bytes do not match the config's diff_id", async () => {
      const l = await layer([{ name: 'a', content: 'a' }]);
      const other = await layer([{ name: 'b', content: 'b' }]);
      await refuse('diffid', { ...l, tar: other.tar }, 'ERR_IMAGE_DIGEST');
    });

    it('a blob whose bytes do not hash to its name', async () => {
      const store = await freshStore('hostile-digest');
      const l = await layer([{ name: 'a', content: 'a' }]);
      const files = ociLayout([l]).files;
      files.set(`blobs/sha256/${sha(l.blob).slice(7)}`, Buffer.concat([l.blob.subarray(0, -1), Buffer.from([1])]));
      await writeArchive(`${work}/digest.tar`, files);
      expect(await rejection(store.import(`${work}/digest.tar`))).toMatchObject({ code: 'ERR_IMAGE_DIGEST', stage: 'image' });
      expect(readdirSync(`${store.dir}/blobs/sha256`)).not.toContain(sha(l.blob).slice(7));
    });

    it('a manifest naming a blob that is not in the archive', async () => {
      const store = await freshStore('hostile-missing');
      const l = await layer([{ name: 'a', content: 'a' }]);
      const files = ociLayout([l]).files;
      files.delete(`blobs/sha256/${sha(l.blob).slice(7)}`);
      await writeArchive(`${work}/missing.tar`, files);
      expect(await rejection(store.import(`${work}/missing.tar`))).toMatchObject({ code: 'ENOENT', stage: 'image', path: sha(l.blob) });
      const legacy = dockerSaveLegacy([l], ['x:1']).files;
      for (const k of legacy.keys()) if (k.endsWith('layer.tar')) legacy.delete(k);
      await writeArchive(`${work}/missing2.tar`, legacy);
      expect(await rejection(store.import(`${work}/missing2.tar`))).toMatchObject({ code: 'ENOENT', stage: 'image' });
    });

    it('a truncated archive, an archive of nothing we know, and a path that is not there', async () => {
      const store = await freshStore('hostile-archive');
      await writeArchive(`${work}/whole.tar`, dockerSaveOci(layers.gzip, ['x:1']).files);
      writeFileSync(`${work}/cut.tar`, readFileSync(`${work}/whole.tar`).subarray(0, 30_000));
      expect(await rejection(store.import(`${work}/cut.tar`))).toMatchObject({ code: 'ERR_IMAGE_CORRUPT', stage: 'image' });
      writeFileSync(`${work}/other.tar`, execFileSync('tar', ['-c', '-C', buildDir, 'probe']));
      expect(await rejection(store.import(`${work}/other.tar`))).toMatchObject({ code: 'ERR_IMAGE_FORMAT', stage: 'image' });
      expect(await rejection(store.import(`${work}/no-such.tar`))).toMatchObject({ code: 'ENOENT', stage: 'image', path: `${work}/no-such.tar` });
      expect(readdirSync(`${store.dir}/layers`)).toEqual([]);
    });
  });
});
