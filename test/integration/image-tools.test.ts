/**
 * Round trips through tools nobody here wrote: an image made with buildah (from scratch, copy,
 * config, commit, push to docker-archive and oci-archive) imports and runs; images exported here
 * load into podman (docker-archive and oci-archive), skopeo reads the OCI layout, and podman runs
 * one (with runc: crun refuses this hybrid-cgroup host; containers.conf lowers podman's default
 * ulimits, see shared/REFERENCE.md). Each tool gets its own storage in a temp dir.
 * CI installs buildah, podman, skopeo and runc (.ci/run); without them this file fails, by design.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, ImageStore, type Image } from '../../src-ts/index.js';
import { buildDir, isRoot, ROOT_REASON } from './helpers.js';
import { listing } from './image-fixtures.js';
import { baseTree, CHANGES } from './commit-suite.js';

describe.skipIf(!isRoot)(`round trips through buildah, podman and skopeo (${ROOT_REASON})`, () => {
  let work: string;
  let store: ImageStore;
  let storage: string[];
  const env = () => ({ ...process.env, CONTAINERS_CONF: `${work}/containers.conf` });
  const buildah = (...args: string[]) => execFileSync('buildah', [...storage, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
  const podman = (...args: string[]) => execFileSync('podman', [...storage, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).toString().trim();

  beforeAll(async () => {
    work = mkdtempSync(`${tmpdir()}/sbx-tools-`);
    storage = ['--root', `${work}/storage`, '--runroot', `${work}/run`, '--storage-driver', 'vfs'];
    writeFileSync(
      `${work}/containers.conf`,
      '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n',
    );
    store = await ImageStore.open(`${work}/store`);
  });
  afterAll(() => {
    try {
      podman('rm', '--all', '--force');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('an image built with buildah imports from docker-archive and oci-archive, and runs', async () => {
    const c = buildah('from', 'scratch');
    buildah('copy', c, `${buildDir}probe`, '/probe');
    buildah('config', '--entrypoint', '["/probe"]', '--cmd', 'report', '--env', 'FROM=buildah', '--workingdir', '/', c);
    buildah('commit', '-q', c, 'bh-probe:1');
    buildah('rm', c);
    buildah('push', '-q', 'bh-probe:1', `docker-archive:${work}/bh-docker.tar:bh-probe:1`);
    buildah('push', '-q', 'bh-probe:1', `oci-archive:${work}/bh-oci.tar:bh-probe:1`);
    const fromDocker = await store.import(`${work}/bh-docker.tar`);
    const fromOci = await store.import(`${work}/bh-oci.tar`, { ref: 'bh-probe:oci' });
    for (const img of [fromDocker, fromOci]) {
      expect(img.config).toMatchObject({ entrypoint: ['/probe'], cmd: ['report'], env: ['FROM=buildah'], workingDir: '/' });
      const { layers, config } = await store.resolve(img);
      expect(layers).toHaveLength(1);
      const probe = readFileSync(`${buildDir}probe`);
      expect(listing(layers[0]!).map((l) => l.split(' ').slice(0, 4).join(' '))).toEqual(['f 0755 0:0 probe']);
      expect(readFileSync(`${layers[0]}/probe`).equals(probe)).toBe(true);
      // Test-only: a single layer is a rootfs as it is (the lead's overlay stacks several).
      const r = await Container.run({ rootfs: layers[0]!, args: [...config.entrypoint, ...config.cmd], env: config.env });
      expect((JSON.parse(r.stdout) as { env: string[] }).env).toContain('FROM=buildah');
    }
    // The same layer either way: one directory in the store.
    expect(fromDocker.layers[0]!.diffId).toBe(fromOci.layers[0]!.diffId);
    expect(fromDocker.ref).toMatch(/bh-probe:1$/);
  });

  describe('exports load into podman', () => {
    let img: Image;
    beforeAll(async () => {
      img = await store.scratch().copy(`${buildDir}probe`, '/probe').entrypoint(['/probe', 'stderr']).cmd(['from-scratchbox']).env({ A: 'b' }).build('sbx-probe:1');
    });

    it('podman loads a docker-archive and an oci-archive, with the config intact', async () => {
      await img.export(`${work}/sbx-docker.tar`, { format: 'docker-archive' });
      await img.export(`${work}/sbx-oci.tar`, { format: 'oci-archive' });
      expect(podman('load', '-q', '-i', `${work}/sbx-docker.tar`)).toContain('sbx-probe:1');
      const inspect = JSON.parse(podman('image', 'inspect', 'sbx-probe:1')) as { Config: { Entrypoint: string[]; Cmd: string[]; Env: string[] }; RootFS: { Layers: string[] } }[];
      expect(inspect[0]!.Config).toMatchObject({ Entrypoint: ['/probe', 'stderr'], Cmd: ['from-scratchbox'], Env: ['A=b'] });
      expect(inspect[0]!.RootFS.Layers).toEqual([img.layers[0]!.diffId]);
      podman('rmi', 'sbx-probe:1');
      expect(podman('load', '-q', '-i', `${work}/sbx-oci.tar`)).toMatch(/Loaded image/);
    });

    it('skopeo reads the OCI layout directory', async () => {
      await img.export(`${work}/sbx-oci-dir`, { format: 'oci-dir' });
      const info = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${work}/sbx-oci-dir`]).toString()) as { config: { Entrypoint: string[] }; rootfs: { diff_ids: string[] } };
      expect(info.config.Entrypoint).toEqual(['/probe', 'stderr']);
      expect(info.rootfs.diff_ids).toEqual([img.layers[0]!.diffId]);
    });

    it('a committed image (new files, whiteouts, an opaque directory) loads into podman, which sees the changed tree (runc)', async () => {
      const rootfs = baseTree();
      try {
        const base = await store.scratch().copy(rootfs, '/').cmd(['/bin/sh']).build('sbx-base:1');
        // CHANGES chowns a file: CAP_CHOWN, which the default capability set lacks.
        const c = await Container.create({ image: base, store, keep: true, capabilities: { add: ['CHOWN'] }, args: ['/bin/sh', '-c', CHANGES], stdio: 'ignore' });
        await c.start();
        expect(await c.wait()).toEqual({ exitCode: 0, signal: null });
        const img = await c.commit('sbx-committed:1', { config: { cmd: ['/bin/sh', '-c', 'cat /new /keep/replaced; ls /d; ls /keep; ls -l /mode /link'] } });
        await c.delete();
        rmSync(c.keptDir!, { recursive: true });
        await img.export(`${work}/committed.tar`, { format: 'docker-archive' });
        expect(podman('load', '-q', '-i', `${work}/committed.tar`)).toContain('sbx-committed:1');
        const out = execFileSync('podman', [...storage, 'run', '--rm', '--network', 'none', 'sbx-committed:1'], { env: env(), timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
        const [newText, replaced, only, ...rest] = out.trim().split('\n');
        expect([newText, replaced, only]).toEqual(['new', 'after', 'only']); // /d holds only what the container made
        expect(rest.slice(0, 2)).toEqual(['replaced', 'stays']); // keep/gone is whited out
        expect(rest[2]).toMatch(/\/link -> \/new$/); // ls sorts its arguments
        expect(rest[3]).toMatch(/^-rw------- +1 1000 +1000 .* \/mode$/);
      } finally {
        rmSync(rootfs, { recursive: true, force: true });
      }
    });

    it('podman runs the loaded image (runc)', async () => {
      podman('load', '-q', '-i', `${work}/sbx-docker.tar`);
      const out = execFileSync('podman', [...storage, 'run', '--rm', '--network', 'none', 'sbx-probe:1'], { env: env(), timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out.toString()).toBe('out');
    });
  });
});
