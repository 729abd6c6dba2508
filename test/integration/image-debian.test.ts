/**
 * A real distribution tree as a layer: a Debian bookworm minbase from debootstrap (built once into
 * test/.build/, ~30 s, from the Debian mirror), packed by GNU tar as a legacy docker save archive,
 * imported, compared entry by entry with the original (types, modes, owners, contents, links,
 * devices, hardlinks, mtimes, xattrs), and run. CI installs debootstrap (.ci/run).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, ImageStore } from '../../src-ts/index.js';
import { buildDir, isRoot, ROOT_REASON } from './helpers.js';
import { listing } from './image-fixtures.js';

const rootfs = `${buildDir}debian-bookworm`;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

describe.skipIf(!isRoot)(`a Debian rootfs from debootstrap as a layer (${ROOT_REASON}; debootstrap needs it too)`, () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(`${tmpdir()}/sbx-debian-`);
    if (!existsSync(rootfs)) {
      const tmp = `${rootfs}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      execFileSync('debootstrap', ['--variant=minbase', 'bookworm', tmp, 'http://deb.debian.org/debian'], { stdio: 'pipe' });
      renameSync(tmp, rootfs);
    }
  }, 600_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('imports exactly the tree GNU tar packed, and a shell runs in it', async () => {
    const save = `${work}/save`;
    mkdirSync(`${save}/layer`, { recursive: true });
    execFileSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', rootfs, '-cf', `${save}/layer/layer.tar`, '.']);
    const diffId = await sha256File(`${save}/layer/layer.tar`);
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] }, rootfs: { type: 'layers', diff_ids: [diffId] } });
    const configHex = createHash('sha256').update(config).digest('hex');
    writeFileSync(`${save}/${configHex}.json`, config);
    writeFileSync(`${save}/manifest.json`, JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['debian:bookworm'], Layers: ['layer/layer.tar'] }]));
    execFileSync('tar', ['-C', save, '-cf', `${work}/debian.tar`, '.']);
    rmSync(save, { recursive: true });

    const store = await ImageStore.open(`${work}/store`);
    const img = await store.import(`${work}/debian.tar`);
    expect(img.ref).toBe('debian:bookworm');
    const { layers } = await store.resolve('debian:bookworm');
    const want = listing(rootfs);
    expect(want.length).toBeGreaterThan(3000);
    expect(listing(layers[0]!)).toEqual(want);
    expect(want.some((l) => /^c 0666 0:0 dev\/null 1:3/.test(l))).toBe(true);
    expect(want.some((l) => /^f 4755 0:0 usr\/bin\/passwd /.test(l))).toBe(true);

    const r = await Container.run({ rootfs: layers[0]!, args: ['/bin/sh', '-c', 'cat /etc/debian_version; id -u; ls /usr/bin | wc -l'], env: { PATH: '/usr/bin:/bin' } });
    const [version, uid] = r.stdout.split('\n');
    expect(version).toBe(readFileSync(`${rootfs}/etc/debian_version`, 'utf8').trim());
    expect(uid).toBe('0');
  });
});
