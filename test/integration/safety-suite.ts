/**
 * Bad input is rejected before anything is cloned; symlinks in the rootfs never redirect a mount
 * or a runtime file onto the host (CVE-2019-19921 / CVE-2021-30465 class); and nothing is left
 * behind on the host or in the rootfs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMountMode, suiteSkip, type MountMode } from './helpers.js';
import { Container, defaultMounts, type ContainerOptions } from '../../src-ts/index.js';
import { hostInfo } from '../../src-ts/container/host.js';
import { EV, native, STDIO } from '../../src-ts/native/addon.js';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildPlan } from '../../src-ts/plan/plan.js';
import { buildSpec } from '../../src-ts/spec/spec.js';
import { children, hostMountinfo, isRoot, removeRootfs, ROOT_REASON, scratchRootfs, treeDigest } from './helpers.js';
import { rejection } from './helpers.js';

const OVERLAYFS_MAGIC = 0x794c7630;
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;


export function safetySuite(mode: MountMode): void {
  const skip = suiteSkip(mode);
  describe.skipIf(skip !== null)(`safety, mount namespace copied from the ${mode}'s (${skip ?? ROOT_REASON})`, () => {
    expectMountMode(mode);

    const made: string[] = [];
    const rootfsWith = (setup: (dir: string) => void) => {
      const dir = scratchRootfs(['probe']);
      made.push(dir);
      setup(dir);
      return dir;
    };
    let mountsBefore: string;
    beforeAll(() => {
      mountsBefore = hostMountinfo();
    });
    afterAll(() => {
      for (const d of made) removeRootfs(d);
      expect(hostMountinfo()).toBe(mountsBefore);
    });

    it('rejects bad options with typed errors at stage validate, before any clone', async () => {
      const rootfs = rootfsWith(() => {});
      const cases: [Partial<ContainerOptions>, string, string][] = [
        [{ rootfs: 'relative/dir' }, 'EINVAL', 'rootfs'],
        [{ rootfs: '/no/such/rootfs' }, 'ENOENT', 'rootfs'],
        [{ rootfs: `${rootfs}/probe` }, 'ENOTDIR', 'rootfs'],
        [{ args: [] }, 'EINVAL', 'args'],
        [{ mounts: [{ destination: 'proc', type: 'proc' }] }, 'EINVAL', 'mounts[0].destination'],
        [{ mounts: [{ destination: '/x/../../etc', type: 'tmpfs' }] }, 'EINVAL', 'mounts[0].destination'],
        [{ mounts: [{ destination: '/x', type: 'tmpfs', options: ['bogus'] }] }, 'EINVAL', 'mounts[0].options[0]'],
        [{ mounts: [{ destination: '/x', type: 'bind', source: '/no/such/source' }] }, 'ENOENT', 'mounts[0].source'],
        [{ hostname: 'not_valid!' }, 'EINVAL', 'hostname'],
        [{ namespaces: { user: true } }, 'ENOTSUP', 'namespaces.user'],
      ];
      for (const [opts, code, option] of cases) {
        const e = await rejection(Container.create({ rootfs, args: ['/probe'], ...opts } as ContainerOptions));
        expect(e, JSON.stringify(opts)).toMatchObject({ code, stage: 'validate', option });
      }
      expect(children()).toEqual([]);
    });

    it.each([
      ['/proc -> /', (d: string) => symlinkSync('/', `${d}/proc`), '/proc'],
      ['/dev -> /etc', (d: string) => symlinkSync('/etc', `${d}/dev`), '/dev'],
      ['/sys -> ../../../../sys', (d: string) => symlinkSync('../../../../sys', `${d}/sys`), '/sys'],
      ['/etc -> /tmp', (d: string) => symlinkSync('/tmp', `${d}/etc`), '/etc'],
    ])('a malicious symlink %s is ELOOP before clone', async (_name, setup, path) => {
      const rootfs = rootfsWith(setup);
      const before = treeDigest(rootfs);
      const e = await rejection(Container.create({ rootfs, args: ['/probe'] }));
      expect(e).toMatchObject({ code: 'ELOOP', stage: 'validate', path });
      expect(treeDigest(rootfs)).toBe(before);
      expect(hostMountinfo()).toBe(mountsBefore);
    });

    it('a symlink that appears after the check still cannot redirect a mount (the child covers it)', async () => {
      // Skip the pre-clone check on purpose: build and encode the plan for a rootfs whose /proc is a
      // symlink to /, and spawn it directly, as if the symlink appeared after create() checked. The
      // child makes its mount points in the overlay's empty upper layer, which covers the symlink:
      // /proc is mounted inside the container, and nothing happens on the host.
      const rootfs = rootfsWith((d) => symlinkSync('/', `${d}/proc`));
      const spec = buildSpec({ rootfs, args: ['/probe'], stdio: 'ignore' }, () => 'racetest');
      const plan = buildPlan(spec, hostInfo(), { bindSourceIsFile: spec.mounts.map(() => false) });
      const events: number[][] = [];
      let kill = () => {};
      const exited = new Promise<void>((resolve) => {
        const child = new (native().Child)(encodePlan(plan), [STDIO.IGNORE, STDIO.IGNORE, STDIO.IGNORE], (ev, a, b, c) => {
          events.push([ev, a, b, c]);
          if (ev === EV.READY) {
            const mounts = readFileSync(`/proc/${child.pid}/mountinfo`, 'utf8').split('\n');
            const proc = mounts.find((l) => l.split(' ')[4] === '/proc');
            expect(proc).toMatch(/ - proc proc /);
            kill();
          }
          if (ev === EV.EXIT) resolve();
        });
        kill = () => child.kill(9);
      });
      await exited;
      expect(events.some((e) => e[0] === EV.READY)).toBe(true);
      expect(events.some((e) => e[0] === EV.ERROR)).toBe(false);
      expect(hostMountinfo()).toBe(mountsBefore);
    });

    it('the addon accepts a plan whose process has an empty environment (envp encoded as no string)', async () => {
      const rootfs = rootfsWith(() => {});
      const spec = buildSpec({ rootfs, args: ['/probe', 'exit', '0'], stdio: 'ignore' }, () => 'emptyenv');
      const plan = buildPlan(spec, hostInfo(), { bindSourceIsFile: spec.mounts.map(() => false) });
      plan.ops = plan.ops.map((op) =>
        op.kind === 'exec' ? { ...op, env: [] } : op.kind === 'resolve-exec' ? { ...op, searchPath: null } : op,
      );
      const events: number[][] = [];
      await new Promise<void>((resolve) => {
        const child = new (native().Child)(encodePlan(plan), [STDIO.IGNORE, STDIO.IGNORE, STDIO.IGNORE], (ev, a, b, c) => {
          events.push([ev, a, b, c]);
          if (ev === EV.READY) child.start();
          if (ev === EV.EXIT) resolve();
        });
      });
      expect(events.some((e) => e[0] === EV.ERROR)).toBe(false);
      expect(events.find((e) => e[0] === EV.EXIT)?.slice(0, 3)).toEqual([EV.EXIT, 0, 0]); // exit code 0, no signal
    });

    it('a symlinked /etc/hosts in the image is replaced in the container, its host target untouched', async () => {
      const sentinel = `${made[0] ?? '/tmp'}-sentinel`;
      writeFileSync(sentinel, 'host file\n');
      made.push(sentinel);
      const rootfs = rootfsWith((d) => {
        mkdirSync(`${d}/etc`);
        symlinkSync(sentinel, `${d}/etc/hosts`);
        symlinkSync(sentinel, `${d}/etc/resolv.conf`);
      });
      const before = treeDigest(rootfs);
      const r = JSON.parse((await Container.run({ rootfs, args: ['/probe'], hostname: 'h' })).stdout);
      expect(r.etc.hosts).toContain('localhost h');
      expect(readFileSync(sentinel, 'utf8')).toBe('host file\n');
      expect(treeDigest(rootfs)).toBe(before);
    });

    it('user binds on /etc or its files win, and nothing is written into the host directories', async () => {
      const rootfs = rootfsWith(() => {});
      const hostEtc = `${rootfs}-etc`;
      mkdirSync(hostEtc);
      made.push(hostEtc);
      writeFileSync(`${hostEtc}/hosts`, '10.0.0.1 fromhost\n');
      const digest = treeDigest(hostEtc);
      // A file bound on /etc/hosts (what podman and containerd do) covers the runtime's file.
      const file = JSON.parse(
        (await Container.run({ rootfs, args: ['/probe'], mounts: [...defaultMounts, { destination: '/etc/hosts', type: 'bind', source: `${hostEtc}/hosts`, options: ['bind', 'ro'] }] })).stdout,
      );
      expect(file.etc.hosts).toBe('10.0.0.1 fromhost\n');
      expect(file.etc.hostname).not.toBeNull();
      // A host directory bound on /etc is shown as it is, and never written to.
      const dir = JSON.parse(
        (await Container.run({ rootfs, args: ['/probe'], mounts: [...defaultMounts, { destination: '/etc', type: 'bind', source: hostEtc, options: ['rbind'] }] })).stdout,
      );
      expect(dir.etc.hosts).toBe('10.0.0.1 fromhost\n');
      expect(treeDigest(hostEtc)).toBe(digest);
      // A mount point that would have to be created inside a bound host directory is refused.
      const e = await rejection(
        Container.create({
          rootfs,
          args: ['/probe'],
          mounts: [...defaultMounts, { destination: '/data', type: 'bind', source: hostEtc }, { destination: '/data/sub', type: 'tmpfs' }],
        }),
      );
      expect(e).toMatchObject({ code: 'ENOENT', stage: 'validate', path: '/data/sub' });
      expect(treeDigest(hostEtc)).toBe(digest);
    });

    it('writes inside the container land in the overlay, never in the rootfs on disk', async () => {
      const rootfs = rootfsWith((d) => writeFileSync(`${d}/image-file`, 'from the image'));
      const before = treeDigest(rootfs);
      const r = await Container.run({ rootfs, args: ['/probe', 'write', '/new-file', 'x'] });
      expect(JSON.parse(r.stdout)).toEqual({ ok: true });
      const over = await Container.run({ rootfs, args: ['/probe', 'write', '/image-file', 'clobbered'] });
      expect(JSON.parse(over.stdout)).toEqual({ ok: true });
      expect(existsSync(`${rootfs}/new-file`)).toBe(false);
      expect(treeDigest(rootfs)).toBe(before);
    });

    it('/proc/sys, /sys and bind mounts: the default container cannot write them', async () => {
      const rootfs = rootfsWith(() => {});
      // /sys is mounted read-only: writes fail with EROFS.
      const sys = JSON.parse((await Container.run({ rootfs, args: ['/probe', 'write', '/sys/kernel/mm/ksm/run', '0'] })).stdout);
      expect(sys).toEqual({ ok: false, errno: 'EROFS' });
      // /proc/sys is one of the default readonlyPaths (it was writable before them).
      const procSys = JSON.parse((await Container.run({ rootfs, args: ['/probe', 'write', '/proc/sys/kernel/hostname', 'x'] })).stdout);
      expect(procSys).toEqual({ ok: false, errno: 'EROFS' });
      // A bind mount with ro is read-only inside.
      const data = `${rootfs}-data`;
      mkdirSync(data);
      made.push(data);
      writeFileSync(`${data}/f`, 'host data');
      const ro = await Container.run({
        rootfs,
        args: ['/probe', 'write', '/data/f', 'x'],
        mounts: [...defaultMounts, { destination: '/data', type: 'bind', source: data, options: ['rbind', 'ro'] }],
      });
      expect(JSON.parse(ro.stdout)).toEqual({ ok: false, errno: 'EROFS' });
      expect(readFileSync(`${data}/f`, 'utf8')).toBe('host data');
      // An atime mode on a bind (a value in mount_setattr, not a bit) is applied, not refused.
      for (const atime of ['noatime', 'strictatime']) {
        const r = await Container.run({
          rootfs,
          args: ['/probe'],
          mounts: [...defaultMounts, { destination: '/data', type: 'bind', source: data, options: ['bind', atime] }],
        });
        const line = (JSON.parse(r.stdout).mountinfo as string).split('\n').find((l) => l.split(' ')[4] === '/data');
        expect(line, atime).toBeDefined();
        if (atime === 'noatime') expect(line!.split(' ')[5]).toContain('noatime');
        else expect(line!.split(' ')[5]).not.toMatch(/relatime|noatime/);
      }
    });

    it('bind mounts do not propagate: what either side mounts in a shared host tree after the bind stays there', async () => {
      const rootfs = rootfsWith(() => {});
      // A shared mount on the host: a clone of it (the bind) is in its peer group unless made private.
      const src = mkdtempSync(`${tmpdir()}/sbx-shared-`);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'sbx-shared', src]);
      try {
        execFileSync('mount', ['--make-shared', src]);
        mkdirSync(`${src}/from-container`);
        mkdirSync(`${src}/from-host`);
        const mounts = [...defaultMounts, { destination: '/data', type: 'bind', source: src }];
        // container → host. Mounting needs CAP_SYS_ADMIN, which the default set lacks, and the
        // mount calls, which the default seccomp profile refuses: both given here (this test is
        // about propagation).
        const r = await Container.run({ rootfs, mounts, capabilities: { add: ['SYS_ADMIN'] }, seccomp: 'unconfined', args: ['/probe', 'mount-tmpfs', '/data/from-container'] });
        expect(JSON.parse(r.stdout)).toEqual({ ok: true });
        expect(hostMountinfo()).not.toContain(`${src}/from-container`);
        // host → container
        const c = await Container.create({ rootfs, mounts, args: ['/probe', 'sleep'], stdio: 'ignore' });
        await c.start();
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'sbx-from-host', `${src}/from-host`]);
        const inside = readFileSync(`/proc/${c.pid}/mountinfo`, 'utf8');
        await c.delete();
        expect(inside).toMatch(/ \/data /);
        expect(inside).not.toContain('/data/from-host');
      } finally {
        execFileSync('umount', ['-R', src]);
        rmSync(src, { recursive: true });
      }
    });

    it('a process with CAP_SYS_ADMIN that detaches every mount under its root finds no host file system', async () => {
      const rootfs = rootfsWith(() => {});
      // umount2 needs CAP_SYS_ADMIN, setns into a mount namespace CAP_SYS_CHROOT too, and both are
      // refused by the default seccomp profile: given here, the default has none of it (the next test).
      const r = await Container.run({ rootfs, capabilities: { add: ['SYS_ADMIN', 'SYS_CHROOT'] }, seccomp: 'unconfined', args: ['/probe', 'peel'] });
      const peel = JSON.parse(r.stdout) as { levels: { magic: number; dev: string; entries: string[] }[]; stop: string };
      const dev = statSync('/').dev; // the host's root file system
      const hostRoot = `${(dev >> 8) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
      for (const l of peel.levels) expect(l.dev).not.toBe(hostRoot);
      expect(peel.levels[0]).toMatchObject({ magic: OVERLAYFS_MAGIC, entries: ['dev', 'etc', 'probe', 'proc', 'sys'] });
      // Under the overlay: in the base's copy, the overlay's upper tmpfs and the base's empty
      // tmpfs; in both modes last the kernel's initial rootfs (the namespace root: EINVAL).
      const below = peel.levels.slice(1);
      if (mode === 'base') expect(below.slice(0, 2).map((l) => [l.magic, l.entries])).toEqual([[TMPFS_MAGIC, ['upper', 'work']], [TMPFS_MAGIC, []]]);
      expect(below).toHaveLength(mode === 'base' ? 3 : 1);
      for (const l of below) expect([TMPFS_MAGIC, RAMFS_MAGIC]).toContain(l.magic);
      expect(peel.stop).toBe('EINVAL');
    });

    it('the default capabilities refuse what root could do: mount, mknod of a block device, peeling the root (EPERM)', async () => {
      const rootfs = rootfsWith(() => {});
      const run = async (...args: string[]) => JSON.parse((await Container.run({ rootfs, args: ['/probe', ...args] })).stdout) as unknown;
      expect(await run('mount-tmpfs', '/etc')).toEqual({ ok: false, errno: 'EPERM' }); // no CAP_SYS_ADMIN
      expect(await run('mknod', '/loop0', 'block')).toEqual({ ok: false, errno: 'EPERM' }); // no CAP_MKNOD
      expect(await run('mknod', '/null2')).toEqual({ ok: false, errno: 'EPERM' });
      const peel = (await run('peel')) as { levels: unknown[]; stop: string };
      expect(peel.stop).toBe('EPERM'); // the first umount2 of "/" already
      expect(peel.levels).toHaveLength(1);
      // The same container given CAP_MKNOD makes the node (so the EPERM above is the capability's).
      const withMknod = await Container.run({ rootfs, capabilities: { add: ['MKNOD'] }, args: ['/probe', 'mknod', '/loop0', 'block'] });
      expect(JSON.parse(withMknod.stdout)).toEqual({ ok: true });
    });
  });
}
