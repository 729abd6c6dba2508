/**
 * Exec into a running container (Container#exec, #spawn), in both root modes: what the exec'd
 * process sees (the probe, test/fixtures/probe.c), that it is the container's own (namespaces,
 * root, mounts, hostname, capability sets, seccomp, no_new_privs as PID 1), its I/O and exit, the
 * typed errors, that 500 execs leave nothing behind, and CVE-2019-5736 from inside.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from '../../src-ts/index.js';
import { collect } from '../../src-ts/container/proc.js';
import { EXEC_HOOKS } from '../../src-ts/internals.js';
import { native, packageRoot } from '../../src-ts/native/addon.js';
import { children, expectMountMode, openFds, rejection, removeRootfs, ROOT_REASON, scratchRootfs, suiteSkip, type MountMode, type ProbeReport } from './helpers.js';

const NS = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'uts'] as const;

/** A line of /proc/PID/status. */
function status(pid: number, key: string): string {
  const m = new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? m[1]!.trim() : '';
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
/** "MAJ:MIN:INO" of a host file, as the probe writes the identity of a /proc/PID/exe. */
function identity(path: string): string {
  const st = statSync(path);
  const major = ((st.dev >> 8) & 0xfff) | (Math.floor(st.dev / 2 ** 32) & ~0xfff);
  const minor = (st.dev & 0xff) | ((st.dev >> 12) & 0xfff00);
  return `${major}:${minor}:${st.ino}`;
}

interface AttackReport {
  control: { exePath: string | null; mem: string | null };
  pids: { pid: number; tries: number; exe: string | null; exePath: string | null; mem: string | null; mapFiles: string | null }[];
  hits: { pid: number; what: string; exe: string | null }[];
}

export function execSuite(mode: MountMode): void {
  const skip = suiteSkip(mode);
  describe.skipIf(skip !== null)(`exec into a running container, mount namespace copied from the ${mode}'s (${skip ?? ROOT_REASON})`, () => {
    expectMountMode(mode);

    let rootfs: string;
    let c: Container;
    beforeAll(async () => {
      rootfs = scratchRootfs(['sleep', 'probe']);
      c = await Container.create({ rootfs, args: ['/sleep'], hostname: 'box', env: { PATH: '/', A: 'container' }, stdio: ['ignore', 'pipe', 'ignore'] });
      await c.start();
      // The static sleep says hello once it waits: it runs.
      const hello = await new Promise<string>((r) => c.stdout!.once('data', (d: Buffer) => r(d.toString())));
      expect(hello).toContain('hello from scratch: pid 1');
    });
    afterAll(async () => {
      await c?.delete();
      removeRootfs(rootfs);
    });

    const report = async (extra: Record<string, unknown> = {}) => JSON.parse((await c.exec({ args: ['/probe', 'report'], ...extra })).stdout) as ProbeReport;

    it("runs a second static binary in a FROM-scratch container running a static sleep (the article's second half)", async () => {
      const r = await report();
      expect(r.pid).toBeGreaterThan(1); // a second process of its PID namespace …
      expect(r.procPids).toContain(1); // … beside the sleep, which it sees as PID 1
      expect(r.procPids).toContain(r.pid);
      expect(r.procPids.length).toBeLessThanOrEqual(3); // and no host process
      expect(r.ppid).toBe(0); // its parent (Node) is outside the namespace
      expect(r.rootEntries).toEqual(expect.arrayContaining(['sleep', 'probe', 'proc', 'dev', 'etc', 'sys']));
      expect(r.hostname).toBe('box');
      expect(c.status).toBe('running');
    });

    it("is in every namespace of the container's PID 1 and at its root: the same mounts and hostname", async () => {
      const r = await report();
      for (const ns of NS) expect(r.ns[ns], ns).toBe(readlinkSync(`/proc/${c.pid}/ns/${ns}`));
      // /proc/PID/mountinfo shows the mounts relative to that process's root: the same table.
      expect(r.mountinfo).toBe(readFileSync(`/proc/${c.pid}/mountinfo`, 'utf8'));
      expect(r.cwd).toBe('/');
      expect(r.etc.hostname).toBe('box\n');
      expect(r.fds).toEqual([0, 1, 2]);
    });

    it('has the capability sets, seccomp mode, NoNewPrivs and rlimits of PID 1', async () => {
      const r = await report();
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'] as const) expect(r.caps[set], set).toBe(status(c.pid, set));
      expect(r.seccomp).toBe(status(c.pid, 'Seccomp'));
      expect(r.seccomp).toBe('2');
      expect(String(r.noNewPrivs)).toBe(status(c.pid, 'NoNewPrivs'));
      expect(r.noNewPrivs).toBe(1);
      expect(r.rlimits.NOFILE).toEqual([1024, 1024]);
    });

    it('takes narrower capabilities per exec, never more (EPERM)', async () => {
      const r = await report({ capabilities: { drop: ['ALL'], add: ['KILL'] } });
      expect(r.caps.CapEff).toBe('0000000000000020');
      expect(r.caps.CapBnd).toBe('0000000000000020');
      const e = await rejection(c.exec({ args: ['/probe'], capabilities: { add: ['SYS_ADMIN'] } }));
      expect(e).toMatchObject({ code: 'EPERM', stage: 'validate', option: 'capabilities' });
    });

    it('passes stdout, stderr and the exit code back, like run()', async () => {
      const r = await c.exec({ args: ['/probe', 'stderr', 'to stderr'] });
      expect(r).toMatchObject({ id: c.id, exitCode: 0, signal: null, stdout: 'out', stderr: 'to stderr', timedOut: false });
      expect(r.pid).toBeGreaterThan(0);
      expect(r.durationMs).toBeGreaterThan(0);
      expect(await c.exec({ args: ['/probe', 'exit', '7'], reject: false })).toMatchObject({ exitCode: 7, signal: null });
      const e = await rejection(c.exec({ args: ['/probe', 'exit', '7'] }));
      expect(e).toMatchObject({ code: 'ERR_CONTAINER_EXIT', stage: 'run', exitCode: 7, containerId: c.id });
      expect((await c.exec({ args: ['/probe', 'echo'], input: 'hi there\n' })).stdout).toBe('hi there\n');
    });

    it('takes env (over the container\'s), cwd and user', async () => {
      const dflt = await report();
      expect(dflt.env).toEqual(['PATH=/', 'A=container']);
      expect([dflt.uid, dflt.gid]).toEqual([0, 0]);
      const r = await report({ env: { A: 'exec', B: '2' }, cwd: '/etc', user: { uid: 1000, gid: 1001, additionalGids: [5] } });
      expect(r.env).toEqual(['PATH=/', 'A=exec', 'B=2']);
      expect(r.cwd).toBe('/etc');
      expect([r.uid, r.gid, r.groups]).toEqual([1000, 1001, [5]]);
      // The container's PATH finds a name without '/'.
      expect((await c.exec({ args: ['probe', 'exit', '0'] })).exitCode).toBe(0);
    });

    it('spawn(): a handle with pid, streams, kill() and wait()', async () => {
      const p = await c.spawn({ args: ['/probe', 'sleep'] });
      expect(p.pid).toBeGreaterThan(0);
      expect(status(p.pid, 'NSpid').split(/\s+/)).toHaveLength(2); // a pid in the container's namespace too
      expect(p.kill('SIGKILL')).toBe(true);
      expect(await p.wait()).toEqual({ exitCode: null, signal: 'SIGKILL' });
      expect(p.kill()).toBe(false);
      const q = await c.spawn({ args: ['/probe', 'echo'] });
      q.stdout!.setEncoding('utf8');
      const got = new Promise<string>((r) => q.stdout!.once('data', r));
      q.stdin!.write('ping\n');
      expect(await got).toBe('ping\n');
      q.stdin!.end();
      expect(await q.wait()).toEqual({ exitCode: 0, signal: null });
      await q.release();
    });

    it('times out and aborts like run()', async () => {
      const e = await rejection(c.exec({ args: ['/probe', 'sleep'], timeout: 100 }));
      expect(e).toMatchObject({ code: 'ETIMEDOUT', stage: 'run', timedOut: true, signal: 'SIGKILL' });
      const ac = new AbortController();
      const p = c.exec({ args: ['/probe', 'sleep'], signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      expect(await rejection(p)).toMatchObject({ code: 'ABORT_ERR', signal: 'SIGKILL' });
    });

    it('fails a missing binary with ENOENT at stage exec, and an unknown option with EINVAL', async () => {
      const before = children().length;
      const e = await rejection(c.exec({ args: ['/nope'] }));
      expect(e).toMatchObject({ code: 'ENOENT', stage: 'exec', path: '/nope', containerId: c.id });
      expect(children()).toHaveLength(before);
      const u = await rejection(c.exec({ args: ['/probe'], cwdd: '/' } as never));
      expect(u).toMatchObject({ code: 'EINVAL', stage: 'validate', option: 'cwdd' });
      expect(u.message).toContain("did you mean 'cwd'");
    });

    it('leaves no zombie and no fd behind after 500 execs', { timeout: 120_000 }, async () => {
      await c.exec({ args: ['/probe', 'exit', '0'] }); // warm: stacks, the seccomp program
      const fds = openFds().fds;
      for (let i = 0; i < 250; i++) {
        const rs = await Promise.all([c.exec({ args: ['/probe', 'exit', '0'] }), c.exec({ args: ['/probe', 'exit', '0'], stdio: 'ignore' })]);
        for (const r of rs) expect(r.exitCode).toBe(0);
      }
      expect(children().filter((p) => p.state === 'Z')).toEqual([]);
      expect(children().map((p) => p.pid)).toEqual([c.pid]);
      expect(openFds().fds).toEqual(fds);
    });

    it('refuses a container that is created but not started, or stopped (ERR_INVALID_STATE)', async () => {
      const d = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
      try {
        expect(await rejection(d.exec({ args: ['/probe'] }))).toMatchObject({ code: 'ERR_INVALID_STATE', stage: 'validate', containerId: d.id });
        await d.start();
        d.kill('SIGKILL'); // (a SIGTERM before the sleep blocks it would be dropped: it is PID 1)
        await d.wait();
        const e = await rejection(d.exec({ args: ['/probe'] }));
        expect(e).toMatchObject({ code: 'ERR_INVALID_STATE', stage: 'validate' });
        expect(e.message).toContain('is stopped');
        await d.delete();
        expect(await rejection(d.spawn({ args: ['/probe'] }))).toMatchObject({ code: 'ERR_INVALID_STATE' });
      } finally {
        await d.delete();
      }
    });

    it("refuses a container that may hold CAP_SYS_PTRACE (it could reach Node's memory during the exec: EPERM)", async () => {
      const d = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore', capabilities: { add: ['SYS_PTRACE'] } });
      try {
        await d.start();
        expect(await rejection(d.exec({ args: ['/probe'] }))).toMatchObject({ code: 'EPERM', stage: 'validate', option: 'capabilities' });
      } finally {
        await d.delete();
      }
    });

    it("is killed with the container: delete() ends what was exec'd into it", async () => {
      const d = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
      await d.start();
      const p = await d.spawn({ args: ['/probe', 'sleep'], stdio: 'ignore' });
      await d.delete();
      expect(await p.wait()).toEqual({ exitCode: null, signal: 'SIGKILL' });
    });

    for (const caps of [undefined, ['SYS_ADMIN']] as const)
      it(`CVE-2019-5736: a process inside${caps ? ' with CAP_SYS_ADMIN (map_files)' : ''} cannot open /proc/<exec pid>/exe, mem or map_files while an exec is set up; Node and the addon are unchanged`, async () => {
        const node = process.execPath;
        const addon = `${packageRoot}build/Release/scratchbox.node`;
        const before = [sha256(node), sha256(addon)];
        const dumpable = native().dumpable();
        const box = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore', ...(caps ? { capabilities: { add: [...caps] } } : {}) });
        try {
          await box.start();
          // The attacker: a process of the container (its capabilities, its uid 0), for 600 ms.
          const attacker = await box.spawn({ args: ['/probe', 'exe-attack', '600'], stdio: ['ignore', 'pipe', 'inherit'] });
          const report = collect(attacker.stdout);
          let nsPid = 0;
          let during = -1;
          // The exec is held at a sync point after its credentials are set (the container's own
          // capabilities and user, still on Node's memory: the window CVE-2019-5736 used) for
          // longer than the attack lasts, so that every attempt on it falls inside the window.
          const target = await box.spawn({
            args: ['/probe', 'exit', '0'],
            stdio: 'ignore',
            [EXEC_HOOKS]: {
              pause: (pid: number, resume: () => void) => {
                nsPid = Number(status(pid, 'NSpid').split(/\s+/)[1]);
                during = native().dumpable();
                void attacker.wait().then(() => setTimeout(resume, 50));
              },
            },
          } as never);
          expect(await target.wait()).toEqual({ exitCode: 0, signal: null });
          expect(await attacker.wait()).toEqual({ exitCode: 0, signal: null });
          expect(during).toBe(0);
          expect(native().dumpable()).toBe(dumpable);
          const r = JSON.parse(await report) as AttackReport;
          // The attacker's ways work on a process of the container's own …
          expect(r.control).toEqual({ exePath: null, mem: null });
          // … and it tried them, many times, on the exec being set up, and failed every time.
          const t = r.pids.find((x) => x.pid === nsPid);
          expect(t, `the attacker saw pid ${nsPid}`).toBeDefined();
          expect(t!.tries).toBeGreaterThan(10);
          expect(t).toMatchObject({ exe: 'EACCES', exePath: 'EACCES', mem: 'EACCES' });
          if (caps) expect(t!.mapFiles).toBe('EACCES');
          expect(r.hits.filter((h) => h.pid === nsPid)).toEqual([]);
          // What it could open (the container's PID 1: the sleep) is never Node or the addon.
          const host = [identity(node), identity(addon)];
          for (const h of r.hits) {
            expect(h.exe, `${h.what} of pid ${h.pid}`).not.toBeNull();
            expect(host, `${h.what} of pid ${h.pid}`).not.toContain(h.exe);
            expect(['exe-write', 'exe-reopen-write', 'map-write']).not.toContain(h.what);
          }
        } finally {
          await box.delete();
        }
        expect([sha256(node), sha256(addon)]).toEqual(before);
      });
  });
}
