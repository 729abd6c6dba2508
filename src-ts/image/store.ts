/**
 * The image store: content-addressed blobs, one unpacked directory per layer (keyed by its
 * diff_id, shared by every image that has it), and refs. See docs/images.md for the layout.
 *
 * Concurrency: every operation that writes holds the store's lock (a lock directory kept fresh
 * by proper-lockfile, so a crashed holder goes stale), within a process too. Crash safety:
 * everything is written under tmp/ and renamed into place once complete and synced, so a name
 * under blobs/ or layers/ always means a whole, verified object; tmp/ is swept by gc().
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { ContainerError } from '../errors.js';
import { ScratchBuilder } from './builder.js';
import { applyLayer, detectCompression } from './layer.js';
import {
  documentKind,
  formatReference,
  imageConfig,
  MEDIA,
  normalizeLocalRef,
  parseConfig,
  parseIndex,
  parseManifest,
  parseReference,
  pickManifest,
  type ConfigDoc,
  type Descriptor,
  type ImageConfig,
  type Manifest,
  type Platform,
} from './oci.js';
import { digestHex, imageError, isDigest, mapLimit, parseJson, sha256, tempName, writeFileAtomic } from './util.js';

const execFileP = promisify(execFile);

/**
 * What import and pull report as they go. `bytes` counts this layer's bytes so far (compressed, as
 * fetched or read); 'archive' counts the bytes of an archive file read so far.
 */
export type ImageProgress =
  | { type: 'layer'; phase: 'fetch' | 'unpack'; index: number; count: number; digest: string; size: number; cached: boolean }
  | { type: 'bytes'; phase: 'fetch' | 'unpack'; index: number; count: number; digest: string; size: number; bytes: number }
  | { type: 'layer-done'; phase: 'fetch' | 'unpack'; index: number; count: number; digest: string; size: number }
  | { type: 'archive'; bytes: number; size: number }
  | { type: 'done'; digest: string; ref?: string; layers: number };

export type ProgressFn = (e: ImageProgress) => void;

export interface StoreOptions {
  /** The largest a layer may be once decompressed (a guard against tar and gzip bombs). Default 16 GiB. */
  maxLayerSize?: number;
  /** How long to wait for another process's lock on the store, in ms. Default 10 minutes. */
  lockTimeout?: number;
  /**
   * After how long without a refresh a lock counts as left behind by a crashed process, in ms
   * (at least 2000; the holder refreshes it at half that). Default 15 s.
   */
  lockStale?: number;
}

/** What Container.create needs to run an image (see docs/images.md). */
export interface ResolvedImage {
  /** Absolute paths of the unpacked layer directories, lowest first (overlayfs lowerdir order is the reverse). */
  layers: string[];
  config: ImageConfig;
  /** The manifest digest. */
  digest: string;
  ref?: string;
}

/** A layer of an image: its blob, and the diff_id its directory is keyed by. */
export interface LayerInfo {
  digest: string;
  diffId: string;
  mediaType: string;
  size: number;
}

/**
 * Gets a blob's bytes from where an import or pull reads them: a stream, or a complete file under
 * the store's tmp/ that the store may move into place; null when that source lacks the blob.
 */
export type BlobFetcher = (d: Descriptor, onBytes: (n: number) => void) => Promise<AsyncIterable<Buffer> | { file: string } | null>;

const MAX_DOC = 4 * 1024 * 1024; // manifests, indexes and configs are small; refuse a huge one

export function defaultStoreDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return `${xdg && isAbsolute(xdg) ? xdg : `${homedir()}/.cache`}/scratchbox`;
}

/** An image in a store: its manifest digest, config, and layers. */
export class Image {
  /** @internal */
  constructor(
    readonly store: ImageStore,
    readonly digest: string,
    readonly manifest: Manifest,
    readonly configDoc: ConfigDoc,
    readonly ref?: string,
  ) {}

  get config(): ImageConfig {
    return imageConfig(this.configDoc);
  }

  get layers(): LayerInfo[] {
    return this.manifest.layers.map((l, i) => ({ digest: l.digest, diffId: this.configDoc.rootfs.diff_ids[i]!, mediaType: l.mediaType, size: l.size }));
  }

  /** Writes the image as a `docker save` archive (default), an OCI image archive or an OCI layout directory. */
  async export(path: string, opts: { format?: ExportFormat } = {}): Promise<void> {
    const { exportImage } = await import('./export.js');
    await exportImage(this, path, opts.format ?? 'docker-archive');
  }
}

export type ExportFormat = 'docker-archive' | 'oci-archive' | 'oci-dir';

export class ImageStore {
  readonly dir: string;
  readonly maxLayerSize: number;
  private readonly lockTimeout: number;
  private readonly lockStale: number;
  /** Operations of this process, one at a time (the file lock then serialises processes). */
  private queue: Promise<unknown> = Promise.resolve();
  /** Manifests and configs by manifest digest, as load() read them. */
  private readonly parsed = new Map<string, { manifest: Manifest; configDoc: ConfigDoc }>();

  private constructor(dir: string, opts: StoreOptions) {
    this.dir = dir;
    this.maxLayerSize = opts.maxLayerSize ?? 16 * 1024 ** 3;
    this.lockTimeout = opts.lockTimeout ?? 600_000;
    this.lockStale = Math.max(2000, opts.lockStale ?? 15_000);
  }

  /** Opens (creating when missing) a store; default $XDG_CACHE_HOME/scratchbox or ~/.cache/scratchbox. */
  static async open(dir?: string, opts: StoreOptions = {}): Promise<ImageStore> {
    if (dir !== undefined && (typeof dir !== 'string' || dir === '')) throw imageError('EINVAL', 'the store directory must be a non-empty path', { option: 'dir' });
    if (opts.maxLayerSize !== undefined && !(Number.isSafeInteger(opts.maxLayerSize) && opts.maxLayerSize > 0))
      throw imageError('EINVAL', 'maxLayerSize must be a positive integer', { option: 'maxLayerSize' });
    const root = resolvePath(dir ?? defaultStoreDir());
    for (const sub of ['blobs/sha256', 'layers', 'tmp']) await mkdir(`${root}/${sub}`, { recursive: true, mode: 0o700 });
    return new ImageStore(root, opts);
  }

  // ── paths ──────────────────────────────────────────────────────────────
  blobPath(digest: string): string {
    return `${this.dir}/blobs/sha256/${digestHex(digest)}`;
  }
  layerPath(diffId: string): string {
    return `${this.dir}/layers/${digestHex(diffId, 'diff_id')}`;
  }
  private get refsFile(): string {
    return `${this.dir}/refs.json`;
  }
  private get tmp(): string {
    return `${this.dir}/tmp`;
  }

  // ── locking ────────────────────────────────────────────────────────────
  /** @internal Runs fn holding the store's lock (in this process and across processes). */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      const lockfile = await import('proper-lockfile');
      const attempts = Math.max(1, Math.ceil(this.lockTimeout / 200));
      let release: () => Promise<void>;
      try {
        release = await lockfile.lock(this.dir, {
          lockfilePath: `${this.dir}/lock`,
          stale: this.lockStale,
          update: this.lockStale / 2,
          retries: { retries: attempts, factor: 1, minTimeout: 200, maxTimeout: 200 },
          onCompromised: () => {}, // the operation goes on; its writes are atomic either way
        });
      } catch (e) {
        throw imageError('EBUSY', `the image store ${this.dir} is locked by another process`, { path: this.dir, cause: e });
      }
      try {
        return await fn();
      } finally {
        await release().catch(() => {});
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  // ── blobs ──────────────────────────────────────────────────────────────
  async hasBlob(digest: string): Promise<boolean> {
    return stat(this.blobPath(digest)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  async readBlob(digest: string, max = MAX_DOC): Promise<Buffer> {
    const p = this.blobPath(digest);
    const st = await stat(p).catch(() => null);
    if (!st) throw imageError('ENOENT', `blob ${digest} is not in the store`, { path: p });
    if (st.size > max) throw imageError('ERR_IMAGE_FORMAT', `blob ${digest} is ${st.size} bytes, more than the ${max} allowed for a manifest or config`);
    return readFile(p);
  }

  /**
   * Streams bytes into the store under their sha256; with `expect`, refuses bytes that hash to
   * anything else (or have another size). Returns the digest. The caller holds the lock.
   */
  async putBlobStream(src: AsyncIterable<Buffer>, expect?: { digest: string; size?: number }, what = 'blob'): Promise<{ digest: string; size: number }> {
    const tmp = `${this.tmp}/${tempName()}`;
    const h = createHash('sha256');
    let size = 0;
    const fh = await open(tmp, 'wx', 0o644);
    try {
      const out = createWriteStream('', { fd: fh.fd, autoClose: false });
      await pipeline(async function* () {
        for await (const c of src) {
          h.update(c);
          size += c.length;
          yield c;
        }
      }, out);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw e instanceof ContainerError ? e : imageError('ERR_IMAGE_CORRUPT', `reading ${what}: ${(e as Error).message}`, { cause: e });
    }
    await fh.close();
    const digest = `sha256:${h.digest('hex')}`;
    if (expect && (digest !== expect.digest || (expect.size !== undefined && size !== expect.size))) {
      await rm(tmp, { force: true });
      throw imageError(
        'ERR_IMAGE_DIGEST',
        digest !== expect.digest ? `${what} should be ${expect.digest} but its bytes hash to ${digest}` : `${what} ${digest} is ${size} bytes, not the ${expect.size} its descriptor says`,
      );
    }
    await rename(tmp, this.blobPath(digest));
    return { digest, size };
  }

  async putBlob(data: Uint8Array | string): Promise<string> {
    const digest = sha256(data);
    if (!(await this.hasBlob(digest))) await writeFileAtomic(this.blobPath(digest), data, this.tmp);
    return digest;
  }

  /** Makes sure a blob is in the store, fetching it when it is not. Returns true when it was already there. */
  async ensureBlob(d: Descriptor, fetch: BlobFetcher, onBytes: (n: number) => void, what: string): Promise<boolean> {
    if (await this.hasBlob(d.digest)) {
      const st = await stat(this.blobPath(d.digest));
      if (st.size !== d.size) throw imageError('ERR_IMAGE_DIGEST', `${what} ${d.digest} is ${st.size} bytes, not the ${d.size} its descriptor says`);
      return true;
    }
    const src = await fetch(d, onBytes);
    if (!src) throw imageError('ENOENT', `${what} ${d.digest} is missing (the manifest names a blob that is not there)`, { path: d.digest });
    if ('file' in src) await this.adoptFile(src.file, { digest: d.digest, size: d.size }, what);
    else await this.putBlobStream(src, { digest: d.digest, size: d.size }, what);
    return false;
  }

  /** Moves a complete file from tmp/ into the blobs once its bytes hash to the digest; removes it when they do not. */
  async adoptFile(file: string, expect: { digest: string; size: number }, what: string): Promise<void> {
    const h = createHash('sha256');
    let size = 0;
    for await (const c of createReadStream(file)) {
      h.update(c as Buffer);
      size += (c as Buffer).length;
    }
    const digest = `sha256:${h.digest('hex')}`;
    if (digest !== expect.digest || size !== expect.size) {
      await rm(file, { force: true });
      throw imageError('ERR_IMAGE_DIGEST', `${what} should be ${expect.digest} (${expect.size} bytes) but the bytes fetched hash to ${digest} (${size} bytes)`);
    }
    const fh = await open(file, 'r');
    await fh.sync().finally(() => fh.close());
    await rename(file, this.blobPath(digest));
  }

  // ── layers ─────────────────────────────────────────────────────────────
  async hasLayer(diffId: string): Promise<boolean> {
    return stat(this.layerPath(diffId)).then(
      (s) => s.isDirectory(),
      () => false,
    );
  }

  /** Unpacks a stored blob into layers/<diff_id> unless it is there already. The caller holds the lock. */
  async ensureLayer(blobDigest: string, diffId: string, onBytes: (n: number) => void): Promise<boolean> {
    const dest = this.layerPath(diffId);
    if (await this.hasLayer(diffId)) return true;
    const tmp = `${this.tmp}/layer-${tempName()}`;
    await mkdir(tmp, { mode: 0o755 });
    try {
      const r = await applyLayer(createReadStream(this.blobPath(blobDigest)), tmp, { maxBytes: this.maxLayerSize, onBytes });
      if (r.diffId !== diffId) throw imageError('ERR_IMAGE_DIGEST', `layer ${blobDigest} unpacks to ${r.diffId}, but the config says its diff_id is ${diffId}`);
      await syncfs(tmp);
      await rename(tmp, dest);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return false;
  }

  // ── refs ───────────────────────────────────────────────────────────────
  private async refs(): Promise<Record<string, string>> {
    // Read again only when the file is another one or has changed: every create() from an image
    // looks its ref up here, and a trip through the threadpool costs more than a stat. Writers
    // replace the file (writeFileAtomic: a new inode), in this process or another.
    const st = statSync(this.refsFile, { throwIfNoEntry: false });
    const id = st ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : '';
    if (this.refsSeen?.id !== id) {
      const text = st ? readFileSync(this.refsFile, 'utf8') : '{}';
      const r = parseJson(text, this.refsFile);
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw imageError('ERR_IMAGE_FORMAT', `${this.refsFile} is not an object`);
      this.refsSeen = { id, refs: r as Record<string, string> };
    }
    return { ...this.refsSeen.refs }; // a copy: setRefs() changes what it gets
  }
  private refsSeen: { id: string; refs: Record<string, string> } | undefined;

  /** @internal Points refs at a manifest digest. The caller holds the lock. */
  async setRefs(refs: readonly string[], digest: string): Promise<void> {
    if (refs.length === 0) return;
    const all = await this.refs();
    for (const r of refs) all[r] = digest;
    await writeFileAtomic(this.refsFile, `${JSON.stringify(all, null, 2)}\n`, this.tmp);
  }

  /** Tags an image (or another ref) with a new ref. */
  async tag(image: string | Image, ref: string): Promise<Image> {
    const key = normalizeLocalRef(ref);
    return this.locked(async () => {
      const img = await this.lookup(image);
      await this.setRefs([key], img.digest);
      return this.load(img.digest, key);
    });
  }

  // ── reading images ─────────────────────────────────────────────────────
  /** @internal An image by its manifest digest, from the store. */
  async load(digest: string, ref?: string): Promise<Image> {
    // Blobs are content-addressed: a manifest and its config, once read and checked, never change
    // (resolve() still checks that the layers are there: gc may have removed them).
    let parsed = this.parsed.get(digest);
    if (!parsed) {
      const manifest = parseManifest(parseJson(await this.readBlob(digest), `manifest ${digest}`), `manifest ${digest}`);
      const configDoc = parseConfig(parseJson(await this.readBlob(manifest.config.digest), `config ${manifest.config.digest}`));
      parsed = { manifest, configDoc };
      if (this.parsed.size >= 256) this.parsed.delete(this.parsed.keys().next().value as string);
      this.parsed.set(digest, parsed);
    }
    return new Image(this, digest, parsed.manifest, parsed.configDoc, ref);
  }

  private async lookup(image: string | Image): Promise<Image> {
    if (image instanceof Image) {
      if (image.store.dir !== this.dir) return this.load(image.digest, image.ref);
      return image;
    }
    if (typeof image !== 'string' || image === '') throw imageError('EINVAL', 'an image is a ref (name:tag), a sha256 digest, or an Image', { option: 'image' });
    if (isDigest(image)) {
      if (!(await this.hasBlob(image))) throw imageError('ENOENT', `no image ${image} in the store`, { path: image });
      return this.load(image);
    }
    const refs = await this.refs();
    const key = refKey(refs, image);
    const digest = key === undefined ? undefined : refs[key];
    if (digest === undefined) throw imageError('ENOENT', `no image ${image} in the store ${this.dir}`, { path: image });
    return this.load(digest, key!);
  }

  /** An image by ref or digest. */
  async get(image: string | Image): Promise<Image> {
    return this.lookup(image);
  }

  /** Every tagged image, one entry per ref, sorted by ref. */
  async list(): Promise<Image[]> {
    const refs = await this.refs();
    const out: Image[] = [];
    for (const ref of Object.keys(refs).sort()) out.push(await this.load(refs[ref]!, ref));
    return out;
  }

  /** Removes a ref (its blobs and layers stay until gc() finds nothing else uses them). */
  async remove(ref: string): Promise<void> {
    await this.locked(async () => {
      const all = await this.refs();
      const key = isDigest(ref) ? undefined : refKey(all, ref);
      const keys = isDigest(ref) ? Object.keys(all).filter((k) => all[k] === ref) : key !== undefined ? [key] : [];
      if (keys.length === 0) throw imageError('ENOENT', `no image ${ref} in the store ${this.dir}`, { path: ref });
      for (const k of keys) delete all[k];
      await writeFileAtomic(this.refsFile, `${JSON.stringify(all, null, 2)}\n`, this.tmp);
    });
  }

  /**
   * What Container.create needs: the image's unpacked layer directories (lowest first), its
   * config and digest. Checks that every layer is unpacked.
   */
  async resolve(image: string | Image): Promise<ResolvedImage> {
    const img = await this.lookup(image);
    const layers = img.configDoc.rootfs.diff_ids.map((d) => this.layerPath(d));
    // Synchronous: a few stats of local directories cost less than a trip through the threadpool
    // each, and this runs on every create() from an image.
    for (const [i, p] of layers.entries()) {
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st?.isDirectory()) throw imageError('ENOENT', `layer ${i} of ${img.ref ?? img.digest} is not unpacked in the store (${p})`, { path: p });
    }
    return { layers, config: img.config, digest: img.digest, ...(img.ref === undefined ? {} : { ref: img.ref }) };
  }

  /**
   * Removes blobs and layer directories no ref reaches, and leftovers of interrupted operations in
   * tmp/ (partial downloads included). A layer directory in use by a running container whose image
   * was removed is removed too: remove images only when no container uses them.
   */
  async gc(): Promise<{ blobs: number; layers: number; bytes: number }> {
    return this.locked(async () => {
      const keepBlobs = new Set<string>();
      const keepLayers = new Set<string>();
      for (const digest of new Set(Object.values(await this.refs()))) {
        const img = await this.load(digest).catch(() => null);
        if (!img) continue;
        keepBlobs.add(digestHex(digest));
        keepBlobs.add(digestHex(img.manifest.config.digest));
        for (const l of img.layers) {
          keepBlobs.add(digestHex(l.digest));
          keepLayers.add(digestHex(l.diffId));
        }
      }
      let bytes = 0;
      let blobs = 0;
      let layers = 0;
      for (const name of await readdir(`${this.dir}/blobs/sha256`)) {
        if (keepBlobs.has(name)) continue;
        const p = `${this.dir}/blobs/sha256/${name}`;
        bytes += (await stat(p).catch(() => ({ size: 0 }))).size;
        await rm(p, { force: true });
        blobs++;
      }
      for (const name of await readdir(`${this.dir}/layers`)) {
        if (keepLayers.has(name)) continue;
        await rm(`${this.dir}/layers/${name}`, { recursive: true, force: true });
        layers++;
      }
      for (const name of await readdir(this.tmp)) await rm(`${this.tmp}/${name}`, { recursive: true, force: true });
      return { blobs, layers, bytes };
    });
  }

  // ── writing images ─────────────────────────────────────────────────────
  /** A builder for an image FROM scratch: copy files in, set the config, build(ref). */
  scratch(): ScratchBuilder {
    return new ScratchBuilder(this);
  }

  /** Imports a `docker save` archive, an OCI image archive or an OCI layout directory (format detected). */
  async import(path: string, opts: ImportOptions = {}): Promise<Image> {
    const { importPath } = await import('./archive.js');
    return importPath(this, path, opts);
  }

  /** Pulls an image from an OCI distribution registry. */
  async pull(ref: string, opts: import('./registry.js').PullOptions = {}): Promise<Image> {
    const { pullImage } = await import('./registry.js');
    return pullImage(this, ref, opts);
  }

  /**
   * @internal From a manifest or index document to a stored image: picks the platform's manifest
   * from indexes, fetches and verifies every blob, unpacks every layer, then stores the manifest
   * and points refs at it. The caller holds the lock.
   */
  async ingest(top: { bytes: Buffer; mediaType?: string; digest?: string }, fetch: BlobFetcher, opts: IngestOptions): Promise<Image> {
    let bytes = top.bytes;
    let digest = top.digest ?? sha256(bytes);
    let mediaType = top.mediaType;
    for (let depth = 0; ; depth++) {
      if (sha256(bytes) !== digest) throw imageError('ERR_IMAGE_DIGEST', `manifest ${digest}: its bytes hash to ${sha256(bytes)}`);
      const doc = parseJson(bytes, `manifest ${digest}`);
      if (documentKind(doc, mediaType) === 'manifest') break;
      if (depth > 4) throw imageError('ERR_IMAGE_FORMAT', 'indexes nested more than 4 deep');
      const d = pickManifest(parseIndex(doc), opts.platform);
      await this.ensureBlob(d, fetch, () => {}, 'manifest');
      bytes = await this.readBlob(d.digest);
      digest = d.digest;
      mediaType = d.mediaType;
    }
    const manifest = parseManifest(parseJson(bytes, `manifest ${digest}`), `manifest ${digest}`);
    await this.ensureBlob(manifest.config, fetch, () => {}, 'config');
    const configDoc = parseConfig(parseJson(await this.readBlob(manifest.config.digest), `config ${manifest.config.digest}`));
    const diffIds = configDoc.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length)
      throw imageError('ERR_IMAGE_FORMAT', `the manifest has ${manifest.layers.length} layers but the config ${diffIds.length} diff_ids`);
    const count = manifest.layers.length;
    const progress = opts.onProgress ?? (() => {});
    // Fetch in parallel (a few at a time); unpack in order as each is ready.
    const fetched = manifest.layers.map((l, index) => {
      let bytes = 0;
      return async () => {
        const cached = await this.hasBlob(l.digest);
        progress({ type: 'layer', phase: 'fetch', index, count, digest: l.digest, size: l.size, cached });
        await this.ensureBlob(l, fetch, (n) => progress({ type: 'bytes', phase: 'fetch', index, count, digest: l.digest, size: l.size, bytes: (bytes += n) }), `layer ${index}`);
        progress({ type: 'layer-done', phase: 'fetch', index, count, digest: l.digest, size: l.size });
      };
    });
    await mapLimit(fetched, 3, (f) => f());
    for (const [index, l] of manifest.layers.entries()) {
      const diffId = diffIds[index]!;
      const cached = await this.hasLayer(diffId);
      progress({ type: 'layer', phase: 'unpack', index, count, digest: l.digest, size: l.size, cached });
      let bytes = 0;
      await this.ensureLayer(l.digest, diffId, (n) => progress({ type: 'bytes', phase: 'unpack', index, count, digest: l.digest, size: l.size, bytes: (bytes += n) }));
      progress({ type: 'layer-done', phase: 'unpack', index, count, digest: l.digest, size: l.size });
    }
    if (!(await this.hasBlob(digest))) await writeFileAtomic(this.blobPath(digest), bytes, this.tmp);
    const refs = opts.refs.map(normalizeLocalRef);
    await this.setRefs(refs, digest);
    progress({ type: 'done', digest, layers: count, ...(refs[0] === undefined ? {} : { ref: refs[0] }) });
    return new Image(this, digest, manifest, configDoc, refs[0]);
  }

  /** @internal Media type for a layer blob already in the store, from its first bytes. */
  async layerMediaType(digest: string): Promise<string> {
    const fh = await open(this.blobPath(digest), 'r');
    try {
      const head = Buffer.alloc(4);
      await fh.read(head, 0, 4, 0);
      const kind = detectCompression(head);
      return kind === 'gzip' ? MEDIA.ociLayerGzip : kind === 'zstd' ? MEDIA.ociLayerZstd : MEDIA.ociLayer;
    } finally {
      await fh.close();
    }
  }
}

/**
 * The key a ref has in refs.json: as written, with ':latest' added, or in canonical form
 * (`busybox` finds a pulled `docker.io/library/busybox:latest`).
 */
function refKey(refs: Record<string, string>, ref: string): string | undefined {
  const candidates = [ref, normalizeLocalRef(ref), formatReference(parseReference(ref))];
  return candidates.find((k) => refs[k] !== undefined);
}

export interface ImportOptions {
  /** Tag the imported image with this ref (instead of, not besides, the names in the archive). */
  ref?: string;
  onProgress?: ProgressFn;
  /** Which manifest of a multi-platform index to take. Default linux/<host arch>. */
  platform?: Platform;
}

export interface IngestOptions {
  refs: readonly string[];
  onProgress?: ProgressFn;
  platform?: Platform;
}

/** syncfs(2) on the file system holding a directory (coreutils `sync -f`), once per layer. */
async function syncfs(dir: string): Promise<void> {
  await execFileP('sync', ['-f', dir]);
}
