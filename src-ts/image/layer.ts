/**
 * One layer blob → one directory in overlayfs's format: regular entries as they are, a whiteout
 * `.wh.NAME` as the character device 0:0 at NAME, and `.wh..wh..opq` as the xattr
 * trusted.overlay.opaque=y on its directory. Such directories stack as overlay lower layers.
 *
 * The directory is private to this process while it is written (a temp name in the store, under the
 * store's lock), so checking each path with lstat before writing it cannot race with anyone.
 * Nothing is ever written through a symlink: every parent of an entry must be a real directory of
 * this layer, and the leaf is removed before it is created.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, rm, symlink, unlink } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import type { Header } from 'tar-stream';

/** A tar-stream entry: its header and a stream of its content. */
type Entry = AsyncIterable<unknown> & { header: Header; resume(): unknown };
type Headers = Header;
import { ContainerError } from '../errors.js';
import { imageError } from './util.js';

const execFileP = promisify(execFile);

export type Compression = 'none' | 'gzip' | 'zstd';

export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** fzstd's streaming decoder as a Transform (Node 20's zlib has no zstd). Loaded only when a layer needs it. */
async function zstdTransform(): Promise<Transform> {
  const { Decompress } = await import('fzstd');
  let sink: ((c: Uint8Array) => void) | undefined;
  const d = new Decompress((chunk) => sink?.(chunk));
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      sink = (c) => this.push(Buffer.from(c));
      try {
        d.push(chunk);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb) {
      sink = (c) => this.push(Buffer.from(c));
      try {
        d.push(new Uint8Array(0), true);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
}

/** Reads the first bytes of a stream to tell its compression, and gives back a stream of all of it. */
async function sniff(src: AsyncIterable<Buffer>): Promise<{ kind: Compression; whole: Readable }> {
  const it = src[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let n = 0;
  let done = false;
  while (n < 4) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head.push(r.value);
    n += r.value.length;
  }
  const first = Buffer.concat(head);
  async function* all() {
    if (first.length) yield first;
    if (done) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  return { kind: detectCompression(first), whole: Readable.from(all(), { objectMode: false }) };
}

/** The decompressed bytes of a blob, whatever its compression, and what that compression was. */
export async function decompressed(src: AsyncIterable<Buffer>): Promise<{ kind: Compression; stream: Readable }> {
  const { kind, whole } = await sniff(src);
  if (kind === 'none') return { kind, stream: whole };
  const dec = kind === 'gzip' ? createGunzip() : await zstdTransform();
  whole.on('error', (e) => dec.destroy(e));
  whole.pipe(dec);
  return { kind, stream: dec };
}

/** Counts and hashes the bytes going through, and stops a stream that grows past a limit. */
export class Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(
    private readonly limit: number,
    private readonly onBytes?: (n: number) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      cb(imageError('ERR_IMAGE_TOO_LARGE', `the layer is larger than the limit of ${this.limit} bytes once decompressed (maxLayerSize)`));
      return;
    }
    this.hash.update(chunk);
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/**
 * The path of a tar entry as components, or an error for what could escape the root: absolute
 * names and `..`. A leading `./` is the usual way to spell the root and is dropped.
 */
export function entryComponents(name: string, what = 'entry'): string[] {
  if (name.includes('\0')) throw imageError('ERR_IMAGE_UNSAFE', `${what} ${JSON.stringify(name)} has a NUL byte`);
  if (name.startsWith('/')) throw imageError('ERR_IMAGE_UNSAFE', `${what} ${JSON.stringify(name)} is an absolute path`, { path: name });
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw imageError('ERR_IMAGE_UNSAFE', `${what} ${JSON.stringify(name)} has a '..' component`, { path: name });
  return parts;
}

export interface ApplyOptions {
  /** The largest a layer may be once decompressed, in bytes. */
  maxBytes: number;
  /** Called with each chunk's size, compressed bytes read from the blob. */
  onBytes?: (n: number) => void;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar: the layer's diff_id. */
  diffId: string;
  compression: Compression;
  /** Uncompressed size. */
  size: number;
  /** Device nodes not created because this process is not root. */
  skippedDevices: number;
}

interface DirMeta {
  path: string;
  depth: number;
  header: Headers;
}

const isRoot = () => process.getuid?.() === 0;
const OPAQUE = '.wh..wh..opq';
const WH = '.wh.';

type XattrModule = typeof import('@napi-rs/xattr');
let xattrModule: Promise<XattrModule> | undefined;
const xattrs = () => (xattrModule ??= import('@napi-rs/xattr'));

/** Applies one layer blob (any compression) into an empty directory. */
export async function applyLayer(blob: AsyncIterable<Buffer>, root: string, opts: ApplyOptions): Promise<ApplyResult> {
  const { extract } = await import('tar-stream');
  // Compressed bytes are counted for progress; decompressed ones against the limit and for diff_id.
  const counted = Readable.from(countChunks(blob, opts.onBytes));
  const { kind, stream } = await decompressed(counted);
  const meter = new Meter(opts.maxBytes);
  const ex = extract();
  const piping = pipeline(stream, meter, ex);
  piping.catch(() => {});
  const w = new LayerWriter(root);
  try {
    for await (const entry of ex) await w.entry(entry);
    await piping;
    await w.finish();
  } catch (e) {
    stream.destroy();
    ex.destroy();
    await piping.catch(() => {});
    throw corrupt(e);
  }
  return { diffId: meter.digest(), compression: kind, size: meter.bytes, skippedDevices: w.skippedDevices };
}

async function* countChunks(src: AsyncIterable<Buffer>, onBytes?: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const c of src) {
    onBytes?.(c.length);
    yield c;
  }
}

/** Errors from zlib, fzstd and tar-stream mean a damaged blob; ours pass through. */
export function corrupt(e: unknown, what = 'the layer'): ContainerError {
  if (e instanceof ContainerError) return e;
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code) && err.code !== 'EPIPE')
    return imageError(err.code, `reading ${what}: ${err.message}`, { cause: e, ...(typeof err.path === 'string' ? { path: err.path } : {}) });
  return imageError('ERR_IMAGE_CORRUPT', `${what} is not a valid (compressed) tar: ${err?.message ?? String(e)}`, { cause: e });
}

class LayerWriter {
  private readonly dirs: DirMeta[] = [];
  /** Paths (relative) known to be real directories of this layer; cleared when one is replaced. */
  private known = new Set<string>(['']);
  skippedDevices = 0;

  constructor(private readonly root: string) {}

  private abs(parts: string[]): string {
    return parts.length ? `${this.root}/${parts.join('/')}` : this.root;
  }

  /** Makes every parent of an entry a real directory, refusing to go through a symlink or a file. */
  private async parents(parts: string[], name: string): Promise<void> {
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (this.known.has(rel)) continue;
      const p = `${this.root}/${rel}`;
      const st = await lstat(p).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return null;
        throw e;
      });
      if (st === null) await mkdir(p, { mode: 0o755 });
      else if (st.isSymbolicLink())
        throw imageError('ERR_IMAGE_UNSAFE', `entry ${JSON.stringify(name)} would be written through the symlink ${rel}`, { path: name });
      else if (!st.isDirectory()) throw imageError('ERR_IMAGE_UNSAFE', `entry ${JSON.stringify(name)} is below ${rel}, which is not a directory`, { path: name });
      this.known.add(rel);
    }
  }

  /** Removes whatever is at the leaf, so that creating the entry never follows or reuses it. */
  private async clear(p: string, keepDir: boolean): Promise<boolean> {
    const st = await lstat(p).catch(() => null);
    if (!st) return false;
    if (st.isDirectory()) {
      if (keepDir) return true;
      await rm(p, { recursive: true, force: true });
      this.known = new Set(['']);
      return false;
    }
    await unlink(p);
    return false;
  }

  async entry(entry: Entry): Promise<void> {
    const h = entry.header;
    try {
      await this.write(entry, h);
    } finally {
      entry.resume(); // drain whatever was not read, so the tar stream goes on
    }
  }

  private async write(entry: Entry, h: Headers): Promise<void> {
    const parts = entryComponents(h.name);
    const base = parts[parts.length - 1];
    if (base === undefined) {
      if (h.type === 'directory') this.dirs.push({ path: this.root, depth: 0, header: h });
      return;
    }
    await this.parents(parts, h.name);
    const parent = this.abs(parts.slice(0, -1));
    if (base === OPAQUE) return this.xattr(parent, 'trusted.overlay.opaque', Buffer.from('y'), h.name, true);
    if (base.startsWith(WH + WH)) return; // other aufs metadata (.wh..wh.plnk, .wh..wh.aufs)
    if (base.startsWith(WH)) {
      const target = base.slice(WH.length);
      if (target === '' || target === '.' || target === '..') throw imageError('ERR_IMAGE_UNSAFE', `whiteout ${JSON.stringify(h.name)} names nothing`, { path: h.name });
      const p = `${parent}/${target}`;
      await this.clear(p, false);
      if (!isRoot()) throw imageError('EPERM', `whiteout ${h.name}: making the overlay whiteout (a 0:0 device) needs root`, { path: h.name });
      await mknod(p, 'c', 0, 0, 0o000);
      const mtime = h.mtime ?? new Date(0);
      await lutimes(p, mtime, mtime);
      return;
    }
    const p = this.abs(parts);
    switch (h.type) {
      case 'directory': {
        const exists = await this.clear(p, true);
        if (!exists) await mkdir(p, { mode: 0o700 });
        this.known.add(parts.join('/'));
        this.dirs.push({ path: p, depth: parts.length, header: h });
        return;
      }
      case 'file':
      case 'contiguous-file':
        await this.clear(p, false);
        await pipeline(entry as AsyncIterable<Buffer>, createWriteStream(p, { flags: 'wx', mode: 0o600 }));
        break;
      case 'symlink':
        await this.clear(p, false);
        await symlink(h.linkname ?? '', p);
        break;
      case 'link': {
        const tparts = entryComponents(h.linkname ?? '', 'hardlink target');
        if (tparts.length === 0) throw imageError('ERR_IMAGE_UNSAFE', `hardlink ${h.name} points at the root`, { path: h.name });
        await this.parents(tparts, h.linkname ?? '');
        const target = this.abs(tparts);
        const st = await lstat(target).catch(() => null);
        if (!st) throw imageError('ERR_IMAGE_FORMAT', `hardlink ${h.name} points at ${h.linkname}, which is not in the layer`, { path: h.name });
        if (st.isDirectory()) throw imageError('ERR_IMAGE_UNSAFE', `hardlink ${h.name} points at the directory ${h.linkname}`, { path: h.name });
        if (target === p) return;
        await this.clear(p, false);
        await link(target, p); // link(2) does not follow a symlink target: it links the symlink itself
        return; // a hardlink shares its target's inode and metadata
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        await this.clear(p, false);
        if (h.type !== 'fifo' && !isRoot()) {
          this.skippedDevices++;
          return;
        }
        await mknod(p, h.type === 'fifo' ? 'p' : h.type === 'block-device' ? 'b' : 'c', h.devmajor ?? 0, h.devminor ?? 0, (h.mode ?? 0o600) & 0o7777);
        break;
      default:
        return; // pax and GNU long-name records are folded into the next entry by tar-stream
    }
    await this.meta(p, h, h.type === 'symlink');
  }

  private async meta(p: string, h: Headers, isLink: boolean): Promise<void> {
    if (isRoot()) await lchown(p, h.uid ?? 0, h.gid ?? 0);
    if (!isLink) await chmod(p, (h.mode ?? 0o644) & 0o7777); // after chown, which clears setuid bits
    await this.paxXattrs(p, h, isLink);
    const mtime = h.mtime ?? new Date(0);
    await lutimes(p, mtime, mtime);
  }

  private async paxXattrs(p: string, h: Headers, isLink: boolean): Promise<void> {
    const pax = h.pax as Record<string, string> | null | undefined;
    if (!pax || isLink) return; // xattrs on symlinks would need lsetxattr, which the binding lacks
    for (const [k, v] of Object.entries(pax)) {
      // tar-stream hands pax values over as UTF-8 text: a binary value (security.capability) comes
      // back with U+FFFD in it, and is dropped rather than set wrong.
      if (k.startsWith('SCHILY.xattr.') && !v.includes('\uFFFD')) await this.xattr(p, k.slice('SCHILY.xattr.'.length), Buffer.from(v, 'utf8'), h.name, false);
    }
  }

  private async xattr(p: string, name: string, value: Buffer, entry: string, required: boolean): Promise<void> {
    try {
      (await xattrs()).setAttributeSync(p, name, value);
    } catch (e) {
      // xattrs are kept "where the file system allows"; only the overlay's opaque marker is required.
      if (required) throw imageError('EPERM', `${entry}: setting ${name} failed (overlay opaque directories need root): ${(e as Error).message}`, { path: entry, cause: e });
    }
  }

  /** Directory metadata last, deepest first: writing into a directory changes its mtime, and a mode may forbid writing. */
  async finish(): Promise<void> {
    this.dirs.sort((a, b) => b.depth - a.depth);
    for (const d of this.dirs) await this.meta(d.path, d.header, false);
  }
}

/** mknod(2) is not in Node's fs: coreutils' mknod does it (devices and whiteouts are few in a layer). */
async function mknod(path: string, type: 'c' | 'b' | 'p', major: number, minor: number, mode: number): Promise<void> {
  const args = ['-m', (mode & 0o7777).toString(8), path, type, ...(type === 'p' ? [] : [String(major), String(minor)])];
  try {
    await execFileP('mknod', args);
  } catch (e) {
    throw imageError('EPERM', `mknod ${path} failed: ${((e as { stderr?: string }).stderr ?? (e as Error).message).trim()}`, { path, cause: e });
  }
}
