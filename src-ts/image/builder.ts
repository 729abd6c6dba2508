/**
 * FROM scratch, as code: copy host files and directories into one layer, set the config, build.
 * The layer is an uncompressed tar (its digest is its diff_id), entries sorted by path, parent
 * directories included, so the same inputs give the same image.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { isAbsolute, posix } from 'node:path';
import type { Stats } from 'node:fs';
import type { Pack } from 'tar-stream';

type Headers = Parameters<Pack['entry']>[0];
import { hostPlatform, MEDIA, type ConfigDoc } from './oci.js';
import type { Image, ImageStore } from './store.js';
import { devNumbers, imageError } from './util.js';

export interface CopyOptions {
  /** Mode of every file and directory copied (like COPY --chmod). Default: the source's. */
  mode?: number;
  /** Owner in the image (like COPY --chown). Default 0:0. */
  uid?: number;
  gid?: number;
}

interface CopyStep {
  src: string;
  dest: string;
  opts: CopyOptions;
}

export interface LayerEntry {
  header: Headers;
  /** Host file to read the content from (regular files). */
  from?: string;
}

function bad(option: string, msg: string): never {
  throw imageError('EINVAL', `invalid ${option}: ${msg}`, { option });
}

function checkStrings(v: unknown, option: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) bad(option, 'expected an array of strings');
  return [...(v as string[])];
}

function checkId(v: unknown, option: string): void {
  if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32)) bad(option, 'expected an integer uid/gid');
}

/**
 * Writes entries, in the order given, as an uncompressed layer tar into the store's blobs (its
 * digest is its diff_id). The caller holds the store's lock.
 */
export async function putLayer(store: ImageStore, entries: readonly LayerEntry[]): Promise<{ digest: string; size: number }> {
  const { pack } = await import('tar-stream');
  const p = pack();
  const writing = store.putBlobStream(p as AsyncIterable<Buffer>, undefined, 'layer');
  writing.catch(() => {});
  try {
    for (const e of entries) {
      await new Promise<void>((res, rej) => {
        // A file entry without content (a whiteout) still needs its (empty) body, or pack waits for it.
        if (e.from === undefined)
          return void (e.header.type === 'file' ? p.entry(e.header, Buffer.alloc(0), (err) => (err ? rej(err) : res())) : p.entry(e.header, (err) => (err ? rej(err) : res())));
        const w = p.entry(e.header, (err) => (err ? rej(err) : res()));
        const r = createReadStream(e.from);
        r.on('error', rej);
        r.pipe(w);
      });
    }
    p.finalize();
  } catch (err) {
    p.destroy(err as Error);
    await writing.catch(() => {});
    throw imageError((err as NodeJS.ErrnoException).code ?? 'EIO', `writing the layer: ${(err as Error).message}`, { cause: err });
  }
  return writing;
}

export class ScratchBuilder {
  private readonly steps: CopyStep[] = [];
  private readonly cfg: NonNullable<ConfigDoc['config']> = {};

  constructor(private readonly store: ImageStore) {}

  /** Copies a host file or directory (recursively) to an absolute path in the image. */
  copy(src: string, dest: string, opts: CopyOptions = {}): this {
    if (typeof src !== 'string' || !isAbsolute(src)) bad('copy.src', `${JSON.stringify(src)} is not an absolute host path`);
    if (typeof dest !== 'string' || !dest.startsWith('/')) bad('copy.dest', `${JSON.stringify(dest)} is not an absolute path in the image`);
    if (dest.split('/').includes('..')) bad('copy.dest', `${JSON.stringify(dest)} has a '..' component`);
    if (opts.mode !== undefined && !(Number.isInteger(opts.mode) && opts.mode >= 0 && opts.mode <= 0o7777)) bad('copy.mode', 'expected a mode between 0 and 0o7777');
    checkId(opts.uid, 'copy.uid');
    checkId(opts.gid, 'copy.gid');
    this.steps.push({ src, dest: posix.normalize(dest), opts });
    return this;
  }

  entrypoint(args: readonly string[]): this {
    this.cfg.Entrypoint = checkStrings(args, 'entrypoint');
    return this;
  }

  cmd(args: readonly string[]): this {
    this.cfg.Cmd = checkStrings(args, 'cmd');
    return this;
  }

  /** Adds environment variables (an object, or "NAME=value" strings); later values win. */
  env(vars: Readonly<Record<string, string>> | readonly string[]): this {
    const list = Array.isArray(vars) ? checkStrings(vars, 'env') : Object.entries(vars as Record<string, string>).map(([k, v]) => `${k}=${v}`);
    for (const e of list) if (!/^[^=\0]+=[^\0]*$/.test(e)) bad('env', `${JSON.stringify(e)} is not NAME=value`);
    const merged = new Map((this.cfg.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e]));
    for (const e of list) merged.set(e.slice(0, e.indexOf('=')), e);
    this.cfg.Env = [...merged.values()];
    return this;
  }

  workdir(dir: string): this {
    if (typeof dir !== 'string' || !dir.startsWith('/')) bad('workdir', `${JSON.stringify(dir)} is not an absolute path`);
    this.cfg.WorkingDir = dir;
    return this;
  }

  /** "uid", "uid:gid", or names (resolved by whoever runs the image). */
  user(user: string): this {
    if (typeof user !== 'string' || user.includes('\0')) bad('user', 'expected a string such as "0:0"');
    this.cfg.User = user;
    return this;
  }

  label(key: string, value: string): this {
    if (typeof key !== 'string' || key === '' || typeof value !== 'string') bad('label', 'expected a non-empty key and a string value');
    this.cfg.Labels = { ...(this.cfg.Labels ?? {}), [key]: value };
    return this;
  }

  /** Writes the layer and config into the store and tags the image with ref (when given). */
  async build(ref?: string): Promise<Image> {
    const entries = await this.entries();
    return this.store.locked(async () => {
      const layers: { digest: string; size: number }[] = [];
      if (entries.size > 0) {
        layers.push(await putLayer(this.store, [...entries.keys()].sort().map((path) => entries.get(path)!)));
        await this.store.ensureLayer(layers[0]!.digest, layers[0]!.digest, () => {});
      }
      const plat = hostPlatform();
      const config: ConfigDoc = {
        architecture: plat.architecture,
        ...(plat.variant ? { variant: plat.variant } : {}),
        os: 'linux',
        config: this.cfg,
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
        history: this.steps.map((s) => ({ created_by: `scratchbox: COPY ${s.src} ${s.dest}` })),
      };
      const configBytes = Buffer.from(JSON.stringify(config));
      const configDigest = await this.store.putBlob(configBytes);
      const manifest = {
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBytes.length },
        layers: layers.map((l) => ({ mediaType: MEDIA.ociLayer, digest: l.digest, size: l.size })),
      };
      return this.store.ingest({ bytes: Buffer.from(JSON.stringify(manifest)) }, async () => null, { refs: ref === undefined ? [] : [ref] });
    });
  }

  /** The layer's entries by path (no leading '/'), from every copy in order; later copies win. */
  private async entries(): Promise<Map<string, LayerEntry>> {
    const out = new Map<string, LayerEntry>();
    const dir = (path: string): LayerEntry => ({ header: { name: path, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: new Date(0) } });
    for (const step of this.steps) {
      const destParts = step.dest.split('/').filter(Boolean);
      for (let i = 1; i < destParts.length; i++) {
        const p = destParts.slice(0, i).join('/');
        if (!out.has(p)) out.set(p, dir(p));
      }
      const inodes = new Map<string, string>();
      const walk = async (src: string, rel: string): Promise<void> => {
        const st = await lstat(src).catch((e: NodeJS.ErrnoException) => {
          throw imageError(e.code ?? 'EIO', `copy: cannot read ${src}: ${e.message}`, { path: src, option: 'copy.src' });
        });
        const header = this.header(rel, st, step.opts);
        if (st.isDirectory()) {
          if (rel !== '') out.set(rel, { header: { ...header, type: 'directory' } }); // without a type tar-stream writes a file and waits for its content
          for (const name of (await readdir(src)).sort()) await walk(`${src}/${name}`, rel ? `${rel}/${name}` : name);
          return;
        }
        if (rel === '') bad('copy.dest', `cannot copy the file ${src} to the image's root`);
        if (st.isSymbolicLink()) out.set(rel, { header: { ...header, type: 'symlink', linkname: await readlink(src) } });
        else if (st.isFile()) {
          const key = `${st.dev}:${st.ino}`;
          const first = st.nlink > 1 ? inodes.get(key) : undefined;
          if (first !== undefined && out.get(first)?.from !== undefined) out.set(rel, { header: { ...header, type: 'link', linkname: first, size: 0 } });
          else {
            if (st.nlink > 1) inodes.set(key, rel);
            out.set(rel, { header: { ...header, type: 'file', size: st.size }, from: src });
          }
        } else if (st.isCharacterDevice() || st.isBlockDevice()) {
          out.set(rel, { header: { ...header, type: st.isCharacterDevice() ? 'character-device' : 'block-device', ...devNumbers(st.rdev) } });
        } else if (st.isFIFO()) out.set(rel, { header: { ...header, type: 'fifo' } });
        // sockets are not copied: they mean nothing in an image
      };
      await walk(step.src, destParts.join('/'));
    }
    return out;
  }

  private header(name: string, st: Stats, opts: CopyOptions): Headers {
    const keepMode = st.isSymbolicLink() ? 0o777 : st.mode & 0o7777;
    return {
      name,
      mode: opts.mode !== undefined && (st.isFile() || st.isDirectory()) ? opts.mode : keepMode,
      uid: opts.uid ?? 0,
      gid: opts.gid ?? 0,
      mtime: new Date(Math.floor(st.mtimeMs / 1000) * 1000),
    };
  }
}
