/**
 * The file-system side of isolation, seen from inside (the probe) and from the host: masked and
 * read-only paths, rlimits, oomScoreAdj, sysctl, devices, the size of the writable root and a
 * read-only root; and rootfs symlinks aimed at them (CVE-2019-19921 / CVE-2021-30465 class).
 */
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, defaultMounts, type ContainerOptions } from '../../src-ts/index.js';
import { hostInfo } from '../../src-ts/container/host.js';
import { EV, native, STDIO } from '../../src-ts/native/addon.js';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildPlan } from '../../src-ts/plan/plan.js';
import { DEFAULT_MASKED_PATHS } from '../../src-ts/spec/isolation.js';
import { buildSpec } from '../../src-ts/spec/spec.js';
import { children, expectMountMode, hostMountinfo, rejection, removeRootfs, ROOT_REASON, scratchRootfs, suiteSkip, treeDigest, type MountMode, type ProbeReport } from './helpers.js';

const TMPFS_MAGIC = 0x01021994;

/** The Node process's RLIMIT_NOFILE hard limit, when it cannot raise it (no CAP_SYS_RESOURCE). */
const ownNofileHard = ((): number | null => {
  const own = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  const capEff = BigInt(`0x${/^CapEff:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'}`);
  return (capEff & (1n << 24n)) !== 0n || !own || own === 'unlimited' ? null : Number(own);
})();

interface Hardening {
  writes: Record<string, string | null>;
  reads: Record<string, { errno: string | null; bytes: number; null: boolean; magic: number | null }>;
}

export function hardeningSuite(mode: MountMode): void {
  const skip = suiteSkip(mode);
  describe.skipIf(skip !== null)(`file-system isolation, mount namespace copied from the ${mode}'s (${skip ?? ROOT_REASON})`, () => {
    expectMountMode(mode);

    let rootfs: string;
    let mountsBefore: string;
    const made: string[] = [];
    const probe = async (args: string[], extra: Partial<ContainerOptions> = {}) =>
      JSON.parse((await Container.run({ rootfs, args: ['/probe', ...args], ...extra })).stdout);
    beforeAll(() => {
      rootfs = scratchRootfs(['probe']);
      mountsBefore = hostMountinfo();
    });
    afterAll(() => {
      removeRootfs(rootfs);
      for (const d of made) removeRootfs(d);
      expect(hostMountinfo()).toBe(mountsBefore);
      expect(children()).toEqual([]);
    });

    it('writes to /proc/sys, /proc/sysrq-trigger, /proc/irq and /sys fail; kcore, keys, timer_list read as /dev/null', async () => {
      const h = (await probe(['hardening'])) as Hardening;
      // Read-only: EROFS where the file exists on this kernel, ENOENT where it does not.
      for (const [path, errno] of Object.entries(h.writes)) expect(errno, path).toBe(existsSync(path) ? 'EROFS' : 'ENOENT');
      for (const path of ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/proc/latency_stats']) {
        const r = h.reads[path]!;
        if (!existsSync(path)) {
          expect(r.errno, path).toBe('ENOENT'); // nothing to mask on this kernel
          continue;
        }
        expect(r, path).toMatchObject({ errno: null, bytes: 0, null: true });
      }
      for (const path of ['/sys/firmware', '/proc/acpi', '/proc/scsi', '/proc/asound'])
        if (existsSync(path)) expect(h.reads[path], path).toMatchObject({ errno: null, bytes: 0, magic: TMPFS_MAGIC }); // an empty tmpfs
      // At least one of each kind is really masked here, or the test proves nothing.
      expect(h.reads['/proc/keys']!.null).toBe(true);
      expect(h.reads['/sys/firmware']!.magic).toBe(TMPFS_MAGIC);
    });

    it('maskedPaths: [] and readonlyPaths: [] turn them off (what the defaults protect against)', async () => {
      const h = (await probe(['hardening'], { maskedPaths: [], readonlyPaths: [] })) as Hardening;
      expect(h.writes['/proc/sys/kernel/hostname']).toBeNull(); // writable again (opened only, nothing written)
      expect(h.reads['/proc/keys']!.null).toBe(false);
      expect(h.reads['/sys/firmware']!.magic).not.toBe(TMPFS_MAGIC);
    });

    it('a custom list replaces the default one, and a missing path is skipped', async () => {
      const h = (await probe(['hardening'], { maskedPaths: ['/proc/timer_list', '/no/such/path'], readonlyPaths: ['/proc/irq'] })) as Hardening;
      expect(h.reads['/proc/timer_list']!.null).toBe(true);
      expect(h.reads['/proc/keys']!.null).toBe(false);
      expect(h.writes['/proc/sys/kernel/hostname']).toBeNull();
      expect(h.writes['/proc/irq/default_smp_affinity']).toBe(existsSync('/proc/irq/default_smp_affinity') ? 'EROFS' : 'ENOENT');
    });

    it('RLIMIT_NOFILE is 1024/1024 by default and what rlimits says when given', async () => {
      const def = (await probe(['report'])) as ProbeReport;
      expect(def.rlimits.NOFILE).toEqual([1024, 1024]);
      const custom = (await probe(['report'], {
        rlimits: [
          { type: 'RLIMIT_NOFILE', soft: 64, hard: 512 },
          { type: 'RLIMIT_CORE', soft: 0, hard: 'unlimited' },
        ],
      })) as ProbeReport;
      expect(custom.rlimits.NOFILE).toEqual([64, 512]);
      expect(custom.rlimits.CORE).toEqual([0, -1]); // -1: RLIM_INFINITY
    });

    it.skipIf(!ownNofileHard)(`a hard limit above the Node process's own is EPERM at validate (${ownNofileHard ? 'no CAP_SYS_RESOURCE here' : 'skipped: this process may raise its limits'})`, async () => {
      const e = await rejection(Container.create({ rootfs, args: ['/probe'], rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: ownNofileHard! + 1 }] }));
      expect(e).toMatchObject({ code: 'EPERM', stage: 'validate', option: 'rlimits[0].hard' });
      expect(children()).toEqual([]);
    });

    it('oomScoreAdj: the container gets it, the Node process keeps its own', async () => {
      const before = readFileSync('/proc/self/oom_score_adj', 'utf8');
      const c = await Container.create({ rootfs, args: ['/probe', 'sleep'], stdio: 'ignore', oomScoreAdj: 750 });
      try {
        await c.start();
        expect(readFileSync(`/proc/${c.pid}/oom_score_adj`, 'utf8').trim()).toBe('750');
      } finally {
        await c.delete();
      }
      expect(readFileSync('/proc/self/oom_score_adj', 'utf8')).toBe(before);
      // Lowering needs CAP_SYS_RESOURCE, which this process lacks: refused before the clone.
      const e = await rejection(Container.create({ rootfs, args: ['/probe'], oomScoreAdj: Number(before) - 1 }));
      expect(e).toMatchObject({ code: 'EACCES', stage: 'validate', option: 'oomScoreAdj' });
    });

    it('a namespaced sysctl is set inside, and the host keeps its value', async () => {
      const key = '/proc/sys/net/ipv4/ip_unprivileged_port_start';
      const host = readFileSync(key, 'utf8');
      const value = host.trim() === '0' ? '80' : '0';
      const r = await probe(['read', key], { sysctl: { 'net.ipv4.ip_unprivileged_port_start': value } });
      expect(r.content).toBe(`${value}\n`);
      expect(readFileSync(key, 'utf8')).toBe(host);
      // Still read-only afterwards: the sysctl is written before /proc/sys is made read-only.
      const w = await probe(['write', key, '1'], { sysctl: { 'net.ipv4.ip_unprivileged_port_start': value } });
      expect(w).toEqual({ ok: false, errno: 'EROFS' });
    });

    it('a sysctl that is not namespaced, or whose namespace the container shares, is refused at validate', async () => {
      for (const [sysctl, namespaces, code] of [
        [{ 'vm.overcommit_memory': '1' }, undefined, 'EPERM'],
        [{ 'kernel.randomize_va_space': '0' }, undefined, 'EPERM'],
        [{ 'net.ipv4.ip_forward': '1' }, { network: false }, 'EPERM'],
        [{ 'net.ipv4.ip_forward': '1' }, { network: 'shared' }, 'EPERM'],
        [{ 'kernel.shmmax': '1' }, { ipc: false }, 'EPERM'],
        [{ 'net/../../vm/x': '1' }, undefined, 'EINVAL'],
      ] as const) {
        const e = await rejection(Container.create({ rootfs, args: ['/probe'], sysctl, ...(namespaces ? { namespaces } : {}) } as ContainerOptions));
        expect(e, JSON.stringify(sysctl)).toMatchObject({ code, stage: 'validate', option: `sysctl.${Object.keys(sysctl)[0]}` });
      }
      expect(children()).toEqual([]);
    });

    it('devices: a node with its type, numbers, mode, uid and gid, in a new /dev subdirectory', async () => {
      const r = await probe(['stat', '/dev/net/tun'], { devices: [{ path: '/dev/net/tun', type: 'c', major: 10, minor: 200, fileMode: 0o600, uid: 12, gid: 34 }] });
      expect(r).toEqual({ errno: null, mode: 0o020600, uid: 12, gid: 34, rdev: '10:200' });
      const fifo = await probe(['stat', '/dev/myfifo'], { devices: [{ path: '/dev/myfifo', type: 'p' }] });
      expect(fifo).toMatchObject({ mode: 0o010666, uid: 0, gid: 0 });
      for (const [devices, option] of [
        [[{ path: '/etc/tun', type: 'c', major: 10, minor: 200 }], 'devices[0].path'],
        [[{ path: '/dev/../etc/x', type: 'c', major: 1, minor: 3 }], 'devices[0].path'],
        [[{ path: '/dev/x', type: 'x', major: 1, minor: 3 }], 'devices[0].type'],
        [[{ path: '/dev/x', type: 'c' }], 'devices[0].major'],
      ] as const) {
        const e = await rejection(Container.create({ rootfs, args: ['/probe'], devices } as unknown as ContainerOptions));
        expect(e).toMatchObject({ code: 'EINVAL', stage: 'validate', option });
      }
    });

    it('the writable root refuses to grow past writableSize (ENOSPC), 64 MiB by default', async () => {
      const small = await probe(['fill', '/big'], { writableSize: '4m' });
      expect(small.errno).toBe('ENOSPC');
      expect(small.bytes).toBeLessThanOrEqual(4 * 1024 * 1024);
      const def = await probe(['fill', '/big']);
      expect(def.errno).toBe('ENOSPC');
      expect(def.bytes).toBeGreaterThan(60 * 1024 * 1024);
      expect(def.bytes).toBeLessThanOrEqual(64 * 1024 * 1024);
      const e = await rejection(Container.create({ rootfs, args: ['/probe'], writableSize: '1k' }));
      expect(e).toMatchObject({ code: 'EINVAL', stage: 'validate', option: 'writableSize' });
    });

    it('readonlyRootfs: writes to the root fail with EROFS; /dev and /dev/shm stay writable', async () => {
      expect(await probe(['write', '/new', 'x'], { readonlyRootfs: true })).toEqual({ ok: false, errno: 'EROFS' });
      expect(await probe(['write', '/etc/hosts', 'x'], { readonlyRootfs: true })).toEqual({ ok: false, errno: 'EROFS' });
      expect(await probe(['write', '/dev/shm/x', 'x'], { readonlyRootfs: true })).toEqual({ ok: true });
      expect(await probe(['write', '/dev/x', 'x'], { readonlyRootfs: true })).toEqual({ ok: true });
    });

    it('CVE-2019-19921 / CVE-2021-30465 class: a readonlyPaths or maskedPaths entry through a rootfs symlink to the host is ELOOP before clone', async () => {
      const target = scratchRootfs([]);
      made.push(target);
      writeFileSync(`${target}/secret`, 'host file\n');
      const evil = scratchRootfs(['probe']);
      made.push(evil);
      symlinkSync(target, `${evil}/data`);
      const before = treeDigest(target);
      for (const opts of [{ readonlyPaths: ['/data/secret'] }, { maskedPaths: ['/data/secret'] }, { maskedPaths: ['/data'] }]) {
        const e = await rejection(Container.create({ rootfs: evil, args: ['/probe'], ...opts }));
        expect(e, JSON.stringify(opts)).toMatchObject({ code: 'ELOOP', stage: 'validate', path: '/data' });
      }
      expect(treeDigest(target)).toBe(before);
      expect(hostMountinfo()).toBe(mountsBefore);
    });

    it('the same symlink appearing after the check: the child refuses it (ELOOP at stage security), the host unchanged', async () => {
      // Skip create()'s check on purpose: spawn the plan for a rootfs whose /data is a symlink to
      // a host directory, as if it had been swapped in after the check.
      const target = scratchRootfs([]);
      made.push(target);
      const evil = scratchRootfs(['probe']);
      made.push(evil);
      symlinkSync(target, `${evil}/data`);
      for (const opts of [{ readonlyPaths: ['/data'] }, { maskedPaths: ['/data'] }]) {
        const spec = buildSpec({ rootfs: evil, args: ['/probe'], stdio: 'ignore', ...opts }, () => 'symlinkrace');
        const plan = buildPlan(spec, hostInfo(), { bindSourceIsFile: spec.mounts.map(() => false) });
        const events: number[][] = [];
        await new Promise<void>((resolve) => {
          new (native().Child)(encodePlan(plan), [STDIO.IGNORE, STDIO.IGNORE, STDIO.IGNORE], (ev, a, b, c) => {
            events.push([ev, a, b, c]);
            if (ev === EV.EXIT) resolve();
          });
        });
        const err = events.find((e) => e[0] === EV.ERROR);
        expect(err, JSON.stringify(opts)).toBeDefined();
        expect(plan.ops[err![2]!]!.kind).toBe(opts.readonlyPaths ? 'readonly-path' : 'mask-path');
        expect(err![3]).toBe(40); // ELOOP
      }
      expect(hostMountinfo()).toBe(mountsBefore);
    });

    it('CVE-2019-19921 / CVE-2021-30465: a mount destination through .. is refused at validate', async () => {
      for (const destination of ['/dev/../../etc', '/proc/../../../host', '/x/./y']) {
        const e = await rejection(Container.create({ rootfs, args: ['/probe'], mounts: [...defaultMounts, { destination, type: 'tmpfs' }] }));
        expect(e, destination).toMatchObject({ code: 'EINVAL', stage: 'validate', option: `mounts[${defaultMounts.length}].destination` });
      }
      for (const p of ['/proc/../etc', 'proc/kcore']) {
        expect(await rejection(Container.create({ rootfs, args: ['/probe'], maskedPaths: [p] }))).toMatchObject({ code: 'EINVAL', stage: 'validate', option: 'maskedPaths[0]' });
        expect(await rejection(Container.create({ rootfs, args: ['/probe'], readonlyPaths: [p] }))).toMatchObject({ code: 'EINVAL', stage: 'validate', option: 'readonlyPaths[0]' });
      }
    });

    it.each([
      ['/dev/shm -> /tmp', (d: string) => (mkdirSync(`${d}/dev`), symlinkSync('/tmp', `${d}/dev/shm`))],
      ['/dev/pts -> /dev/pts', (d: string) => (mkdirSync(`${d}/dev`), symlinkSync('/dev/pts', `${d}/dev/pts`))],
    ])('a rootfs with %s is contained: the /dev tmpfs covers it, the host is unchanged', async (_name, setup) => {
      const dir = scratchRootfs(['probe']);
      made.push(dir);
      setup(dir);
      const before = treeDigest(dir);
      const r = (await probe(['report'], { rootfs: dir })) as ProbeReport;
      expect(r.devEntries).toMatchObject({ shm: 'd', pts: 'd' }); // directories in the container's /dev tmpfs
      const shm = r.mountinfo.split('\n').find((l) => l.split(' ')[4] === '/dev/shm');
      expect(shm).toMatch(/ - tmpfs shm /);
      expect(treeDigest(dir)).toBe(before);
      expect(hostMountinfo()).toBe(mountsBefore);
    });

    it('file masks need the container\'s /dev/null: without a /dev of ours it is a typed error, not a host node', async () => {
      const noDev = defaultMounts.filter((m) => !m.destination.startsWith('/dev'));
      const e = await rejection(Container.create({ rootfs, args: ['/probe'], mounts: noDev, maskedPaths: ['/proc/keys'] }));
      expect(e).toMatchObject({ code: 'ENODEV', stage: 'security', path: '/proc/keys' });
      // Directory masks do not need it.
      const h = (await probe(['hardening'], { mounts: noDev, maskedPaths: ['/sys/firmware'] })) as Hardening;
      expect(h.reads['/sys/firmware']!.magic).toBe(TMPFS_MAGIC);
      expect(DEFAULT_MASKED_PATHS).toContain('/sys/firmware');
      expect(statSync('/sys/firmware').isDirectory()).toBe(true);
    });
  });
}
