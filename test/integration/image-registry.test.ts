/**
 * Pull from a real OCI distribution registry (Debian's docker-registry) that the test starts on
 * 127.0.0.1 with a config of its own, filled with skopeo. In front of it, a small proxy of the
 * test's own counts blob requests and, when asked, demands basic or bearer-token auth.
 * CI installs docker-registry and skopeo (.ci/run); without them this file fails, by design.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore, type ImageProgress } from '../../src-ts/index.js';
import { isRoot, rejection, ROOT_REASON } from './helpers.js';
import { layer, listing, ociLayout, writeArchive, type Layer } from './image-fixtures.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

type AuthMode = 'none' | 'basic' | 'bearer';

describe.skipIf(!isRoot)(`pull from a registry on loopback (${ROOT_REASON}; the layers hold whiteouts, which need root)`, () => {
  let work: string;
  let registry: ChildProcess;
  let regPort: number;
  let proxy: Server;
  let host: string; // the proxy, which the pulls go through
  let mode: AuthMode = 'none';
  /** A blob digest whose next full GET the proxy cuts off after 100,000 bytes (a dropped connection). */
  let cut: string | undefined;
  const TOKEN = randomBytes(8).toString('hex');
  const blobGets: { path: string; range?: string }[] = [];
  let layers: Layer[];

  beforeAll(async () => {
    work = mkdtempSync(`${tmpdir()}/sbx-reg-`);
    regPort = await freePort();
    writeFileSync(
      `${work}/config.yml`,
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/data\nhttp:\n  addr: 127.0.0.1:${regPort}\n`,
    );
    registry = spawn('docker-registry', ['serve', `${work}/config.yml`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    registry.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const failed = new Promise<never>((_, rej) => registry.on('error', rej));
    for (let i = 0; ; i++) {
      const up = await Promise.race([fetch(`http://127.0.0.1:${regPort}/v2/`).then((r) => r.ok, () => false), failed]);
      if (up) break;
      if (i > 100 || registry.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    proxy = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url.startsWith('/token')) {
        const ok = req.headers.authorization === `Basic ${Buffer.from('alice:secret').toString('base64')}` && new URL(url, 'http://x').searchParams.get('scope')?.startsWith('repository:');
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        return void res.end(ok ? JSON.stringify({ token: TOKEN }) : '{}');
      }
      const auth = req.headers.authorization;
      const allowed =
        mode === 'none' ||
        (mode === 'basic' && auth === `Basic ${Buffer.from('alice:secret').toString('base64')}`) ||
        (mode === 'bearer' && auth === `Bearer ${TOKEN}`);
      if (!allowed) {
        const challenge = mode === 'basic' ? 'Basic realm="test"' : `Bearer realm="http://${host}/token",service="test-registry",scope="repository:test:pull"`;
        res.writeHead(401, { 'www-authenticate': challenge });
        return void res.end();
      }
      if (url.includes('/blobs/')) blobGets.push({ path: url, ...(req.headers.range ? { range: req.headers.range } : {}) });
      const headers = { ...req.headers };
      delete headers.authorization;
      const up = request({ host: '127.0.0.1', port: regPort, path: url, method: req.method, headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        if (cut && url.endsWith(cut) && !req.headers.range) {
          cut = undefined;
          let sent = 0;
          r.on('data', (c: Buffer) => {
            const room = 100_000 - sent;
            if (room > 0) res.write(c.subarray(0, room));
            sent += c.length;
            if (sent >= 100_000) {
              r.destroy();
              // Close the connection once the bytes written so far have gone out: a short body.
              res.end(() => res.socket?.destroy());
            }
          });
          return;
        }
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;

    // The images: two layers (gzip, zstd) pushed as an OCI image; a multi-platform index; a docker v2s2 image.
    layers = [
      await layer([{ name: 'bin/', type: 'directory' }, { name: 'bin/hello', content: 'hello', mode: 0o755 }, { name: 'big', content: randomBytes(300_000) }], 'gzip'),
      await layer([{ name: '.wh.big', content: '' }, { name: 'new', content: 'new' }], 'zstd'),
    ];
    const push = (files: Map<string, Buffer>, name: string, extra: string[] = []) =>
      writeArchive(`${work}/${name.replace(':', '-')}.tar`, files).then(() =>
        execFileSync('skopeo', ['copy', '--insecure-policy', '--dest-tls-verify=false', ...extra, `oci-archive:${work}/${name.replace(':', '-')}.tar`, `docker://127.0.0.1:${regPort}/test/${name}`], { stdio: 'pipe' }),
      );
    await push(ociLayout(layers).files, 'two:1');
    await push(ociLayout(layers, { platforms: ['linux/arm64', 'linux/amd64', 'linux/s390x'] }).files, 'multi:1', ['--all']);
    await push(ociLayout([layers[0]!]).files, 'docker:1', ['--format', 'v2s2']);
  }, 120_000);

  afterAll(async () => {
    registry?.kill('SIGTERM');
    await new Promise((r) => (registry?.exitCode !== null ? r(null) : registry.once('exit', r)));
    await new Promise((r) => proxy?.close(r));
    rmSync(work, { recursive: true, force: true });
  });

  const store = (name: string) => ImageStore.open(`${work}/stores/${name}`);

  it('pulls by tag: every blob verified, layers unpacked in order, progress in bytes and layers', async () => {
    const s = await store('tag');
    const events: ImageProgress[] = [];
    blobGets.length = 0;
    const img = await s.pull(`${host}/test/two:1`, { insecure: true, onProgress: (e) => events.push(e) });
    expect(img.ref).toBe(`${host}/test/two:1`);
    expect(img.layers).toHaveLength(2);
    expect(img.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd']);
    const r = await s.resolve(img);
    expect(listing(r.layers[1]!).map((l) => l.split(' ')[3])).toEqual(['big', 'new']);
    expect(listing(r.layers[1]!)[0]).toMatch(/^c 0000 0:0 big 0:0/);
    expect(listing(r.layers[0]!).map((l) => l.split(' ')[3])).toEqual(['big', 'bin', 'bin/hello']);
    for (const [i, l] of img.layers.entries()) {
      const last = events.filter((e) => e.type === 'bytes' && e.phase === 'fetch' && e.index === i).at(-1);
      expect(last).toMatchObject({ bytes: l.size, size: l.size });
    }
    expect(blobGets.filter((g) => g.path.includes(img.layers[0]!.digest))).toHaveLength(1);
  });

  it('a second pull downloads nothing', async () => {
    const s = await store('tag');
    blobGets.length = 0;
    const events: ImageProgress[] = [];
    await s.pull(`${host}/test/two:1`, { insecure: true, onProgress: (e) => events.push(e) });
    expect(blobGets).toEqual([]);
    expect(events.filter((e) => e.type === 'layer').every((e) => e.type === 'layer' && e.cached)).toBe(true);
    expect(events.filter((e) => e.type === 'bytes')).toEqual([]);
  });

  it('pulls by digest, and refuses a digest the registry does not have', async () => {
    const s = await store('digest');
    const byTag = await (await store('tag')).get(`${host}/test/two:1`);
    const img = await s.pull(`${host}/test/two@${byTag.digest}`, { insecure: true });
    expect(img.digest).toBe(byTag.digest);
    expect(img.ref).toBe(`${host}/test/two@${byTag.digest}`);
    const e = await rejection(s.pull(`${host}/test/two@sha256:${'0'.repeat(64)}`, { insecure: true }));
    expect(e).toMatchObject({ code: 'ENOENT', stage: 'image' });
  });

  it('picks linux/<host arch> from a multi-platform index; pulls docker schema 2 media types', async () => {
    const s = await store('multi');
    const img = await s.pull(`${host}/test/multi:1`, { insecure: true });
    const want = process.arch === 'x64' ? 'amd64' : process.arch;
    expect(img.configDoc.architecture).toBe(want);
    const arm = await s.pull(`${host}/test/multi:1`, { insecure: true, platform: { os: 'linux', architecture: 'arm64' } });
    expect(arm.configDoc.architecture).toBe('arm64');
    expect(arm.digest).not.toBe(img.digest);
    const d = await s.pull(`${host}/test/docker:1`, { insecure: true });
    expect(d.manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(d.layers[0]!.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
    expect((await s.resolve(d)).layers).toHaveLength(1);
  });

  it('resumes a partial download with a Range request', async () => {
    const s = await store('resume');
    const src = await (await store('tag')).get(`${host}/test/two:1`);
    const l = src.layers[0]!;
    const full = readFileSync(src.store.blobPath(l.digest));
    writeFileSync(`${s.dir}/tmp/${l.digest.slice(7)}.partial`, full.subarray(0, 100_000));
    blobGets.length = 0;
    const img = await s.pull(`${host}/test/two:1`, { insecure: true });
    expect(img.digest).toBe(src.digest);
    expect(blobGets.find((g) => g.path.includes(l.digest))).toEqual({ path: expect.any(String), range: 'bytes=100000-' });
    expect(readdirSync(`${s.dir}/tmp`)).toEqual([]);
  });

  it('a connection dropped mid-blob is resumed with a Range request within the same pull', async () => {
    const s = await store('dropped');
    const src = await (await store('tag')).get(`${host}/test/two:1`);
    const l = src.layers[0]!;
    expect(l.size).toBeGreaterThan(100_000);
    cut = l.digest;
    blobGets.length = 0;
    const img = await s.pull(`${host}/test/two:1`, { insecure: true });
    expect(img.digest).toBe(src.digest);
    // The second request starts where the first one's bytes stopped arriving (at most the 100,000 sent).
    const ranges = blobGets.filter((g) => g.path.includes(l.digest)).map((g) => g.range);
    expect(ranges).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)]);
    const from = Number(/\d+/.exec(ranges[1]!)![0]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(100_000);
    expect(readdirSync(`${s.dir}/tmp`)).toEqual([]);
  });

  it('basic and bearer-token auth; refused without credentials', async () => {
    try {
      for (const m of ['basic', 'bearer'] as const) {
        mode = m;
        const s = await store(`auth-${m}`);
        const e = await rejection(s.pull(`${host}/test/two:1`, { insecure: true }));
        expect(e).toMatchObject({ code: 'ERR_IMAGE_AUTH', stage: 'image' });
        expect((await rejection(s.pull(`${host}/test/two:1`, { insecure: true, auth: { username: 'alice', password: 'wrong' } }))).code).toBe('ERR_IMAGE_AUTH');
        const img = await s.pull(`${host}/test/two:1`, { insecure: true, auth: { username: 'alice', password: 'secret' } });
        expect(img.layers).toHaveLength(2);
      }
    } finally {
      mode = 'none';
    }
  });

  it('refuses a corrupt blob and keeps nothing of it', async () => {
    const src = await (await store('tag')).get(`${host}/test/two:1`);
    const l = src.layers[1]!;
    const path = `${work}/data/docker/registry/v2/blobs/sha256/${l.digest.slice(7, 9)}/${l.digest.slice(7)}/data`;
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 0x55;
    writeFileSync(path, bad);
    try {
      const s = await store('corrupt');
      const e = await rejection(s.pull(`${host}/test/two:1`, { insecure: true }));
      expect(e).toMatchObject({ code: 'ERR_IMAGE_DIGEST', stage: 'image' });
      expect(readdirSync(`${s.dir}/blobs/sha256`)).not.toContain(l.digest.slice(7));
      expect(readdirSync(`${s.dir}/tmp`)).toEqual([]);
      expect(await s.list()).toEqual([]);
    } finally {
      writeFileSync(path, good);
    }
  });

  it('an unknown tag is ENOENT; https to a plain-http registry is a registry error', async () => {
    const s = await store('errors');
    expect(await rejection(s.pull(`${host}/test/none:1`, { insecure: true }))).toMatchObject({ code: 'ENOENT', stage: 'image' });
    expect(await rejection(s.pull(`${host}/test/two:1`))).toMatchObject({ code: 'ERR_IMAGE_REGISTRY', stage: 'image' });
  });
});
