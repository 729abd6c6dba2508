/**
 * Containers → images. A container created with `keep: true` has its overlay's upper layer on disk
 * (<store>/containers/<id>/upper, made here before the container is cloned); commit() turns that
 * directory into one more layer on top of the container's image: overlayfs's own whiteouts (a 0:0
 * character device) become `.wh.NAME` entries, an opaque directory (trusted.overlay.opaque=y)
 * gets a `.wh..wh..opq` entry, everything else goes in as it is. What the runtime itself wrote
 * into the upper layer before the overlay was made (the /etc files, mount points) is left out
 * unless the container changed it.
 *
 * A container of a rootfs directory has no image below it: its commit is two layers, the rootfs
 * as it is on disk (content-addressed, so every commit of one rootfs shares it) and the changes.
 */
import type { Stats } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import type { Op } from '../plan/plan.js';
import { putLayer, type LayerEntry } from './builder.js';
import { hostPlatform, MEDIA, type ConfigDoc, type ImageConfig } from './oci.js';
import type { Image, ImageStore } from './store.js';
import { devNumbers, imageError } from './util.js';

/** What commit() may change in the image config; each field given replaces the image's. */
export type CommitConfig = Partial<ImageConfig>;

export interface CommitOptions {
  /** Goes into the image's history entry for the new layer (like `docker commit -m`). */
  message?: string;
  config?: CommitConfig;
}

/** Where a kept container's upper layer lives in its store. */
export function keptDir(store: ImageStore, id: string): string {
  return `${store.dir}/containers/${id}`;
}

/**
 * Makes <store>/containers/<id>/{upper,work} for a container with keep: true. EEXIST (stage
 * validate) when a kept container of that id is there already: its changes are never mixed in.
 */
export async function prepareKept(store: ImageStore, id: string): Promise<string> {
  const dir = keptDir(store, id);
  await mkdir(`${store.dir}/containers`, { recursive: true, mode: 0o700 });
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    throw imageError('EEXIST', `invalid keep: ${dir} holds a kept container of the id ${id} already (remove it, or give another id)`, { option: 'keep', path: dir });
  }
  await mkdir(`${dir}/upper`, { mode: 0o755 });
  await mkdir(`${dir}/work`, { mode: 0o700 });
  return dir;
}

export async function dropKept(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** What the runtime writes into the upper layer itself, by path (no leading '/'). */
export type RuntimeEntry = { type: 'dir' } | { type: 'file'; content: string; mode: number } | { type: 'symlink'; target: string };

/** The ops that write into the upper layer before the overlay exists (plan.ts step 3). */
export function runtimeEntries(ops: readonly Op[]): Map<string, RuntimeEntry> {
  const out = new Map<string, RuntimeEntry>();
  let upper = true;
  for (const op of ops) {
    if (op.kind === 'root-overlay' || op.kind === 'root-overlay-detached') upper = false;
    // After the overlay, only the content of files made empty before it (plan.ts: a pooled root's
    // /etc/hostname and /etc/hosts).
    if (!upper) {
      if (op.kind === 'write-file' && op.existing) out.set(op.path, { type: 'file', content: op.content, mode: op.mode });
      continue;
    }
    if (op.kind === 'mkdir') out.set(op.path, op.file ? { type: 'file', content: '', mode: -1 } : { type: 'dir' });
    else if (op.kind === 'write-file') out.set(op.path, { type: 'file', content: op.content, mode: op.mode });
    else if (op.kind === 'symlink') out.set(op.path, { type: 'symlink', target: op.target });
  }
  return out;
}

type XattrModule = typeof import('@napi-rs/xattr');

interface Walk {
  root: string;
  /** An overlay upper layer (whiteouts, opaque directories), or a plain tree (a rootfs). */
  overlay: boolean;
  runtime: ReadonlyMap<string, RuntimeEntry>;
  xattr: XattrModule;
  inodes: Map<string, string>;
  out: LayerEntry[];
}

const OVERLAY_XATTR = 'trusted.overlay.';

function headerOf(name: string, st: Stats): LayerEntry['header'] {
  return { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: new Date(Math.floor(st.mtimeMs / 1000) * 1000) };
}

/** xattrs that go into the layer (SCHILY.xattr pax records), and the overlay's own. */
function attrs(w: Walk, p: string): { pax: Record<string, string>; overlay: Record<string, string> } {
  const pax: Record<string, string> = {};
  const overlay: Record<string, string> = {};
  for (const name of w.xattr.listAttributesSync(p)) {
    const v = w.xattr.getAttributeSync(p, name);
    if (!v) continue;
    const text = v.toString('utf8');
    if (name.startsWith(OVERLAY_XATTR)) overlay[name.slice(OVERLAY_XATTR.length)] = text;
    // pax records are text here (tar-stream): a binary value (security.capability) is left out
    // rather than written wrong, as layer.ts does when it applies one.
    else if (Buffer.from(text, 'utf8').equals(v)) pax[`SCHILY.xattr.${name}`] = text;
  }
  return { pax, overlay };
}

function unsupported(w: Walk, rel: string, overlay: Record<string, string>): void {
  // Renamed directories (redirect_dir) and metadata-only copy-ups (metacopy) keep their data in a
  // lower layer: the upper directory alone is not the change. scratchbox mounts neither; a kernel
  // built with them on by default would.
  for (const k of ['redirect', 'metacopy'])
    if (k in overlay) throw imageError('ENOTSUP', `commit: /${rel} in ${w.root} carries trusted.overlay.${k} (overlayfs ${k === 'redirect' ? 'redirect_dir' : 'metacopy'} is on): such an upper layer cannot be committed`, { path: `/${rel}` });
}

async function sameFile(p: string, st: Stats, e: RuntimeEntry): Promise<boolean> {
  if (e.type !== 'file' || !st.isFile() || st.size !== Buffer.byteLength(e.content)) return false;
  if (e.mode >= 0 && (st.mode & 0o7777) !== e.mode) return false;
  return (await readFile(p, 'utf8')) === e.content;
}

/** Appends the entries of the directory `rel` (and below); returns how many it appended. */
async function walkDir(w: Walk, rel: string): Promise<number> {
  const before = w.out.length;
  const dir = rel === '' ? w.root : `${w.root}/${rel}`;
  for (const name of (await readdir(dir)).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const p = `${dir}/${name}`;
    const st = await lstat(p);
    const runtime = w.overlay ? w.runtime.get(r) : undefined;
    if (w.overlay && st.isCharacterDevice() && Number(st.rdev) === 0) {
      w.out.push({ header: { ...headerOf(`${rel === '' ? '' : `${rel}/`}.wh.${name}`, st), type: 'file', size: 0, mode: 0o644 } });
      continue;
    }
    if (st.isDirectory()) {
      const { pax, overlay } = attrs(w, p);
      if (w.overlay) unsupported(w, r, overlay);
      const opaque = w.overlay && overlay.opaque === 'y';
      const at = w.out.length;
      w.out.push({ header: { ...headerOf(r, st), type: 'directory', ...(Object.keys(pax).length ? { pax } : {}) } });
      if (opaque) w.out.push({ header: { ...headerOf(`${r}/.wh..wh..opq`, st), type: 'file', size: 0, mode: 0o644 } });
      const children = await walkDir(w, r);
      // A mount point or /etc the runtime made, with nothing of the container's in it.
      if (runtime?.type === 'dir' && !opaque && children === 0) w.out.splice(at, 1);
      continue;
    }
    if (runtime && ((runtime.type === 'symlink' && st.isSymbolicLink() && (await readlink(p)) === runtime.target) || (await sameFile(p, st, runtime)))) continue;
    const header = headerOf(r, st);
    if (st.isSymbolicLink()) w.out.push({ header: { ...header, type: 'symlink', linkname: await readlink(p) } });
    else if (st.isFile()) {
      const { pax, overlay } = attrs(w, p);
      if (w.overlay) unsupported(w, r, overlay);
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? w.inodes.get(key) : undefined;
      if (first !== undefined) w.out.push({ header: { ...header, type: 'link', linkname: first, size: 0 } });
      else {
        if (st.nlink > 1) w.inodes.set(key, r);
        w.out.push({ header: { ...header, type: 'file', size: st.size, ...(Object.keys(pax).length ? { pax } : {}) }, from: p });
      }
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      w.out.push({ header: { ...header, type: st.isCharacterDevice() ? 'character-device' : 'block-device', ...devNumbers(st.rdev) } });
    } else if (st.isFIFO()) w.out.push({ header: { ...header, type: 'fifo' } });
    // sockets mean nothing in an image
  }
  return w.out.length - before;
}

/** The layer entries of an upper directory (overlay: true) or of a plain tree, in tar order. */
export async function treeEntries(root: string, overlay: boolean, runtime: ReadonlyMap<string, RuntimeEntry> = new Map()): Promise<LayerEntry[]> {
  const w: Walk = { root, overlay, runtime, xattr: await import('@napi-rs/xattr'), inodes: new Map(), out: [] };
  await walkDir(w, '');
  return w.out;
}

/** What commit needs of a container. */
export interface CommitSource {
  store: ImageStore;
  id: string;
  /** The kept directory (upper/ and work/ in it). */
  dir: string;
  /** The container's image, by manifest digest; absent for a container of a rootfs directory. */
  image?: string;
  /** Without an image: the rootfs, and the process, which become the base layer and config. */
  rootfs: string;
  process: { args: readonly string[]; env: readonly string[]; cwd: string; user: { uid: number; gid: number } };
  runtime: ReadonlyMap<string, RuntimeEntry>;
}

const CONFIG_KEYS: Readonly<Record<keyof ImageConfig, true>> = { entrypoint: true, cmd: true, env: true, workingDir: true, user: true, labels: true };

function checkConfig(c: unknown): CommitConfig {
  if (c === undefined) return {};
  const bad = (option: string, msg: string): never => {
    throw imageError('EINVAL', `invalid ${option}: ${msg}`, { option });
  };
  if (c === null || typeof c !== 'object' || Array.isArray(c)) bad('config', 'must be an object: { entrypoint, cmd, env, workingDir, user, labels }');
  const o = c as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(k in CONFIG_KEYS)) bad(`config.${k}`, `unknown field; known: ${Object.keys(CONFIG_KEYS).join(', ')}`);
  const strings = (k: string) => {
    const v = o[k];
    if (v !== undefined && (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))) bad(`config.${k}`, 'must be an array of strings');
  };
  strings('entrypoint');
  strings('cmd');
  strings('env');
  (o.env as string[] | undefined)?.forEach((e, i) => /^[^=\0]+=/.test(e) || bad(`config.env[${i}]`, `${JSON.stringify(e)} is not NAME=value`));
  if (o.workingDir !== undefined && (typeof o.workingDir !== 'string' || !o.workingDir.startsWith('/'))) bad('config.workingDir', 'must be an absolute path');
  if (o.user !== undefined && typeof o.user !== 'string') bad('config.user', 'must be a string such as "0:0"');
  if (o.labels !== undefined && (o.labels === null || typeof o.labels !== 'object' || Object.values(o.labels).some((v) => typeof v !== 'string')))
    bad('config.labels', 'must be an object of strings');
  return o as CommitConfig;
}

/** The container's changes as a new layer on its image (or on its rootfs), stored and tagged `ref`. */
export async function commitContainer(src: CommitSource, ref: string | undefined, opts: CommitOptions = {}): Promise<Image> {
  if (opts === null || typeof opts !== 'object') throw imageError('EINVAL', 'invalid options: must be { message?, config? }', { option: 'options' });
  if (opts.message !== undefined && typeof opts.message !== 'string') throw imageError('EINVAL', 'invalid message: must be a string', { option: 'message' });
  const override = checkConfig(opts.config);
  const { normalizeLocalRef } = await import('./oci.js');
  if (ref !== undefined) normalizeLocalRef(ref); // a bad ref fails before anything is written
  const upper = `${src.dir}/upper`;
  if (!(await lstat(upper).catch(() => null))?.isDirectory())
    throw imageError('ENOENT', `container ${src.id}: its kept upper layer ${upper} is gone`, { path: upper });
  const { store } = src;
  const base: Image | undefined = src.image === undefined ? undefined : await store.get(src.image);
  const changes = await treeEntries(upper, true, src.runtime);
  const rootfsEntries = base ? undefined : await treeEntries(src.rootfs, false);
  return store.locked(async () => {
    const layers: { mediaType: string; digest: string; size: number }[] = [];
    let config: ConfigDoc;
    if (base) {
      config = structuredClone(base.configDoc);
      for (const l of base.manifest.layers) layers.push({ mediaType: await store.layerMediaType(l.digest), digest: l.digest, size: l.size });
    } else {
      const plat = hostPlatform();
      const { uid, gid } = src.process.user;
      config = {
        architecture: plat.architecture,
        ...(plat.variant ? { variant: plat.variant } : {}),
        os: 'linux',
        config: { Cmd: [...src.process.args], Env: [...src.process.env], WorkingDir: src.process.cwd, User: `${uid}:${gid}` },
        rootfs: { type: 'layers', diff_ids: [] },
        history: [],
      };
      const l = await putLayer(store, rootfsEntries!);
      layers.push({ mediaType: MEDIA.ociLayer, ...l });
      config.rootfs.diff_ids.push(l.digest);
      config.history!.push({ created_by: `scratchbox: COPY ${src.rootfs} /` });
    }
    const top = await putLayer(store, changes);
    layers.push({ mediaType: MEDIA.ociLayer, ...top });
    config.rootfs.diff_ids.push(top.digest);
    const created = new Date().toISOString();
    config.created = created;
    config.history = [...(config.history ?? []), { created, created_by: `scratchbox commit ${src.id}`, ...(opts.message === undefined ? {} : { comment: opts.message }) }];
    const c = { ...(config.config ?? {}) };
    if (override.entrypoint !== undefined) c.Entrypoint = [...override.entrypoint];
    if (override.cmd !== undefined) c.Cmd = [...override.cmd];
    if (override.env !== undefined) c.Env = [...override.env];
    if (override.workingDir !== undefined) c.WorkingDir = override.workingDir;
    if (override.user !== undefined) c.User = override.user;
    if (override.labels !== undefined) c.Labels = { ...override.labels };
    config.config = c;
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = await store.putBlob(configBytes);
    const manifest = {
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBytes.length },
      layers,
    };
    return store.ingest({ bytes: Buffer.from(JSON.stringify(manifest)) }, async () => null, { refs: ref === undefined ? [] : [ref] });
  });
}
