/**
 * Import of image archives and layouts: `docker save` (legacy: manifest.json, <id>/layer.tar,
 * <id>.json; and docker 25+'s OCI layout inside), OCI image archives (a tar of an OCI layout,
 * possibly compressed) and OCI layout directories. The format is told from what is inside.
 *
 * An archive is read once: blobs stream into the store (verified against their names when they
 * are named by digest), small documents stay in memory, and then the manifest is followed.
 */
import { createReadStream } from 'node:fs';
import { lstat, readFile, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { corrupt, decompressed, entryComponents } from './layer.js';
import { MEDIA, parseIndex, type Descriptor } from './oci.js';
import type { BlobFetcher, Image, ImageStore, ImportOptions } from './store.js';
import { digestHex, imageError, parseJson, sha256 } from './util.js';

const SMALL = 4 * 1024 * 1024;
const BLOB_NAME = /^blobs\/sha256\/([a-f0-9]{64})$/;

export async function importPath(store: ImageStore, path: string, opts: ImportOptions): Promise<Image> {
  if (typeof path !== 'string' || path === '') throw imageError('EINVAL', 'import needs a path', { option: 'path' });
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw imageError(e.code ?? 'ENOENT', `cannot import ${path}: ${e.message}`, { path });
  });
  return store.locked(() => (st.isDirectory() ? importLayoutDir(store, path, opts) : importArchive(store, path, st.size, opts)));
}

/** Refs an OCI index gives its images (containerd's full name, else ref.name when it is one). */
function indexRefs(descs: readonly Descriptor[]): string[] {
  const out: string[] = [];
  for (const d of descs) {
    const full = d.annotations?.['io.containerd.image.name'];
    const name = d.annotations?.['org.opencontainers.image.ref.name'];
    if (full) out.push(full);
    else if (name && /[:/]/.test(name)) out.push(name); // a bare "latest" is a tag without a name
  }
  return out;
}

async function importLayoutDir(store: ImageStore, dir: string, opts: ImportOptions): Promise<Image> {
  const layout = await readFile(`${dir}/oci-layout`).catch(() => null);
  if (!layout) throw imageError('ERR_IMAGE_FORMAT', `${dir} is not an OCI layout directory (no oci-layout file)`, { path: dir });
  checkLayout(layout);
  const index = await readFile(`${dir}/index.json`).catch(() => null);
  if (!index) throw imageError('ERR_IMAGE_FORMAT', `${dir} has no index.json`, { path: dir });
  const fetch: BlobFetcher = async (d, onBytes) => {
    const p = `${dir}/blobs/sha256/${digestHex(d.digest)}`;
    const st = await lstat(p).catch(() => null);
    if (!st?.isFile()) return null;
    return counted(createReadStream(p), onBytes);
  };
  const refs = opts.ref !== undefined ? [opts.ref] : indexRefs(parseIndex(parseJson(index, 'index.json'), 'index.json').manifests);
  return store.ingest({ bytes: index, mediaType: MEDIA.ociIndex }, fetch, { refs: refs.slice(0, 1), ...pass(opts) });
}

function pass(opts: ImportOptions) {
  return { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), ...(opts.platform ? { platform: opts.platform } : {}) };
}

function checkLayout(bytes: Buffer): void {
  const l = parseJson(bytes, 'oci-layout') as { imageLayoutVersion?: unknown } | null;
  if (typeof l?.imageLayoutVersion !== 'string' || !l.imageLayoutVersion.startsWith('1.'))
    throw imageError('ERR_IMAGE_FORMAT', `unsupported oci-layout ${bytes.toString().slice(0, 100)}`);
}

async function* counted(src: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const c of src) {
    onBytes(c.length);
    yield c;
  }
}

interface ArchiveContents {
  /** Small non-blob files by name (manifest.json, index.json, <id>.json, repositories). */
  small: Map<string, Buffer>;
  /** Larger files and every blobs/sha256/* entry: now in the store, by name. */
  stored: Map<string, string>;
  /** Symlinks and hardlinks between entries (docker save links repeated layers). */
  links: Map<string, string>;
}

async function readArchive(store: ImageStore, path: string, size: number, opts: ImportOptions): Promise<ArchiveContents> {
  const { extract } = await import('tar-stream');
  const contents: ArchiveContents = { small: new Map(), stored: new Map(), links: new Map() };
  let bytes = 0;
  const file = Readable.from(counted(createReadStream(path), (n) => opts.onProgress?.({ type: 'archive', bytes: (bytes += n), size })));
  const { stream } = await decompressed(file);
  const ex = extract();
  const piping = pipeline(stream, ex);
  piping.catch(() => {});
  try {
    for await (const entry of ex) {
      const h = entry.header;
      const name = entryComponents(h.name, 'archive entry').join('/');
      if (h.type === 'symlink' || h.type === 'link') {
        const parent = h.type === 'symlink' ? name.split('/').slice(0, -1) : [];
        contents.links.set(name, joinInside(parent, h.linkname ?? '', h.name));
      } else if (h.type === 'file' || h.type === 'contiguous-file') {
        const blob = BLOB_NAME.exec(name);
        if (!blob && (h.size ?? 0) <= SMALL) {
          const chunks: Buffer[] = [];
          for await (const c of entry) chunks.push(c as Buffer);
          contents.small.set(name, Buffer.concat(chunks));
          continue;
        }
        if ((h.size ?? 0) > store.maxLayerSize) throw imageError('ERR_IMAGE_TOO_LARGE', `archive entry ${name} is ${h.size} bytes, more than maxLayerSize`);
        const expect = blob ? { digest: `sha256:${blob[1]}`, size: h.size ?? 0 } : undefined;
        // A blob the store has already is not written again (the entry is drained below).
        const digest =
          expect && (await store.hasBlob(expect.digest)) ? expect.digest : (await store.putBlobStream(entry as AsyncIterable<Buffer>, expect, `archive entry ${name}`)).digest;
        contents.stored.set(name, digest);
      }
      entry.resume();
    }
    await piping;
  } catch (e) {
    stream.destroy();
    await piping.catch(() => {});
    throw corrupt(e, path);
  }
  return contents;
}

/** A link target as an archive path: relative to the link's directory, never above the archive's root. */
function joinInside(dir: string[], target: string, name: string): string {
  const parts = target.startsWith('/') ? [] : [...dir];
  for (const p of target.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (parts.length === 0) throw imageError('ERR_IMAGE_UNSAFE', `archive entry ${name} links outside the archive (${target})`, { path: name });
      parts.pop();
    } else parts.push(p);
  }
  return parts.join('/');
}

function follow(c: ArchiveContents, name: string): string {
  let n = entryComponents(name, 'archive path').join('/');
  for (let i = 0; i < 16 && c.links.has(n); i++) n = c.links.get(n)!;
  return n;
}

async function importArchive(store: ImageStore, path: string, size: number, opts: ImportOptions): Promise<Image> {
  const c = await readArchive(store, path, size, opts);
  const fetch: BlobFetcher = async () => null; // every blob of the archive is in the store by now
  const manifestJson = c.small.get('manifest.json');
  const repoTags = manifestJson ? dockerManifest(manifestJson).flatMap((m) => m.RepoTags ?? []) : [];
  const index = c.small.get('index.json');
  if (index && c.small.has('oci-layout')) {
    checkLayout(c.small.get('oci-layout')!);
    const named = indexRefs(parseIndex(parseJson(index, 'index.json'), 'index.json').manifests);
    const refs = opts.ref !== undefined ? [opts.ref] : repoTags.length ? repoTags : named.slice(0, 1);
    return store.ingest({ bytes: index, mediaType: MEDIA.ociIndex }, fetch, { refs, ...pass(opts) });
  }
  if (!manifestJson) throw imageError('ERR_IMAGE_FORMAT', `${path} is neither a docker save archive nor an OCI image archive (no manifest.json, no index.json with oci-layout)`, { path });
  let first: Image | undefined;
  for (const [i, m] of dockerManifest(manifestJson).entries()) {
    const configName = follow(c, m.Config);
    const configBytes = await bytesOf(store, c, configName, `manifest.json[${i}].Config`);
    const configDigest = sha256(configBytes);
    const idName = /^(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(configName);
    if (idName && `sha256:${idName[1]}` !== configDigest)
      throw imageError('ERR_IMAGE_DIGEST', `the config ${configName} hashes to ${configDigest}, not to its name`, { path: configName });
    await store.putBlob(configBytes);
    const layers: Descriptor[] = [];
    for (const [j, l] of m.Layers.entries()) {
      const name = follow(c, l);
      let digest = c.stored.get(name);
      if (digest === undefined && c.small.has(name)) digest = await store.putBlob(c.small.get(name)!);
      if (digest === undefined) throw imageError('ENOENT', `manifest.json[${i}].Layers[${j}] names ${l}, which is not in the archive`, { path: l });
      layers.push({ mediaType: await store.layerMediaType(digest), digest, size: (await stat(store.blobPath(digest))).size });
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBytes.length },
      layers,
    };
    const refs = opts.ref !== undefined ? (i === 0 ? [opts.ref] : []) : (m.RepoTags ?? []);
    const img = await store.ingest({ bytes: Buffer.from(JSON.stringify(manifest)) }, fetch, { refs, ...pass(opts) });
    first ??= img;
  }
  if (!first) throw imageError('ERR_IMAGE_FORMAT', `${path}: manifest.json lists no image`, { path });
  return first;
}

async function bytesOf(store: ImageStore, c: ArchiveContents, name: string, what: string): Promise<Buffer> {
  const small = c.small.get(name);
  if (small) return small;
  const digest = c.stored.get(name);
  if (digest !== undefined) return store.readBlob(digest);
  throw imageError('ENOENT', `${what} names ${name}, which is not in the archive`, { path: name });
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

function dockerManifest(bytes: Buffer): DockerManifestEntry[] {
  const m = parseJson(bytes, 'manifest.json');
  const ok = (e: unknown): e is DockerManifestEntry => {
    const o = e as Record<string, unknown>;
    return (
      typeof o === 'object' &&
      o !== null &&
      typeof o.Config === 'string' &&
      Array.isArray(o.Layers) &&
      o.Layers.every((l) => typeof l === 'string') &&
      (o.RepoTags === undefined || o.RepoTags === null || (Array.isArray(o.RepoTags) && o.RepoTags.every((t) => typeof t === 'string')))
    );
  };
  if (!Array.isArray(m) || !m.every(ok)) throw imageError('ERR_IMAGE_FORMAT', 'manifest.json is not a docker save manifest (an array of {Config, RepoTags, Layers})');
  return m;
}
