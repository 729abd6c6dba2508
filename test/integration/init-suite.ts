/**
 * init: true (scratch-init as PID 1, src-native/init/init.c), in both root modes: the user's
 * process is PID 2 with its own argv, in the init's process group; orphans are reaped (a control without init keeps the
 * zombie); SIGTERM to the container reaches the process, whose exit code becomes the container's;
 * death by a signal is 128 + N; exec'd processes' orphans come to the init; the init's file is
 * read-only inside (CVE-2019-5736), and a missing user binary still fails create().
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from '../../src-ts/index.js';
import { packageRoot } from '../../src-ts/native/addon.js';
import { buildDir, busyboxRootfs, busyboxSkip, expectMountMode, rejection, removeRootfs, suiteSkip, type MountMode } from './helpers.js';

/** State letters of the processes in a container's pid namespace, from the host's /proc. */
async function states(c: Container): Promise<{ args: string; state: string }[]> {
  return (await c.inspect()).processes.map((p) => ({ args: p.args.join(' '), state: p.state }));
}

const until = async (f: () => Promise<boolean>, ms = 3000) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (await f()) return true;
  return false;
};

export function initSuite(mode: MountMode): void {
  const skip = suiteSkip(mode) ?? busyboxSkip;
  describe.skipIf(skip !== null)(`init: true (${mode} mode)${skip ? ` (${skip})` : ''}`, () => {
    let rootfs: string;
    beforeAll(() => {
      rootfs = busyboxRootfs();
      copyFileSync(`${buildDir}sleep`, `${rootfs}/sleep`);
    });
    afterAll(() => removeRootfs(rootfs));
    expectMountMode(mode);

    it('PID 1 is scratch-init at /dev/init; the process is PID 2 with its own argv and env', async () => {
      const r = await Container.run({ rootfs, init: true, env: { X: 'y' }, args: ['sh', '-c', 'echo $$ $0 $X; cat /proc/1/cmdline | tr "\\0" " "; echo; readlink /proc/1/exe'] });
      const [me, init, exe] = r.stdout.trim().split('\n').map((l) => l.trimEnd());
      expect(me).toBe('2 sh y');
      expect(init).toBe('/dev/init -- /bin/sh sh -c echo $$ $0 $X; cat /proc/1/cmdline | tr "\\0" " "; echo; readlink /proc/1/exe');
      expect(exe).toBe('/dev/init');
    });

    it('sharing the Node process\'s session (no terminal of its own), the process stays in the init\'s process group: nothing is taken from Node\'s terminal', async () => {
      const r = await Container.run({ rootfs, init: true, args: ['sh', '-c', 'read a b c d p1 r < /proc/1/stat; read a b c d p2 r < /proc/$$/stat; echo $$ $p1 $p2'] });
      const [me, p1, p2] = r.stdout.trim().split(' ');
      expect(me).toBe('2');
      expect(p2).toBe(p1);
      expect(p2).not.toBe('2'); // no group of its own
    });

    it('the exit code becomes the container\'s; a death by signal N is 128 + N (docker --init\'s rule)', async () => {
      expect((await Container.run({ rootfs, init: true, args: ['sh', '-c', 'exit 7'], reject: false })).exitCode).toBe(7);
      expect(await Container.run({ rootfs, init: true, args: ['sh', '-c', 'kill -9 $$'], reject: false })).toMatchObject({ exitCode: 137, signal: null });
      expect(await Container.run({ rootfs, init: true, args: ['sh', '-c', 'kill -USR1 $$'], reject: false })).toMatchObject({ exitCode: 128 + 10, signal: null });
    });

    it('SIGTERM to the container reaches the process: it traps it and exits 42, which wait() gives', async () => {
      await using c = await Container.create({ rootfs, init: true, args: ['sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'], stdio: ['ignore', 'pipe', 'pipe'] });
      await c.start();
      await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
      expect(c.kill('SIGTERM')).toBe(true);
      expect(await c.wait()).toEqual({ exitCode: 42, signal: null });
    });

    it('without a handler, a forwarded SIGTERM ends the process (a PID 1 shell would ignore it): 143', async () => {
      await using c = await Container.create({ rootfs, init: true, args: ['/bin/sleep', '30'], stdio: 'ignore' });
      await c.start();
      await until(async () => (await states(c)).length === 2);
      c.kill('SIGTERM');
      expect(await c.wait()).toEqual({ exitCode: 143, signal: null });
    });

    it('orphaned grandchildren are reaped: none left as a zombie, where without init the PID 1 keeps one', async () => {
      // The subshell forks a sleep and exits: the sleep is orphaned, re-parented to PID 1, and
      // exits 0.2 s later. Then the shell execs /sleep, which never waits for anything.
      const args = ['sh', '-c', '(sleep 0.2 &); exec /sleep'];
      await using bare = await Container.create({ rootfs, args, stdio: 'ignore' });
      await using c = await Container.create({ rootfs, init: true, args, stdio: 'ignore' });
      await bare.start();
      await c.start();
      expect(await until(async () => (await states(bare)).some((p) => p.state === 'Z'))).toBe(true); // the control
      await new Promise((r) => setTimeout(r, 400));
      const inside = await c.exec({ args: ['sh', '-c', 'cat /proc/[0-9]*/stat'] });
      const seen = inside.stdout.trim().split('\n').map((l) => l.slice(l.lastIndexOf(')') + 2, l.lastIndexOf(')') + 3));
      expect(seen).not.toContain('Z');
      expect((await states(c)).map((p) => p.state)).not.toContain('Z');
      expect((await states(c)).map((p) => p.args)).toEqual(expect.arrayContaining(['/sleep']));
    });

    it('an exec\'d process\'s orphan is re-parented to the init, and reaped by it', async () => {
      await using c = await Container.create({ rootfs, init: true, args: ['/sleep'], stdio: 'ignore' });
      await c.start();
      // The exec'd shell's subshell forks a sleep and exits, and so does the shell: the sleep's
      // parent is then the pid namespace's init, scratch-init.
      await c.exec({ args: ['sh', '-c', '(sleep 0.5 &); true'], stdio: 'ignore' });
      // The forked child may not have exec'd sleep yet when the exec's shell is gone: look until it has.
      let orphan: Awaited<ReturnType<typeof c.inspect>>['processes'][number] | undefined;
      await until(async () => (orphan = (await c.inspect()).processes.find((p) => p.args.join(' ') === 'sleep 0.5')) !== undefined, 400);
      expect(orphan).toBeDefined();
      const ppid = Number(/^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${orphan!.hostPid}/status`, 'utf8'))?.[1]);
      expect(ppid).toBe(c.pid);
      expect(await until(async () => !(await states(c)).some((p) => p.args === 'sleep 0.5' || p.state === 'Z'))).toBe(true);
    });

    it('the init\'s file is read-only inside (CVE-2019-5736): no write through /dev/init or /proc/1/exe reaches the host\'s binary', async () => {
      const bin = `${packageRoot}build/Release/scratch-init`;
      const sum = () => createHash('sha256').update(readFileSync(bin)).digest('hex');
      const before = sum();
      const r = await Container.run({ rootfs, init: true, args: ['sh', '-c', 'echo x > /proc/1/exe; echo a=$?; echo x > /dev/init; echo b=$?; grep " /dev/init " /proc/self/mountinfo'], reject: false });
      expect(r.stdout).toMatch(/a=1\nb=1\n/);
      expect(r.stdout).toMatch(/ \/dev\/init ro,nosuid,nodev/);
      expect(sum()).toBe(before);
    });

    it('a missing binary still fails create() (resolve-exec before the init), typed', async () => {
      const e = await rejection(Container.create({ rootfs, init: true, args: ['no-such-tool'] }));
      expect(e).toMatchObject({ code: 'ENOENT', stage: 'exec' });
    });
  });
}
