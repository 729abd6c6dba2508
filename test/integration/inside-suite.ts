/**
 * What a process sees inside a default container, reported by the probe (test/fixtures/probe.c)
 * running as the container's PID 1.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../../src-ts/spec/isolation.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMountMode, suiteSkip, type MountMode } from './helpers.js';
import { Container, parseMountinfo, type MountInfo } from '../../src-ts/index.js';
import { isRoot, OCI_DEFAULT_CAPS, removeRootfs, ROOT_REASON, scratchRootfs, type ProbeReport } from './helpers.js';

async function report(rootfs: string, extra: Partial<Parameters<typeof Container.run>[0]> = {}): Promise<ProbeReport> {
  const r = await Container.run({ rootfs, args: ['/probe', 'report'], ...extra });
  return JSON.parse(r.stdout) as ProbeReport;
}

export function insideSuite(mode: MountMode): void {
  const skip = suiteSkip(mode);
  describe.skipIf(skip !== null)(`inside a default container, mount namespace copied from the ${mode}'s (${skip ?? ROOT_REASON})`, () => {
    expectMountMode(mode);

    let rootfs: string;
    let r: ProbeReport;
    let mounts: MountInfo[];
    const at = (p: string) => {
      const m = mounts.filter((x) => x.mountPoint === p);
      expect(m, `a mount at ${p}`).toHaveLength(1);
      return m[0]!;
    };

    beforeAll(async () => {
      rootfs = scratchRootfs(['probe']);
      r = await report(rootfs, { hostname: 'box' });
      mounts = parseMountinfo(r.mountinfo);
    });
    afterAll(() => removeRootfs(rootfs));

    it('is PID 1 with no parent in its PID namespace, and sees no host process', () => {
      expect(r.pid).toBe(1);
      expect(r.ppid).toBe(0);
      expect(r.procPids).toEqual([1]);
    });

    it('has the hostname it was given, in uname and /etc/hostname', () => {
      expect(r.hostname).toBe('box');
      expect(r.etc.hostname).toBe('box\n');
      expect(r.etc.hosts).toContain('127.0.0.1\tlocalhost box');
    });

    it('has only fds 0, 1 and 2 open', () => {
      expect(r.fds).toEqual([0, 1, 2]);
    });

    it('has only loopback, and it is up, in its new network namespace', () => {
      expect(r.netIfaces).toEqual(['lo']);
      expect(r.loUp).toBe(true);
    });

    it('has /etc/mtab -> /proc/mounts and a resolv.conf', () => {
      expect(r.mtab).toBe('/proc/mounts');
      expect(typeof r.etc.resolvConf).toBe('string');
    });

    it('sees only the image file plus what the runtime adds at its root', () => {
      expect(r.rootEntries).toEqual(['dev', 'etc', 'probe', 'proc', 'sys']);
    });

    it('has the default device nodes and /dev links', () => {
      expect(r.devEntries).toMatchObject({
        null: 'c 1:3',
        zero: 'c 1:5',
        full: 'c 1:7',
        random: 'c 1:8',
        urandom: 'c 1:9',
        tty: 'c 5:0',
        fd: 'l -> /proc/self/fd',
        stdin: 'l -> /proc/self/fd/0',
        stdout: 'l -> /proc/self/fd/1',
        stderr: 'l -> /proc/self/fd/2',
        ptmx: 'l -> pts/ptmx',
        core: 'l -> /proc/kcore',
        pts: 'd',
        shm: 'd',
        mqueue: 'd',
      });
    });

    it('mounts the libcontainer defaults with their types and flags', () => {
      expect(at('/').fstype).toBe('overlay');
      expect(at('/proc').fstype).toBe('proc');
      const dev = at('/dev');
      expect(dev.fstype).toBe('tmpfs');
      expect(dev.options).toContain('nosuid');
      expect(dev.options).not.toContain('relatime'); // strictatime
      expect(dev.superOptions).toEqual(expect.arrayContaining(['size=65536k', 'mode=755']));
      const pts = at('/dev/pts');
      expect(pts.fstype).toBe('devpts');
      expect(pts.options).toEqual(expect.arrayContaining(['nosuid', 'noexec']));
      expect(pts.superOptions).toEqual(expect.arrayContaining(['gid=5', 'mode=620', 'ptmxmode=666']));
      const shm = at('/dev/shm');
      expect(shm.fstype).toBe('tmpfs');
      expect(shm.source).toBe('shm');
      expect(shm.options).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
      expect(shm.superOptions).toEqual(expect.arrayContaining(['size=65536k']));
      const mq = at('/dev/mqueue');
      expect(mq.fstype).toBe('mqueue');
      expect(mq.options).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
      const sys = at('/sys');
      expect(sys.fstype).toBe('sysfs');
      expect(sys.options).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
      const cg = at('/sys/fs/cgroup');
      expect(cg.options).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
      // Everything below /sys/fs/cgroup (the host's controllers, on a v1/hybrid host) is read-only too.
      for (const m of mounts.filter((x) => x.mountPoint.startsWith('/sys/fs/cgroup/'))) expect(m.options).toContain('ro');
      // No host mount is visible: every mount is one of ours or below /sys/fs/cgroup; the
      // masked and read-only paths are mounts of ours too (those that exist on this kernel).
      const ours = ['/', '/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', ...DEFAULT_MASKED_PATHS, ...DEFAULT_READONLY_PATHS];
      for (const m of mounts) expect(ours.includes(m.mountPoint) || m.mountPoint.startsWith('/sys/fs/cgroup/'), m.mountPoint).toBe(true);
      for (const p of DEFAULT_READONLY_PATHS.filter((p) => existsSync(p))) expect(at(p).options, p).toContain('ro');
      // Masks: files carry the container's own /dev/null (a bind from its /dev tmpfs, not the
      // host's devtmpfs); directories an empty read-only tmpfs.
      for (const p of DEFAULT_MASKED_PATHS.filter((p) => existsSync(p))) {
        const m = at(p);
        expect(m.fstype, p).toBe('tmpfs');
        if (statSync(p).isDirectory()) expect(m.superOptions, p).toContain('ro');
        else expect([m.root, m.device], p).toEqual(['/null', at('/dev').device]);
      }
    });

    it('runs with no signal blocked or ignored, umask 022, root, cwd /', () => {
      expect(r.sigmask).toEqual({ SigBlk: '0000000000000000', SigIgn: '0000000000000000' });
      expect(r.umask).toBe(0o022);
      expect([r.uid, r.gid, r.groups]).toEqual([0, 0, []]);
      expect(r.cwd).toBe('/');
      expect(r.pdeathsig).toBe(9);
      expect(r.noNewPrivs).toBe(1); // no execve inside gains privileges (OCI noNewPrivileges)
      expect(r.seccomp).toBe('2'); // a filter: scratchbox's default profile
    });

    it("has OCI's default capabilities, no more: AUDIT_WRITE, KILL, NET_BIND_SERVICE", () => {
      const d = OCI_DEFAULT_CAPS;
      expect(r.caps).toEqual({ CapInh: d, CapPrm: d, CapEff: d, CapBnd: d, CapAmb: d });
    });

    it('gets exactly the env it was given, plus a default PATH', () => {
      expect(r.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
      expect(r.argv).toEqual(['/probe', 'report']);
    });

    it('is in new pid, net, ipc, uts and mount namespaces, and shares cgroup and user', () => {
      const host = (n: string) => readlinkSync(`/proc/self/ns/${n}`);
      for (const n of ['pid', 'net', 'ipc', 'uts', 'mnt']) expect(r.ns[n]).not.toBe(host(n));
      for (const n of ['cgroup', 'user']) expect(r.ns[n]).toBe(host(n));
    });

    it('takes env, args, cwd, user and namespaces from options', async () => {
      const o = await report(rootfs, {
        args: ['/probe', 'report', 'x y'],
        env: { FOO: 'bar baz', PATH: '/bin' },
        cwd: '/dev',
        user: { uid: 1000, gid: 1001, additionalGids: [5, 7] },
        namespaces: { network: false, uts: false, cgroup: true },
      });
      expect(o.argv).toEqual(['/probe', 'report', 'x y']);
      expect(o.env).toEqual(['FOO=bar baz', 'PATH=/bin']);
      expect(o.cwd).toBe('/dev');
      expect([o.uid, o.gid, o.groups]).toEqual([1000, 1001, [5, 7]]);
      expect(o.pdeathsig).toBe(9); // armed again after the credential change
      expect(o.ns.net).toBe(readlinkSync('/proc/self/ns/net'));
      expect(o.ns.uts).toBe(readlinkSync('/proc/self/ns/uts'));
      expect(o.ns.cgroup).not.toBe(readlinkSync('/proc/self/ns/cgroup'));
      expect(o.netIfaces.length).toBeGreaterThan(1);
    });

    it("network 'shared': one empty network namespace for all such containers, not the host's", async () => {
      // A container with a fresh namespace, alive meanwhile: namespace ids (nsfs inodes) are reused
      // once a namespace is gone, so compare with a live one, not with r's long-gone namespace.
      const fresh = await Container.create({ rootfs, args: ['/probe', 'sleep'], stdio: 'ignore' });
      const freshNet = readlinkSync(`/proc/${fresh.pid}/ns/net`);
      const a = await report(rootfs, { namespaces: { network: 'shared' } });
      const b = await report(rootfs, { namespaces: { network: 'shared' } });
      await fresh.delete();
      expect(a.ns.net).toBe(b.ns.net);
      expect(a.ns.net).not.toBe(readlinkSync('/proc/self/ns/net'));
      expect(a.ns.net).not.toBe(freshNet);
      expect(a.netIfaces).toEqual(['lo']);
      expect(a.loUp).toBe(true);
      expect(a.fds).toEqual([0, 1, 2]);
    });

    it('the pooled IPC namespaces: each container its own, never the host\'s nor a reused one', async () => {
      // Alive together, so that nsfs inode numbers cannot be reused between them.
      const live = [];
      for (let i = 0; i < 5; i++) live.push(await Container.create({ rootfs, args: ['/probe', 'sleep'], stdio: 'ignore' }));
      const ipc = live.map((c) => readlinkSync(`/proc/${c.pid}/ns/ipc`));
      const net = live.map((c) => readlinkSync(`/proc/${c.pid}/ns/net`));
      await Promise.all(live.map((c) => c.delete()));
      expect(new Set(ipc).size).toBe(5);
      expect(new Set(net).size).toBe(5);
      expect(ipc).not.toContain(readlinkSync('/proc/self/ns/ipc'));
      // /dev/mqueue inside is the mqueue of the container's own IPC namespace
      const o = await report(rootfs, {});
      expect(o.ns.ipc).not.toBe(readlinkSync('/proc/self/ns/ipc'));
      expect(parseMountinfo(o.mountinfo).find((m) => m.mountPoint === '/dev/mqueue')?.fstype).toBe('mqueue');
    });

    it('without the netns pool (SCRATCHBOX_NETNS_POOL=0) the child makes its own network namespace', () => {
      const script = `
        import { Container } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
        const r = await Container.run({ rootfs: ${JSON.stringify(rootfs)}, args: ['/probe', 'report'] });
        process.stdout.write(r.stdout);`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, SCRATCHBOX_NETNS_POOL: '0' },
      }).toString();
      const o = JSON.parse(out) as ProbeReport;
      expect(o.netIfaces).toEqual(['lo']);
      expect(o.loUp).toBe(true);
      expect(o.ns.net).not.toBe(readlinkSync('/proc/self/ns/net'));
      const sys = parseMountinfo(o.mountinfo).find((m) => m.mountPoint === '/sys');
      expect(sys?.options).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
    });

    it('the netns pool grows by one for each container that found it empty, to 8; a configured size stays', () => {
      // Bursts of concurrent creates empty a pool of 2 at once. In a process of its own: the pool's
      // settings and counts are the process's.
      const script = `
        import { Container } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
        import { native } from ${JSON.stringify(new URL('../../dist/native/addon.js', import.meta.url).href)};
        await Container.run({ rootfs: ${JSON.stringify(rootfs)}, args: ['/probe', 'exit', '0'], stdio: 'ignore' });
        for (let burst = 0; burst < 4; burst++) {
          const cs = await Promise.all(Array.from({ length: 12 }, () => Container.create({ rootfs: ${JSON.stringify(rootfs)}, args: ['/probe', 'exit', '0'], stdio: 'ignore' })));
          await Promise.all(cs.map((c) => c.delete()));
        }
        process.stdout.write(JSON.stringify(native().netnsPool()));`;
      const { SCRATCHBOX_NETNS_POOL: _, ...base } = process.env; // the default: no size given
      const run = (env: Record<string, string>) =>
        JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...base, ...env } }).toString()) as { taken: number; missed: number; target: number };
      const grown = run({});
      expect(grown.missed).toBeGreaterThanOrEqual(7);
      expect(grown.target).toBe(8);
      expect(grown.taken + grown.missed).toBe(49);
      const fixed = run({ SCRATCHBOX_NETNS_POOL: '2' });
      expect(fixed.missed).toBeGreaterThan(0);
      expect(fixed.target).toBe(2);
    });

    it('defaults the hostname to the shortened container id', async () => {
      const o = await report(rootfs, { id: 'abcdef0123456789' });
      expect(o.hostname).toBe('abcdef012345');
    });
  });
}
