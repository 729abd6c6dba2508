/**
 * The article as a test: FROM scratch + one static sleep, built with the store, exported as a
 * `docker save` archive whose only layer holds exactly that one file (read back with GNU tar),
 * and run from its unpacked layer.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, ImageStore, type Image } from '../../src-ts/index.js';
import { buildDir, isRoot, rejection, ROOT_REASON, treeDigest } from './helpers.js';
import { sleepSaysHelloAndStops } from './image-fixtures.js';

const tarOut = (args: string[]) => execFileSync('tar', args, { maxBuffer: 1 << 28 });

describe.skipIf(!isRoot)(`FROM scratch, as in the article (${ROOT_REASON})`, () => {
  let work: string;
  let store: ImageStore;
  let img: Image;
  beforeAll(async () => {
    work = mkdtempSync(`${tmpdir()}/sbx-article-`);
    store = await ImageStore.open(`${work}/store`);
    img = await store
      .scratch()
      .copy(`${buildDir}sleep`, '/sleep')
      .entrypoint(['/sleep'])
      .cmd(['1000'])
      .env({ A: 'b' })
      .workdir('/')
      .user('0:0')
      .build('sleep:latest');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('builds an image with one layer and the config it was given', async () => {
    expect(img.ref).toBe('sleep:latest');
    expect(img.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(img.config).toEqual({ entrypoint: ['/sleep'], cmd: ['1000'], env: ['A=b'], workingDir: '/', user: '0:0', labels: {} });
    expect(img.layers).toHaveLength(1);
    expect((await store.list()).map((i) => [i.ref, i.digest])).toEqual([['sleep:latest', img.digest]]);
    // Tags, and lookups by ref (":latest" implied) and by digest.
    expect((await store.tag('sleep', 'sleep:v1')).digest).toBe(img.digest);
    expect((await store.get(img.digest)).config.entrypoint).toEqual(['/sleep']);
    expect((await store.list()).map((i) => i.ref)).toEqual(['sleep:latest', 'sleep:v1']);
    await store.remove('sleep:v1');
    expect((await rejection(store.tag('nope', 'x:1'))).code).toBe('ENOENT');
  });

  it('exports a docker save archive whose layer tar holds exactly the one file', async () => {
    await img.export(`${work}/sleep.tar`, { format: 'docker-archive' });
    const manifest = JSON.parse(tarOut(['-xOf', `${work}/sleep.tar`, 'manifest.json']).toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    expect(manifest).toHaveLength(1);
    expect(manifest[0]!.RepoTags).toEqual(['sleep:latest']);
    expect(manifest[0]!.Layers).toHaveLength(1);
    const layerTar = tarOut(['-xOf', `${work}/sleep.tar`, manifest[0]!.Layers[0]!]);
    const extracted = `${work}/layer.tar`;
    execFileSync('sh', ['-c', `cat > ${extracted}`], { input: layerTar });
    const lines = tarOut(['-tvf', extracted, '--numeric-owner']).toString().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^-rwxr-xr-x 0/0 +${statSync(`${buildDir}sleep`).size} .* sleep$`));
    expect(tarOut(['-xOf', extracted, 'sleep']).equals(readFileSync(`${buildDir}sleep`))).toBe(true);
    const config = JSON.parse(tarOut(['-xOf', `${work}/sleep.tar`, manifest[0]!.Config]).toString()) as { config: Record<string, unknown>; rootfs: { diff_ids: string[] } };
    expect(config.config).toEqual({ Entrypoint: ['/sleep'], Cmd: ['1000'], Env: ['A=b'], WorkingDir: '/', User: '0:0' });
    expect(config.rootfs.diff_ids).toEqual([img.layers[0]!.diffId]);
  });

  it('every export format imports back to the same image digest', async () => {
    const other = await ImageStore.open(`${work}/other`);
    for (const format of ['docker-archive', 'oci-archive', 'oci-dir'] as const) {
      const out = `${work}/rt-${format}`;
      await img.export(out, { format });
      const back = await other.import(out, { ref: `rt:${format}` });
      expect(back.digest).toBe(img.digest);
      expect((await other.resolve(back)).layers).toHaveLength(1);
    }
    expect((await rejection(img.export(`${work}/rt-oci-archive`, { format: 'oci-archive' }))).code).toBe('EEXIST');
    expect((await rejection(img.export(`${work}/x`, { format: 'zip' as 'oci-dir' }))).code).toBe('EINVAL');
  });

  it('runs from its unpacked layer (the test stands in for the multi-layer overlay) and leaves it unchanged', async () => {
    const { layers, config } = await store.resolve('sleep:latest');
    const before = treeDigest(layers[0]!);
    const c = await Container.create({ rootfs: layers[0]!, args: [...config.entrypoint, ...config.cmd], env: config.env, cwd: config.workingDir, hostname: 'scratch' });
    await sleepSaysHelloAndStops(c, 'scratch');
    expect(treeDigest(layers[0]!)).toBe(before);
  });
});
