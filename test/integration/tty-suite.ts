/**
 * `tty: true` for a container and for an exec into one, in both root modes: what the process sees
 * of its terminal (the probe's tty mode, test/fixtures/probe.c), that the pair is the container's
 * own devpts and not a host pty, the window size and SIGWINCH, input and ^C through the master,
 * the typed errors, and that 200 tty containers leave no fd behind.
 */
import { statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from '../../src-ts/index.js';
import { children, expectMountMode, openFds, rejection, removeRootfs, ROOT_REASON, scratchRootfs, suiteSkip, type MountMode } from './helpers.js';

/** What the probe's tty mode prints. */
interface TtyReport {
  isatty: number[];
  ttyname: string | null;
  cols: number;
  rows: number;
  pid: number;
  sid: number;
  pgrp: number;
  fg: number;
  ctty: string | null;
  slaveDev: string;
  slaveRdev: string;
  slaveUid: number;
  slaveGid: number;
  ptsDev: string;
}

/** Everything the stream gives until `re` matches it (a terminal turns "\n" into "\r\n"). */
function until(s: Readable, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (re.test(out)) {
        s.off('data', onData);
        s.off('end', onEnd);
        resolve(out);
      }
    };
    const onEnd = () => reject(new Error(`the terminal ended before ${re}: ${JSON.stringify(out)}`));
    s.on('data', onData);
    s.once('end', onEnd);
  });
}

const json = <T>(text: string): T => JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as T;

/** "MAJ:MIN" of a host path's st_dev, as the probe writes it. */
function devOf(path: string): string {
  const d = statSync(path).dev;
  return `${((d >> 8) & 0xfff) | (Math.floor(d / 2 ** 32) & ~0xfff)}:${(d & 0xff) | ((d >> 12) & 0xfff00)}`;
}

export function ttySuite(mode: MountMode): void {
  const skip = suiteSkip(mode);
  describe.skipIf(skip !== null)(`tty: true, mount namespace copied from the ${mode}'s (${skip ?? ROOT_REASON})`, () => {
    expectMountMode(mode);

    let rootfs: string;
    beforeAll(() => {
      rootfs = scratchRootfs(['probe']);
    });
    afterAll(() => removeRootfs(rootfs));

    /** One tty container run to its end, its report parsed (the terminal given the output). */
    const ttyRun = async (o: { args?: string[]; ttySize?: { cols: number; rows: number } } = {}) => {
      const r = await Container.run({ rootfs, args: o.args ?? ['/probe', 'tty'], tty: true, ...(o.ttySize ? { ttySize: o.ttySize } : {}) });
      return { r, report: json<TtyReport>(r.stdout) };
    };

    it("gives the process the container's /dev/pts/0 as fds 0-2 and controlling terminal of its own session, sized as asked", async () => {
      const { r, report } = await ttyRun({ ttySize: { cols: 132, rows: 43 } });
      expect(report.isatty).toEqual([1, 1, 1]);
      expect(report.ttyname).toBe('/dev/pts/0');
      expect([report.cols, report.rows]).toEqual([132, 43]);
      expect(report.pid).toBe(1);
      expect(report.sid).toBe(1); // a session leader (setsid) …
      expect(report.fg).toBe(report.pgrp); // … whose group is the terminal's foreground group
      expect(report.ctty).toBeNull(); // /dev/tty opens: it is the controlling terminal (TIOCSCTTY)
      expect(report.slaveRdev).toMatch(/^136:0$/); // a pty slave (UNIX98_PTY_SLAVE_MAJOR), number 0
      // The output comes back through the master, with the terminal's line discipline (ONLCR); no stderr.
      expect(r.stdout.endsWith('}\r\n')).toBe(true);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
    });

    it("takes the pair from the container's own devpts instance, not the host's", async () => {
      const { report } = await ttyRun();
      expect(report.slaveDev).toBe(report.ptsDev); // the slave lives on the devpts mounted at /dev/pts inside
      expect(report.slaveDev).not.toBe(devOf('/dev/pts')); // and that is not the host's devpts
    });

    it("gives the slave to the process's user, in devpts' tty group (root keeps devpts' own)", async () => {
      const asUser = await Container.run({ rootfs, args: ['/probe', 'tty'], tty: true, user: { uid: 1000, gid: 1000 } });
      expect(json<TtyReport>(asUser.stdout)).toMatchObject({ slaveUid: 1000, slaveGid: 5, ttyname: '/dev/pts/0', ctty: null });
      expect((await ttyRun()).report).toMatchObject({ slaveUid: 0, slaveGid: 5 });
    });

    it("defaults to docker's 80 x 24", async () => {
      const { report } = await ttyRun();
      expect([report.cols, report.rows]).toEqual([80, 24]);
    });

    /** A tty container of the probe in this mode, started, once the probe said it is ready. */
    const started = async (probeMode: string) => {
      const c = await Container.create({ rootfs, args: ['/probe', probeMode], tty: true });
      const ready = until(c.tty!, /ready\r\n/);
      await c.start();
      await ready;
      return c;
    };

    it('resize() sets the size and the process gets SIGWINCH', async () => {
      await using c = await started('tty-winch');
      expect([c.stdin, c.stdout, c.stderr]).toEqual([null, null, null]);
      const report = until(c.tty!, /\}\r\n/);
      c.resize(100, 40);
      expect(json<TtyReport>(await report)).toMatchObject({ cols: 100, rows: 40 });
      expect(await c.wait()).toEqual({ exitCode: 0, signal: null });
    });

    it('what is written to the master is read inside (and echoed by the terminal)', async () => {
      await using c = await started('read-line');
      const out = until(c.tty!, /\}\r\n/);
      c.tty!.write('hello tty\n');
      const text = await out;
      expect(text).toContain('hello tty\r\n'); // the echo
      expect(json<{ line: string }>(text).line).toBe('hello tty');
    });

    it("run()'s input is typed into the terminal", async () => {
      const r = await Container.run({ rootfs, args: ['/probe', 'read-line'], tty: true, input: 'typed\n' });
      expect(json<{ line: string }>(r.stdout).line).toBe('typed');
    });

    it('^C on the master sends SIGINT to the foreground process group', async () => {
      // The container's PID 1 is immune to signals it has no handler for; the child it forked is not.
      await using c = await started('fg-child');
      const out = until(c.tty!, /\}\r\n/);
      c.tty!.write('\x03');
      expect(json<{ signal: number }>(await out).signal).toBe(2); // SIGINT
      expect(await c.wait()).toEqual({ exitCode: 0, signal: null });
    });

    it('the stream ends once the process has exited, and delete() closes it', async () => {
      const c = await Container.create({ rootfs, args: ['/probe', 'exit', '3'], tty: true });
      const ended = new Promise((r) => c.tty!.once('end', r));
      c.tty!.resume();
      await c.start();
      expect(await c.wait()).toEqual({ exitCode: 3, signal: null });
      await ended;
      await c.delete();
      expect(c.tty!.destroyed).toBe(true);
      const e = (() => {
        try {
          c.resize(10, 10);
        } catch (err) {
          return err as { code: string };
        }
      })();
      expect(e?.code).toBe('ERR_INVALID_STATE');
    });

    describe('exec with tty: true into a running container', () => {
      let c: Container;
      beforeAll(async () => {
        c = await Container.create({ rootfs, args: ['/probe', 'sleep'], stdio: 'ignore' });
        await c.start();
      });
      afterAll(async () => {
        await c?.delete();
      });

      it("gets a terminal of the container's devpts, as PID 1 would", async () => {
        const r = await c.exec({ args: ['/probe', 'tty'], tty: true, ttySize: { cols: 90, rows: 30 } });
        const report = json<TtyReport>(r.stdout);
        expect(report.isatty).toEqual([1, 1, 1]);
        expect(report.ttyname).toMatch(/^\/dev\/pts\/\d+$/);
        expect([report.cols, report.rows]).toEqual([90, 30]);
        expect(report.pid).toBeGreaterThan(1);
        expect(report.sid).toBe(report.pid);
        expect(report.fg).toBe(report.pgrp);
        expect(report.ctty).toBeNull();
        expect(report.slaveDev).toBe(report.ptsDev);
        expect(report.slaveDev).not.toBe(devOf('/dev/pts'));
        expect(r.stderr).toBe('');
        const asUser = await c.exec({ args: ['/probe', 'tty'], tty: true, user: { uid: 1234, gid: 1234 } });
        expect(json<TtyReport>(asUser.stdout)).toMatchObject({ slaveUid: 1234, slaveGid: 5 });
      });

      it('resize() on the exec reaches it as SIGWINCH', async () => {
        const p = await c.spawn({ args: ['/probe', 'tty-winch'], tty: true });
        try {
          await until(p.tty!, /ready\r\n/);
          const report = until(p.tty!, /\}\r\n/);
          p.resize(101, 41);
          expect(json<TtyReport>(await report)).toMatchObject({ cols: 101, rows: 41 });
          expect(await p.wait()).toEqual({ exitCode: 0, signal: null });
        } finally {
          await p.release();
        }
      });

      it('input round trip, and ^C kills the sleeping exec with SIGINT', async () => {
        const r = await c.exec({ args: ['/probe', 'read-line'], tty: true, input: 'in exec\n' });
        expect(json<{ line: string }>(r.stdout).line).toBe('in exec');
        const p = await c.spawn({ args: ['/probe', 'sleep'], tty: true });
        try {
          p.tty!.resume();
          p.tty!.write('\x03');
          expect(await p.wait()).toEqual({ exitCode: null, signal: 'SIGINT' });
        } finally {
          await p.release();
        }
      });

      it('tty with stdio is refused before anything is cloned', async () => {
        const before = children().length;
        const e = await rejection(c.exec({ args: ['/probe'], tty: true, stdio: 'inherit' }));
        expect([e.code, e.stage, e.option]).toEqual(['EINVAL', 'validate', 'stdio']);
        expect(children()).toHaveLength(before);
      });
    });

    it('a container whose /dev/pts was covered: the exec fails with a typed error naming the ptmx', async () => {
      await using c = await Container.create({ rootfs, args: ['/probe', 'sleep'], stdio: 'ignore', privileged: true });
      await c.start();
      expect((await c.exec({ args: ['/probe', 'mount-tmpfs', '/dev/pts'] })).stdout).toContain('"ok":true');
      const e = await rejection(c.exec({ args: ['/probe', 'tty'], tty: true }));
      expect([e.code, e.stage, e.path, e.errno]).toEqual(['ENOENT', 'device', '/dev/pts/ptmx', 2]);
    });

    it('without a devpts of its own at /dev/pts, create() refuses tty before anything is cloned', async () => {
      const before = children().length;
      const e = await rejection(Container.create({ rootfs, args: ['/probe'], tty: true, mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }] }));
      expect([e.code, e.stage, e.option, e.path]).toEqual(['EINVAL', 'validate', 'tty', '/dev/pts']);
      expect(children()).toHaveLength(before);
    });

    it('200 tty containers (and tty execs, failed creates, unstarted deletes) leave no fd and no process behind, and lose no output', async () => {
      const lines = (who: string) => Array.from({ length: 5 }, (_, i) => `${who}${i}\r\n`).join('');
      const run = () => Container.run({ rootfs, args: ['/probe', 'lines', '5'], tty: true });
      // Warm: the netns pool, the /dev/null fd, the thread's own pid namespace (an exec's, exec.cc).
      await run();
      {
        await using c = await Container.create({ rootfs, args: ['/probe', 'sleep'], stdio: 'ignore' });
        await c.start();
        await c.exec({ args: ['/probe', 'exit', '0'], tty: true });
      }
      const before = openFds().fds;
      // Two at a time, so the event loop is late to poll now and then: libuv then sees the
      // master's POLLHUP with output still in the kernel's buffer, which must still come out.
      for (let i = 0; i < 100; i++) for (const r of await Promise.all([run(), run()])) expect(r.stdout).toBe(lines('c') + lines('p'));
      for (let i = 0; i < 10; i++) {
        const c = await Container.create({ rootfs, args: ['/probe', 'sleep'], tty: true });
        await c.delete();
        await rejection(Container.create({ rootfs, args: ['/missing'], tty: true }));
      }
      {
        await using c = await Container.create({ rootfs, args: ['/probe', 'sleep'], stdio: 'ignore' });
        await c.start();
        for (let i = 0; i < 20; i++) await c.exec({ args: ['/probe', 'exit', '0'], tty: true });
        for (let i = 0; i < 5; i++) await rejection(c.exec({ args: ['/missing'], tty: true })); // fails after tty-open
      }
      expect(openFds().fds).toEqual(before);
      expect(children()).toEqual([]);
    });
  });
}
