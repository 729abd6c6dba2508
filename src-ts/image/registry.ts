/**
 * Pull from an OCI distribution registry (the v2 HTTP API): manifests by tag or digest, blobs,
 * anonymous, basic and bearer-token auth. Layers are fetched a few at a time, each into
 * tmp/<digest>.partial so that an interrupted download resumes with a Range request (within
 * the pull, and in the next pull after a crash); a blob the store has is never fetched again.
 */
import { createWriteStream } from 'node:fs';
import { stat, truncate, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { formatReference, MANIFEST_ACCEPT, MEDIA, parseReference, type Descriptor, type Platform, type Reference } from './oci.js';
import type { BlobFetcher, Image, ImageStore, ProgressFn } from './store.js';
import { digestHex, imageError, sha256 } from './util.js';

export interface RegistryAuth {
  username?: string;
  password?: string;
  /** A bearer token to send as it is (instead of username/password). */
  token?: string;
}

export interface PullOptions {
  onProgress?: ProgressFn;
  auth?: RegistryAuth;
  /** Plain http instead of https (a registry on loopback for tests, say). */
  insecure?: boolean;
  platform?: Platform;
  signal?: AbortSignal;
}

const MANIFEST_TYPES = new Set<string>([MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerList]);
const MAX_MANIFEST = 4 * 1024 * 1024;
const ATTEMPTS = 3;

export async function pullImage(store: ImageStore, ref: string, opts: PullOptions): Promise<Image> {
  const r = parseReference(ref);
  const client = new RegistryClient(r, opts);
  return store.locked(async () => {
    const wanted = r.digest ?? r.tag!;
    const top = await client.manifest(wanted);
    if (r.digest !== undefined && top.digest !== r.digest)
      throw imageError('ERR_IMAGE_DIGEST', `the registry's manifest for ${ref} hashes to ${top.digest}`);
    const fetch: BlobFetcher = async (d, onBytes) => {
      if (MANIFEST_TYPES.has(d.mediaType)) return (await client.manifest(d.digest)).iterable();
      return { file: await client.download(d, `${store.dir}/tmp/${digestHex(d.digest)}.partial`, onBytes) };
    };
    return store.ingest({ bytes: top.bytes, digest: top.digest, ...(top.mediaType ? { mediaType: top.mediaType } : {}) }, fetch, {
      refs: r.tag !== undefined || r.digest !== undefined ? [formatReference(r)] : [],
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.platform ? { platform: opts.platform } : {}),
    });
  });
}

class RegistryClient {
  private readonly base: string;
  private authorization: string | undefined;

  constructor(
    private readonly ref: Reference,
    private readonly opts: PullOptions,
  ) {
    const host = ref.registry === 'docker.io' ? 'registry-1.docker.io' : ref.registry;
    this.base = `${opts.insecure ? 'http' : 'https'}://${host}`;
    if (opts.auth?.token) this.authorization = `Bearer ${opts.auth.token}`;
  }

  /** GET with auth: on a 401, answers the challenge once (basic or bearer) and tries again. */
  private async request(path: string, headers: Record<string, string> = {}): Promise<Response> {
    const url = `${this.base}${path}`;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, {
          headers: { ...headers, ...(this.authorization ? { authorization: this.authorization } : {}) },
          redirect: 'follow',
          ...(this.opts.signal ? { signal: this.opts.signal } : {}),
        });
      } catch (e) {
        throw imageError('ERR_IMAGE_REGISTRY', `GET ${url}: ${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ''}`, { cause: e });
      }
      if (res.status === 401 && attempt === 0) {
        await res.body?.cancel();
        await this.authenticate(res.headers.get('www-authenticate') ?? '');
        continue;
      }
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        throw imageError('ERR_IMAGE_AUTH', `GET ${url}: ${res.status} ${res.statusText} (credentials refused or missing)`);
      }
      if (res.status === 404) {
        await res.body?.cancel();
        throw imageError('ENOENT', `GET ${url}: not found in the registry`, { path: `${this.ref.repository}` });
      }
      if (!res.ok) {
        const text = await res.text().catch(() => '');
        throw imageError('ERR_IMAGE_REGISTRY', `GET ${url}: ${res.status} ${res.statusText} ${text.slice(0, 200)}`.trim());
      }
      return res;
    }
  }

  private async authenticate(challenge: string): Promise<void> {
    const m = /^(\w+)\s*(.*)$/.exec(challenge.trim());
    const scheme = m?.[1]?.toLowerCase();
    const params: Record<string, string> = {};
    for (const p of (m?.[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) params[p[1]!.toLowerCase()] = p[2]!;
    const { username, password } = this.opts.auth ?? {};
    const basic = username !== undefined ? `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}` : undefined;
    if (scheme === 'basic') {
      if (!basic) throw imageError('ERR_IMAGE_AUTH', `${this.base} wants basic auth: pass auth: { username, password }`);
      this.authorization = basic;
      return;
    }
    if (scheme !== 'bearer' || !params.realm) throw imageError('ERR_IMAGE_AUTH', `${this.base} sent an auth challenge we do not understand: ${challenge || '(none)'}`);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? `repository:${this.ref.repository}:pull`);
    let res: Response;
    try {
      res = await fetch(url, { headers: basic ? { authorization: basic } : {}, ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
    } catch (e) {
      throw imageError('ERR_IMAGE_AUTH', `token request to ${url.origin}: ${(e as Error).message}`, { cause: e });
    }
    if (!res.ok) throw imageError('ERR_IMAGE_AUTH', `token request to ${url.origin}${url.pathname}: ${res.status} ${res.statusText}`);
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw imageError('ERR_IMAGE_AUTH', `the token server ${url.origin} sent no token`);
    this.authorization = `Bearer ${token}`;
  }

  /** A manifest or index by tag or digest, with its bytes as served (their sha256 is the digest). */
  async manifest(reference: string): Promise<{ bytes: Buffer; digest: string; mediaType?: string; iterable(): AsyncIterable<Buffer> }> {
    const res = await this.request(`/v2/${this.ref.repository}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    const len = Number(res.headers.get('content-length') ?? 0);
    if (len > MAX_MANIFEST) throw imageError('ERR_IMAGE_FORMAT', `the manifest for ${reference} is ${len} bytes, more than allowed`);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (bytes.length > MAX_MANIFEST) throw imageError('ERR_IMAGE_FORMAT', `the manifest for ${reference} is too large`);
    const digest = sha256(bytes);
    const said = res.headers.get('docker-content-digest');
    if (said && said.startsWith('sha256:') && said !== digest) throw imageError('ERR_IMAGE_DIGEST', `the registry says the manifest for ${reference} is ${said}, but it hashes to ${digest}`);
    const mediaType = res.headers.get('content-type')?.split(';')[0]?.trim();
    return { bytes, digest, ...(mediaType ? { mediaType } : {}), iterable: async function* () { yield bytes; } };
  }

  /**
   * Downloads a blob into `partial`, resuming from what is there already; returns the path once it
   * holds d.size bytes. The store then checks the digest and moves the file into place.
   */
  async download(d: Descriptor, partial: string, onBytes: (n: number) => void): Promise<string> {
    let lastError: unknown;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      let have = (await stat(partial).catch(() => null))?.size ?? 0;
      if (have > d.size) {
        await truncate(partial, 0);
        have = 0;
      }
      if (have === d.size && have > 0) return partial;
      if (have > 0) onBytes(have); // progress counts the resumed part too
      try {
        const res = await this.request(`/v2/${this.ref.repository}/blobs/${d.digest}`, have > 0 ? { range: `bytes=${have}-` } : {});
        const append = have > 0 && res.status === 206;
        if (!append && have > 0) onBytes(-have);
        let got = append ? have : 0;
        const body = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
        await pipeline(
          body,
          async function* (src: AsyncIterable<Buffer>) {
            for await (const c of src) {
              got += c.length;
              if (got > d.size) throw imageError('ERR_IMAGE_DIGEST', `blob ${d.digest} is longer than the ${d.size} bytes its descriptor says`);
              onBytes(c.length);
              yield c;
            }
          },
          createWriteStream(partial, { flags: append ? 'a' : 'w' }),
        );
        if (got === d.size) return partial;
        lastError = imageError('ERR_IMAGE_REGISTRY', `blob ${d.digest}: the connection ended after ${got} of ${d.size} bytes`);
      } catch (e) {
        if ((e as { code?: string }).code === 'ERR_IMAGE_DIGEST') {
          await rm(partial, { force: true });
          throw e;
        }
        if ((e as { code?: string }).code === 'ERR_IMAGE_AUTH' || (e as { code?: string }).code === 'ENOENT') throw e;
        lastError = e;
      }
    }
    throw lastError instanceof Error && 'stage' in lastError
      ? lastError
      : imageError('ERR_IMAGE_REGISTRY', `blob ${d.digest}: ${(lastError as Error)?.message ?? 'download failed'}`, { cause: lastError });
  }
}
