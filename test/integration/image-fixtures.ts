/**
 * Image archives made by the tests themselves: tars of layer entries, compressed with zlib or the
 * zstd command, assembled into docker-save (legacy and OCI) archives, OCI archives and layouts.
 * And a listing of an unpacked tree that says everything a layer must preserve.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { getAttributeSync, listAttributesSync } from '@napi-rs/xattr';
import { expect } from 'vitest';
import type { Container } from '../../src-ts/index.js';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  mtime?: number;
  pax?: Record<string, string>;
}

export const MTIME = 1_700_000_000;

export async function tarOf(entries: readonly TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((res) => p.on('end', () => res()));
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = type === 'file' ? Buffer.from(e.content ?? '') : undefined;
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date((e.mtime ?? MTIME) * 1000),
      ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
      ...(e.devmajor === undefined ? {} : { devmajor: e.devmajor, devminor: e.devminor ?? 0 }),
      ...(e.pax ? { pax: e.pax } : {}),
      ...(content ? { size: content.length } : {}),
    };
    await new Promise<void>((res, rej) => (content ? p.entry(header, content, (err) => (err ? rej(err) : res())) : p.entry(header, (err) => (err ? rej(err) : res()))));
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

export type Compression = 'none' | 'gzip' | 'zstd';

export function compress(data: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return gzipSync(data);
  if (c === 'zstd') return execFileSync('zstd', ['-q', '-c', '-3'], { input: data, maxBuffer: 1 << 30 });
  return data;
}

export const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hex = (d: string) => d.slice(7);

const LAYER_MEDIA: Record<Compression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

export interface Layer {
  tar: Buffer;
  blob: Buffer;
  compression: Compression;
}

export async function layer(entries: readonly TarEntry[], compression: Compression = 'none'): Promise<Layer> {
  const tar = await tarOf(entries);
  return { tar, blob: compress(tar, compression), compression };
}

export function configOf(layers: readonly Layer[], config: Record<string, unknown> = {}, architecture = 'amd64'): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture,
      os: 'linux',
      config: { Entrypoint: ['/probe'], Cmd: ['report'], Env: ['PATH=/bin'], WorkingDir: '/', ...config },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha(l.tar)) },
    }),
  );
}

/** Files of an archive or layout, by path. */
export type Files = Map<string, Buffer>;

export interface Built {
  files: Files;
  manifestDigest: string;
  configDigest: string;
}

/** An OCI layout (oci-layout, index.json, blobs) for one image; `platforms` makes the index multi-platform. */
export function ociLayout(layers: readonly Layer[], opts: { config?: Record<string, unknown>; refName?: string; platforms?: string[] } = {}): Built {
  const files: Files = new Map();
  const blob = (b: Buffer) => {
    files.set(`blobs/sha256/${hex(sha(b))}`, b);
    return sha(b);
  };
  const manifestFor = (arch: string) => {
    const config = configOf(layers, opts.config, arch);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blob(config), size: config.length },
        layers: layers.map((l) => ({ mediaType: LAYER_MEDIA[l.compression], digest: blob(l.blob), size: l.blob.length })),
      }),
    );
    return { manifest, digest: blob(manifest), configDigest: sha(config) };
  };
  const annotations = opts.refName ? { annotations: { 'org.opencontainers.image.ref.name': opts.refName } } : {};
  let top: { digest: string; configDigest: string };
  let index: unknown;
  if (opts.platforms) {
    const subs = opts.platforms.map((p) => {
      const [os, architecture] = p.split('/') as [string, string];
      const m = manifestFor(architecture);
      return { m, desc: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.manifest.length, platform: { os, architecture } } };
    });
    const hostArch = process.arch === 'x64' ? 'amd64' : process.arch;
    top = subs.find((s) => s.desc.platform.architecture === hostArch)?.m ?? subs[0]!.m;
    const inner = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: subs.map((s) => s.desc) }));
    index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: blob(inner), size: inner.length, ...annotations }] };
  } else {
    const m = manifestFor('amd64');
    top = m;
    index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.manifest.length, ...annotations }] };
  }
  files.set('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  files.set('index.json', Buffer.from(JSON.stringify(index)));
  return { files, manifestDigest: top.digest, configDigest: top.configDigest };
}

/** docker save before docker 25: manifest.json, <config hex>.json, <id>/layer.tar (uncompressed). */
export function dockerSaveLegacy(layers: readonly Layer[], repoTags: string[], config?: Record<string, unknown>): Built {
  const files: Files = new Map();
  const cfg = configOf(layers, config);
  files.set(`${hex(sha(cfg))}.json`, cfg);
  const names = layers.map((l, i) => {
    const id = createHash('sha256').update(`layer${i}${sha(l.tar)}`).digest('hex');
    files.set(`${id}/layer.tar`, l.tar);
    files.set(`${id}/json`, Buffer.from('{}'));
    files.set(`${id}/VERSION`, Buffer.from('1.0'));
    return `${id}/layer.tar`;
  });
  files.set('manifest.json', Buffer.from(JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: repoTags, Layers: names }])));
  files.set('repositories', Buffer.from('{}'));
  return { files, manifestDigest: '', configDigest: sha(cfg) };
}

/** docker save since docker 25: an OCI layout plus manifest.json naming blobs/sha256/... paths. */
export function dockerSaveOci(layers: readonly Layer[], repoTags: string[]): Built {
  const built = ociLayout(layers);
  const manifest = JSON.parse(built.files.get(`blobs/sha256/${hex(built.manifestDigest)}`)!.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  built.files.set(
    'manifest.json',
    Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${hex(manifest.config.digest)}`, RepoTags: repoTags, Layers: manifest.layers.map((l) => `blobs/sha256/${hex(l.digest)}`) }])),
  );
  return built;
}

export async function writeArchive(path: string, files: Files, extra: TarEntry[] = []): Promise<void> {
  const entries: TarEntry[] = [...files].map(([name, content]) => ({ name, content }));
  writeFileSync(path, await tarOf([...entries, ...extra]));
}

export function writeLayoutDir(dir: string, files: Files): void {
  for (const [name, content] of files) {
    mkdirSync(`${dir}/${name.split('/').slice(0, -1).join('/')}`, { recursive: true });
    writeFileSync(`${dir}/${name}`, content);
  }
}

/**
 * One line per path below dir: type, mode, owner, and what it holds (a content hash, a link
 * target, a device number, the inode shared by hardlinks) and its xattrs. mtimes of files too.
 */
export function listing(dir: string, skip: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    const p = rel ? `${dir}/${rel}` : dir;
    for (const name of readdirSync(p).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const full = `${dir}/${r}`;
      const st = lstatSync(full);
      const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : 'f';
      let what = '';
      if (type === 'f') {
        what = `${createHash('sha256').update(readFileSync(full)).digest('hex').slice(0, 12)} ${st.size}`;
        if (st.nlink > 1) {
          const first = inodes.get(st.ino);
          if (first) what += ` =${first}`;
          else inodes.set(st.ino, r);
        }
      } else if (type === 'l') what = `-> ${readlinkSync(full)}`;
      else if (type === 'c' || type === 'b') what = `${Math.floor(Number(st.rdev) / 256)}:${Number(st.rdev) % 256}`;
      const xa = type === 'l' ? [] : listAttributesSync(full).sort().map((k) => `${k}=${getAttributeSync(full, k)?.toString()}`);
      const mtime = type === 'd' || type === 'l' ? '' : ` t${Math.floor(st.mtimeMs / 1000)}`; // tar keeps whole seconds
      out.push(`${type} ${(st.mode & 0o7777).toString(8).padStart(4, '0')} ${st.uid}:${st.gid} ${r}${what ? ` ${what}` : ''}${mtime}${xa.length ? ` [${xa.join(',')}]` : ''}`);
      if (type === 'd') walk(r);
    }
  };
  walk('');
  return out;
}

/** Starts a container of the FROM-scratch sleep, checks its hello, stops it with SIGTERM (exit 0) and deletes it. */
export async function sleepSaysHelloAndStops(c: Container, hostname: string): Promise<void> {
  await c.start();
  const [hello] = (await once(c.stdout!, 'data')) as [Buffer];
  expect(hello.toString()).toBe(`hello from scratch: pid 1, hostname ${hostname}, waiting for SIGTERM\n`);
  c.kill('SIGTERM');
  expect(await c.wait()).toEqual({ exitCode: 0, signal: null });
  await c.delete();
}
