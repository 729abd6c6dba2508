/** Small pieces shared by the image modules: the error shape, digests, atomic writes. */
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { ContainerError, errnoNumber } from '../errors.js';

/** Error codes of the image store besides errno names (docs/images.md lists them). */
export type ImageErrorCode =
  | 'ERR_IMAGE_FORMAT' // not an archive/layout we know, or a malformed manifest/index/config
  | 'ERR_IMAGE_DIGEST' // a blob whose bytes do not hash to its name
  | 'ERR_IMAGE_UNSAFE' // an entry that would land outside the layer, or be written through a link
  | 'ERR_IMAGE_CORRUPT' // a truncated or corrupt tar, gzip or zstd stream
  | 'ERR_IMAGE_TOO_LARGE' // a layer larger than maxLayerSize once decompressed
  | 'ERR_IMAGE_PLATFORM' // an index without a manifest for linux/<host arch>
  | 'ERR_IMAGE_REGISTRY' // the registry answered with an error
  | 'ERR_IMAGE_AUTH' // the registry refused our credentials
  | 'ENOENT'
  | 'EINVAL'
  | 'EEXIST';

export function imageError(code: ImageErrorCode | string, message: string, extra: { path?: string; option?: string; cause?: unknown } = {}): ContainerError {
  const errno = errnoNumber(code);
  return new ContainerError(message, { code, stage: 'image', ...extra, ...(errno === undefined ? {} : { errno }) });
}

/** Wraps anything thrown by a library (tar, zlib, fs) into a ContainerError, keeping ours as they are. */
export function asImageError(e: unknown, fallbackCode: string, what: string, path?: string): ContainerError {
  if (e instanceof ContainerError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code) ? err.code : fallbackCode;
  return imageError(code, `${what}: ${err?.message ?? String(e)}`, { ...(path === undefined ? {} : { path }), cause: e });
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: unknown): s is string {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** The hex part of a sha256 digest, after checking its shape (it becomes a file name). */
export function digestHex(d: string, what = 'digest'): string {
  if (!isDigest(d)) throw imageError('ERR_IMAGE_FORMAT', `${what} ${JSON.stringify(d)} is not a sha256 digest`);
  return d.slice(7);
}

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function tempName(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Writes a file so that readers see the old content or the whole new one: temp, fsync, rename. */
export async function writeFileAtomic(path: string, data: Uint8Array | string, tmpDir: string): Promise<void> {
  const tmp = `${tmpDir}/${tempName()}`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/** Parses JSON that came from an image, turning a syntax error into ERR_IMAGE_FORMAT. */
export function parseJson(data: Uint8Array | string, what: string): unknown {
  try {
    return JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  } catch (e) {
    throw imageError('ERR_IMAGE_FORMAT', `${what} is not valid JSON`, { cause: e });
  }
}

/**
 * Runs fn over items with at most `limit` running at once. After a failure no new item starts, and
 * the first error is thrown once the running ones have settled: nothing goes on writing in the
 * store after the caller has released its lock.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.error;
  return out;
}

/** A stat rdev as major and minor (glibc's dev_t split; JS bit operators are 32-bit). */
export function devNumbers(rdev: number | bigint): { devmajor: number; devminor: number } {
  const r = Number(rdev);
  const hi = Math.floor(r / 2 ** 32);
  return { devmajor: ((r >>> 8) & 0xfff) | (hi & ~0xfff), devminor: (r & 0xff) | ((r >>> 12) & 0xfff00) };
}
