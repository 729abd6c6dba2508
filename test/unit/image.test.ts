/** The pure parts of the image code: references, manifests and indexes, platforms, entry paths, builder checks. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ContainerError, ImageStore } from '../../src-ts/index.js';
import { detectCompression, entryComponents } from '../../src-ts/image/layer.js';
import { documentKind, hostPlatform, imageConfig, normalizeLocalRef, parseConfig, parseManifest, parseReference, pickManifest, type Index } from '../../src-ts/image/oci.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;

function thrown(fn: () => unknown): ContainerError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ContainerError);
    return e as ContainerError;
  }
  throw new Error('did not throw');
}

describe('references', () => {
  it('parses registry, repository, tag and digest the docker way', () => {
    expect(parseReference('busybox')).toEqual({ registry: 'docker.io', repository: 'library/busybox', tag: 'latest' });
    expect(parseReference('localhost:5000/library/busybox:1.36')).toEqual({ registry: 'localhost:5000', repository: 'library/busybox', tag: '1.36' });
    expect(parseReference(`127.0.0.1:5000/a/b@${D('a')}`)).toEqual({ registry: '127.0.0.1:5000', repository: 'a/b', digest: D('a') });
    expect(parseReference('quay.io/x/y:v1')).toMatchObject({ registry: 'quay.io', repository: 'x/y', tag: 'v1' });
    expect(parseReference('sleep:latest')).toMatchObject({ registry: 'docker.io', repository: 'library/sleep', tag: 'latest' });
  });
  it('refuses bad references with EINVAL at stage image', () => {
    for (const bad of ['', 'UPPER/case', 'a@sha256:short', 'a:b:c/d', 'x/../y', 'a:' + 't'.repeat(200)])
      expect(thrown(() => parseReference(bad))).toMatchObject({ code: 'EINVAL', stage: 'image', option: 'ref' });
  });
  it('keys local refs with :latest when no tag is given', () => {
    expect(normalizeLocalRef('sleep')).toBe('sleep:latest');
    expect(normalizeLocalRef('localhost:5000/x')).toBe('localhost:5000/x:latest');
    expect(normalizeLocalRef('a/b:1')).toBe('a/b:1');
  });
});

describe('manifests, indexes and configs', () => {
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D('c'), size: 10 },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: D('1'), size: 5 }],
  };
  it('tells manifests from indexes by media type or by shape', () => {
    expect(documentKind(manifest)).toBe('manifest');
    expect(documentKind({ schemaVersion: 2, manifests: [] })).toBe('index');
    expect(documentKind({ schemaVersion: 2, config: {}, layers: [] })).toBe('manifest');
    expect(thrown(() => documentKind({ mediaType: 'application/vnd.docker.distribution.manifest.v1+json' })).code).toBe('ERR_IMAGE_FORMAT');
  });
  it('checks descriptors: digests, sizes, layer media types', () => {
    expect(parseManifest(manifest).layers[0]!.digest).toBe(D('1'));
    expect(thrown(() => parseManifest({ ...manifest, layers: [{ ...manifest.layers[0], digest: 'sha256:../../x' }] })).code).toBe('ERR_IMAGE_FORMAT');
    expect(thrown(() => parseManifest({ ...manifest, layers: [{ ...manifest.layers[0], size: -1 }] })).code).toBe('ERR_IMAGE_FORMAT');
    expect(thrown(() => parseManifest({ ...manifest, layers: [{ ...manifest.layers[0], mediaType: 'application/vnd.oci.image.layer.v1.tar+encrypted' }] })).message).toContain('unsupported layer media type');
    expect(thrown(() => parseManifest({ ...manifest, schemaVersion: 1 })).code).toBe('ERR_IMAGE_FORMAT');
  });
  it('reads the container-facing config, with defaults', () => {
    const doc = parseConfig({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D('1')] }, config: { Entrypoint: ['/a'], Env: null } });
    expect(imageConfig(doc)).toEqual({ entrypoint: ['/a'], cmd: [], env: [], workingDir: '/', user: '', labels: {} });
    expect(thrown(() => parseConfig({ rootfs: { diff_ids: ['nope'] } })).code).toBe('ERR_IMAGE_FORMAT');
    expect(thrown(() => parseConfig({ rootfs: { diff_ids: [] }, config: { Cmd: 'sh' } })).code).toBe('ERR_IMAGE_FORMAT');
  });
  it('picks linux/<host arch> from a multi-platform index, never an attestation', () => {
    const m = (arch: string, d: string, variant?: string, os = 'linux') => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: D(d),
      size: 1,
      platform: { os, architecture: arch, ...(variant ? { variant } : {}) },
    });
    const index: Index = { schemaVersion: 2, manifests: [m('unknown', '0', undefined, 'unknown'), m('arm', '1', 'v6'), m('arm', '2', 'v7'), m('amd64', '3'), m('arm64', '4', 'v8')] };
    expect(pickManifest(index, { os: 'linux', architecture: 'amd64' }).digest).toBe(D('3'));
    expect(pickManifest(index, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest).toBe(D('2'));
    expect(pickManifest(index, hostPlatform('arm64')).digest).toBe(D('4'));
    expect(hostPlatform('x64')).toEqual({ os: 'linux', architecture: 'amd64' });
    const e = thrown(() => pickManifest(index, { os: 'linux', architecture: 'riscv64' }));
    expect(e).toMatchObject({ code: 'ERR_IMAGE_PLATFORM', stage: 'image' });
    expect(e.message).toContain('linux/arm/v7');
    // A single-image layout whose one entry has no platform.
    expect(pickManifest({ schemaVersion: 2, manifests: [{ ...m('amd64', '5'), platform: undefined } as never] }).digest).toBe(D('5'));
  });
});

describe('layer entries', () => {
  it('normalises names and refuses absolute paths and ..', () => {
    expect(entryComponents('./a/b/')).toEqual(['a', 'b']);
    expect(entryComponents('./')).toEqual([]);
    expect(entryComponents('a//b/./c')).toEqual(['a', 'b', 'c']);
    expect(thrown(() => entryComponents('/etc/passwd')).code).toBe('ERR_IMAGE_UNSAFE');
    expect(thrown(() => entryComponents('a/../../b')).code).toBe('ERR_IMAGE_UNSAFE');
    expect(thrown(() => entryComponents('a/..')).code).toBe('ERR_IMAGE_UNSAFE');
  });
  it('detects gzip and zstd by their magic numbers', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(detectCompression(Buffer.from('etc/'))).toBe('none');
  });
});

describe('the scratch builder and the store refuse bad input before writing', () => {
  it('typed errors for copy, env, workdir, entrypoint, and a missing source', async () => {
    const dir = mkdtempSync(`${tmpdir()}/sbx-unit-store-`);
    try {
      const store = await ImageStore.open(dir);
      const b = () => store.scratch();
      expect(thrown(() => b().copy('rel/path', '/x'))).toMatchObject({ code: 'EINVAL', stage: 'image', option: 'copy.src' });
      expect(thrown(() => b().copy('/bin/true', 'x'))).toMatchObject({ option: 'copy.dest' });
      expect(thrown(() => b().copy('/bin/true', '/a/../../x'))).toMatchObject({ option: 'copy.dest' });
      expect(thrown(() => b().copy('/bin/true', '/x', { mode: 0o17777 }))).toMatchObject({ option: 'copy.mode' });
      expect(thrown(() => b().env(['NOEQUALS']))).toMatchObject({ option: 'env' });
      expect(thrown(() => b().workdir('rel'))).toMatchObject({ option: 'workdir' });
      expect(thrown(() => b().entrypoint('sh' as unknown as string[]))).toMatchObject({ option: 'entrypoint' });
      const e = await b().copy(`${dir}/missing`, '/x').build('x:1').catch((err: unknown) => err);
      expect(e).toMatchObject({ code: 'ENOENT', stage: 'image', path: `${dir}/missing` });
      expect(await store.list()).toEqual([]);
      await expect(ImageStore.open(dir, { maxLayerSize: -1 })).rejects.toMatchObject({ code: 'EINVAL', option: 'maxLayerSize' });
      await expect(store.resolve('nothing:here')).rejects.toMatchObject({ code: 'ENOENT', stage: 'image' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('refs', () => {
  it("a short name finds a pulled image's canonical ref", async () => {
    const dir = mkdtempSync(`${tmpdir()}/sbx-unit-refs-`);
    try {
      const store = await ImageStore.open(dir);
      const img = await store.scratch().env({ A: 'b' }).build('docker.io/library/busybox:latest');
      for (const r of ['busybox', 'busybox:latest', 'library/busybox', 'docker.io/library/busybox:latest']) expect((await store.get(r)).digest).toBe(img.digest);
      await store.remove('busybox');
      expect(await store.list()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
