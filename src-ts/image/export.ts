/**
 * Export of a stored image. All three formats hold an OCI image layout (oci-layout, index.json,
 * blobs/sha256/*, the blobs exactly as stored, so digests are kept); 'docker-archive' adds
 * docker's manifest.json, which is how `docker save` has written archives since docker 25 and what
 * `docker load` and `podman load` read. The output appears whole or not at all (temp name, rename).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { MEDIA, parseReference } from './oci.js';
import type { ExportFormat, Image } from './store.js';
import { digestHex, imageError, tempName } from './util.js';

const FORMATS: readonly ExportFormat[] = ['docker-archive', 'oci-archive', 'oci-dir'];

interface LayoutFile {
  name: string;
  /** In-memory content, or a blob in the store. */
  data?: Buffer;
  blob?: string;
}

function layoutFiles(img: Image, format: ExportFormat, manifestSize: number): LayoutFile[] {
  const annotations: Record<string, string> = {};
  if (img.ref !== undefined) {
    const r = parseReference(img.ref);
    annotations['io.containerd.image.name'] = img.ref;
    if (r.tag !== undefined) annotations['org.opencontainers.image.ref.name'] = r.tag;
  }
  const files: LayoutFile[] = [{ name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }];
  const blobs = [img.digest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)];
  for (const d of new Set(blobs)) files.push({ name: `blobs/sha256/${digestHex(d)}`, blob: d });
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: [{ mediaType: img.manifest.mediaType, digest: img.digest, size: manifestSize, ...(img.ref === undefined ? {} : { annotations }) }],
  };
  files.push({ name: 'index.json', data: Buffer.from(JSON.stringify(index)) });
  if (format === 'docker-archive') {
    const manifest = [
      {
        Config: `blobs/sha256/${digestHex(img.manifest.config.digest)}`,
        RepoTags: img.ref === undefined ? [] : [img.ref],
        Layers: img.manifest.layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
      },
    ];
    files.push({ name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) });
  }
  return files;
}

export async function exportImage(img: Image, path: string, format: ExportFormat): Promise<void> {
  if (!FORMATS.includes(format)) throw imageError('EINVAL', `unknown export format ${JSON.stringify(format)} (one of ${FORMATS.join(', ')})`, { option: 'format' });
  if (typeof path !== 'string' || path === '') throw imageError('EINVAL', 'export needs a path', { option: 'path' });
  const existing = await stat(path).catch(() => null);
  if (existing && !(format === 'oci-dir' && existing.isDirectory() && (await readdir(path)).length === 0))
    throw imageError('EEXIST', `${path} exists already`, { path });
  const files = layoutFiles(img, format, (await stat(img.store.blobPath(img.digest))).size);
  const tmp = `${dirname(path)}/.${basename(path)}.${tempName()}`;
  try {
    if (format === 'oci-dir') {
      await mkdir(`${tmp}/blobs/sha256`, { recursive: true });
      for (const f of files) {
        if (f.blob !== undefined) await copyFile(img.store.blobPath(f.blob), `${tmp}/${f.name}`);
        else await writeFile(`${tmp}/${f.name}`, f.data!);
      }
      if (existing) await rm(path, { recursive: true });
    } else await writeTar(img, files, tmp);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e instanceof Error && 'stage' in e ? e : imageError((e as NodeJS.ErrnoException).code ?? 'EIO', `exporting to ${path}: ${(e as Error).message}`, { path, cause: e });
  }
}

async function writeTar(img: Image, files: LayoutFile[], out: string): Promise<void> {
  const { pack } = await import('tar-stream');
  const p = pack();
  const fh = await open(out, 'wx', 0o644);
  const writing = pipeline(p, createWriteStream('', { fd: fh.fd, autoClose: false }));
  writing.catch(() => {});
  const mtime = new Date(0);
  const dir = (name: string) => new Promise<void>((res, rej) => p.entry({ name, type: 'directory', mode: 0o755, mtime }, (e) => (e ? rej(e) : res())));
  try {
    await dir('blobs/');
    await dir('blobs/sha256/');
    for (const f of files) {
      if (f.data !== undefined) {
        await new Promise<void>((res, rej) => p.entry({ name: f.name, mode: 0o644, mtime }, f.data!, (e) => (e ? rej(e) : res())));
        continue;
      }
      const src = img.store.blobPath(f.blob!);
      const size = (await stat(src)).size;
      await new Promise<void>((res, rej) => {
        const w = p.entry({ name: f.name, mode: 0o644, mtime, size }, (e) => (e ? rej(e) : res()));
        const r = createReadStream(src);
        r.on('error', rej);
        r.pipe(w);
      });
    }
    p.finalize();
    await writing;
    await fh.sync();
  } finally {
    await fh.close();
  }
}
