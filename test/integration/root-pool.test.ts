/**
 * Pooled roots (src-native/parent/root_pool.h): the next container's root built ahead on the
 * helper thread, for the same options. Whatever a container sees must be what a root built in its
 * own setup would show: its own hostname, a fresh upper layer, the rootfs and bind sources as they
 * are on disk at its create(), never as they were when its root was built.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, defaultMounts } from '../../src-ts/index.js';
import { native } from '../../src-ts/native/addon.js';
import { busyboxRootfs, busyboxSkip, hostMountinfo, openFds, removeRootfs } from './helpers.js';

const pool = () => native().rootPool();
/**
 * Until the helper thread has built a root since `built` was read. It runs at idle priority, so on
 * a busy machine (vitest runs files side by side) this can take a while; a root is ~0.2 ms of work.
 */
async function builtSince(built: number): Promise<void> {
  const t0 = Date.now();
  while (pool().built <= built) {
    if (Date.now() - t0 > 10_000) throw new Error('no root was built ahead within 10 s');
    await new Promise((r) => setTimeout(r, 2));
  }
}
const sh = (rootfs: string, script: string, extra: object = {}) => Container.run({ rootfs, args: ['/bin/sh', '-c', script], ...extra });

describe.skipIf(busyboxSkip !== null || native().mountMode() !== 'base')(
  `pooled roots (${busyboxSkip ?? (native().mountMode() !== 'base' ? 'needs the base mount mode (Linux 6.15+)' : 'busybox-static rootfs, as root')})`,
  () => {
    let rootfs: string;
    beforeAll(() => {
      rootfs = busyboxRootfs();
    });
    afterAll(() => removeRootfs(rootfs));

    it('the next container of the same options takes a root built ahead: its own hostname, a fresh upper layer', async () => {
      const script = 'echo "$(hostname) $(cat /etc/hostname) $(grep -c "$(hostname)" /etc/hosts)"; ls /left-behind 2>&1; touch /left-behind';
      const before = pool();
      const hosts = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const built = pool().built;
        const r = await sh(rootfs, script);
        const h = r.id.slice(0, 12);
        expect(r.stdout).toBe(`${h} ${h} 1\nls: /left-behind: No such file or directory\n`);
        hosts.add(h);
        if (i >= 1) await builtSince(built); // from the second on (two in a row), the next one's root
      }
      expect(hosts.size).toBe(6);
      expect(pool().taken - before.taken).toBe(4); // the third to the sixth
    });

    it('a root serves any container of the options: ids of their own (of any length) see their hostname', async () => {
      const script = 'echo "$(hostname) $(cat /etc/hostname) $(grep -c "$(hostname)" /etc/hosts)"';
      const before = pool();
      const seen: string[] = [];
      for (let i = 0; i < 5; i++) {
        const built = pool().built;
        // Ids of their own, one of another length (its hostname too: no template serves it).
        const r = await sh(rootfs, script, { id: i === 3 ? `o${i}` : `own-${process.pid}-${i}` });
        seen.push(r.stdout);
        if (i >= 1) await builtSince(built);
      }
      expect(seen).toEqual([0, 1, 2, 3, 4].map((i) => {
        const h = i === 3 ? `o${i}` : `own-${process.pid}-${i}`.slice(0, 12);
        return `${h} ${h} 1\n`;
      }));
      // The third to the fifth; the first too when the test before left a root: its options had
      // another script, but the same root (what a root is made of is not the command).
      expect(pool().taken - before.taken).toBeGreaterThanOrEqual(3);
      expect(pool().dropped).toBe(before.dropped);
    });

    it('options that alternate but share a root (two commands, one rootfs) take roots too; alternating roots build none', async () => {
      const before = pool();
      for (let i = 0; i < 8; i++) {
        const built = pool().built;
        const r = await sh(rootfs, i % 2 ? 'echo b $(hostname)' : 'echo a $(hostname)');
        expect(r.stdout).toBe(`${i % 2 ? 'b' : 'a'} ${r.id.slice(0, 12)}\n`);
        if (i >= 1) await builtSince(built);
      }
      expect(pool().taken - before.taken).toBeGreaterThanOrEqual(6); // the third to the eighth
      // Two roots (a mount more in one: its mount point is in the upper layer): none asked for.
      const other = { mounts: [...defaultMounts, { destination: '/alt', type: 'tmpfs' }] };
      // The first two may still ask (the loop's last two had one root): let those finish.
      for (let i = 0; i < 2; i++) await sh(rootfs, 'true', i % 2 ? other : {});
      // Until no build is under way (the helper runs at idle priority: on a busy machine a root
      // asked for can take a while): the count stays the same for 200 ms.
      for (let last = -1, t0 = Date.now(); last !== pool().built && Date.now() - t0 < 10_000; ) {
        last = pool().built;
        await new Promise((r) => setTimeout(r, 200));
      }
      const mid = pool();
      for (let i = 0; i < 6; i++) await sh(rootfs, 'true', i % 2 ? other : {});
      expect(pool().built).toBe(mid.built);
      expect(pool().skipped).toBe(mid.skipped); // not asked for at all, rather than asked and skipped
    });

    it('a root built ahead that no container comes for is dropped after ~2.5 s: a bind source\'s file system is freed', async () => {
      const dir = mkdtempSync(`${tmpdir()}/sbx-pinned-`);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir]);
      let mounted = true;
      const shmem = () => Number(/^Shmem:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) << 10;
      try {
        writeFileSync(`${dir}/blob`, Buffer.alloc(32 << 20, 1));
        const o = { mounts: [...defaultMounts, { destination: '/mnt', type: 'bind', source: dir, options: ['bind', 'ro'] }] };
        for (let i = 0; i < 2; i++) {
          const built = pool().built;
          expect((await sh(rootfs, 'wc -c < /mnt/blob', o)).stdout.trim()).toBe(String(32 << 20));
          if (i >= 1) await builtSince(built); // a root for a third container: it holds a tree of the tmpfs
        }
        execFileSync('umount', [dir]);
        mounted = false;
        const held = shmem();
        const dropped = pool().dropped;
        // Unmounted, the tmpfs lives on in that root until it is dropped: no container comes.
        const t0 = Date.now();
        while (pool().dropped === dropped || shmem() > held - (24 << 20)) {
          if (Date.now() - t0 > 10_000) throw new Error(`after 10 s: dropped ${pool().dropped - dropped}, Shmem ${((held - shmem()) / 2 ** 20).toFixed(1)} MiB less`);
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(Date.now() - t0).toBeGreaterThan(1500); // not at once: a container may still come
      } finally {
        if (mounted) execFileSync('umount', [dir]);
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a file added to the rootfs after the next root was built is there', async () => {
      const script = 'cat /added-later 2>&1';
      // Twice: a root is built ahead once two containers in a row come from the same options.
      const built = pool().built;
      for (let i = 0; i < 2; i++) expect((await sh(rootfs, script, { reject: false })).stdout).toContain('No such file');
      await builtSince(built); // the next root of these options
      writeFileSync(`${rootfs}/added-later`, 'new\n');
      try {
        const taken = pool().taken;
        expect((await sh(rootfs, script, { reject: false })).stdout).toBe('new\n');
        expect(pool().taken).toBe(taken + 1); // from the root built before the file was added
      } finally {
        rmSync(`${rootfs}/added-later`);
      }
    });

    it('a rootfs replaced by another directory at the same path: the next container sees the new one (the pooled root is dropped)', async () => {
      const dir = `${rootfs}.swap`;
      rmSync(dir, { recursive: true, force: true });
      const { cpSync } = await import('node:fs');
      cpSync(rootfs, dir, { recursive: true, verbatimSymlinks: true });
      try {
        writeFileSync(`${dir}/which`, 'first\n');
        const built = pool().built;
        for (let i = 0; i < 2; i++) expect((await sh(dir, 'cat /which')).stdout).toBe('first\n');
        await builtSince(built); // the next root, on the first directory
        const dropped = pool().dropped;
        const old = `${dir}.old`;
        const { renameSync } = await import('node:fs');
        renameSync(dir, old);
        cpSync(old, dir, { recursive: true, verbatimSymlinks: true });
        writeFileSync(`${dir}/which`, 'second\n');
        rmSync(old, { recursive: true });
        expect((await sh(dir, 'cat /which')).stdout).toBe('second\n');
        expect(pool().dropped).toBeGreaterThan(dropped);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a bind source replaced at the same path: the next container sees the new one', async () => {
      const src = `${rootfs}.bind`;
      const o = { mounts: [...defaultMounts, { destination: '/mnt', type: 'bind', source: src, options: ['bind', 'ro'] }] };
      rmSync(src, { recursive: true, force: true });
      mkdirSync(src);
      try {
        writeFileSync(`${src}/which`, 'first\n');
        const built = pool().built;
        for (let i = 0; i < 2; i++) expect((await sh(rootfs, 'cat /mnt/which', o)).stdout).toBe('first\n');
        await builtSince(built);
        const dropped = pool().dropped;
        rmSync(src, { recursive: true });
        mkdirSync(src);
        writeFileSync(`${src}/which`, 'second\n');
        expect((await sh(rootfs, 'cat /mnt/which', o)).stdout).toBe('second\n');
        expect(pool().dropped).toBeGreaterThan(dropped);
      } finally {
        rmSync(src, { recursive: true, force: true });
      }
    });

    it('options alternating, ids given, fixed hostnames: every container is right, and no fd or host mount is left', async () => {
      const fds = openFds().fds;
      const mounts = hostMountinfo();
      for (let i = 0; i < 10; i++) {
        expect((await sh(rootfs, 'hostname', { hostname: 'fixed' })).stdout).toBe('fixed\n');
        const id = `given-${process.pid}-${i}`;
        expect((await sh(rootfs, 'hostname', { id })).stdout).toBe(`${id.slice(0, 12).replace(/-+$/, '')}\n`);
        const r = await sh(rootfs, 'hostname; ls /dev/shm | wc -l; touch /dev/shm/x');
        expect(r.stdout).toBe(`${r.id.slice(0, 12)}\n0\n`);
      }
      expect(openFds().fds).toEqual(fds);
      expect(hostMountinfo()).toBe(mounts);
    });

    it('roots built for containers that never come: after a few, only every 4th is built, until one is taken again', async () => {
      const one = async (extra: object = {}) => {
        const c = await Container.create({ rootfs, args: ['/bin/true'], stdio: 'ignore', ...extra });
        await c.start();
        await c.wait();
        await c.delete();
      };
      /** A create of the template, and the root it asked for finished (or not asked for: skipped). */
      const oneAndItsRoot = async () => {
        const { built, skipped } = pool();
        await one();
        if (pool().skipped === skipped) await builtSince(built);
      };
      await one();
      await oneAndItsRoot();
      // Each round: two of the template's containers (the second asks for a root for the next),
      // then one whose root is another (a mount more: its mount point is made in the upper
      // layer), whose create() finds that root and drops it: wasted. An id of its own would not
      // do: a root serves any id. Until the first root is not built (how many that takes depends
      // on what the tests before left).
      let round = 0;
      const other = { mounts: [...defaultMounts, { destination: '/waste', type: 'tmpfs' }] };
      const waste = async () => {
        round++;
        await one();
        await oneAndItsRoot();
        await one(other);
      };
      for (const s0 = pool().skipped; pool().skipped === s0; ) {
        if (round > 40) throw new Error('no root was skipped after 40 wasted ones');
        await waste();
      }
      const start = pool();
      for (let i = 0; i < 12; i++) await waste();
      const wasted = pool();
      expect(wasted.taken - start.taken).toBe(0);
      expect(wasted.built - start.built).toBeLessThanOrEqual(4); // 12 asked for: only every 4th built
      expect(wasted.skipped - start.skipped).toBeGreaterThanOrEqual(8);
      // The template alone again: the probes are taken, and every root is built again.
      await one();
      for (let i = 0; i < 12; i++) await oneAndItsRoot();
      const after = pool();
      expect(after.taken - wasted.taken).toBeGreaterThanOrEqual(6);
      const tail = pool();
      for (let i = 0; i < 4; i++) await oneAndItsRoot();
      expect(pool().skipped).toBe(tail.skipped);
      expect(pool().taken - tail.taken).toBe(4);
    });
  },
);
