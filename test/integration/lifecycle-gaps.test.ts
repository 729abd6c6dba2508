/**
 * The life cycle's corners: kill() of a created container, the OCI state transitions in every
 * order, a death between START and execve, unref(), containers made from a worker thread, and
 * inspect()'s process list.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from '../../src-ts/index.js';
import { children, isRoot, rejection, removeRootfs, ROOT_REASON, scratchRootfs } from './helpers.js';

const dist = new URL('../../dist/index.js', import.meta.url).href;

/** Exists and is not a zombie (a killed orphan waits for its new parent to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Runs a module script in a fresh Node process, which must exit by itself; its stdout lines. */
function node(script: string, ...args: string[]): string[] {
  return execFileSync(process.execPath, ['--input-type=module', '-e', script, ...args], { timeout: 20_000 }).toString().trim().split('\n');
}

const settle = () => new Promise((r) => setTimeout(r, 200));

describe.skipIf(!isRoot)(`life cycle gaps (${ROOT_REASON})`, () => {
  let rootfs: string;
  beforeAll(() => {
    rootfs = scratchRootfs(['probe', 'sleep']);
  });
  afterAll(() => removeRootfs(rootfs));

  describe('OCI state transitions', () => {
    it('created → kill(SIGTERM) ends it at once (as SIGKILL); start() after that is ERR_INVALID_STATE', async () => {
      const c = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
      expect(c.kill('SIGTERM')).toBe(true);
      const exit = await Promise.race([c.wait(), settle().then(() => settle()).then(() => 'still alive')]);
      expect(exit).toEqual({ exitCode: null, signal: 'SIGKILL' });
      expect(c.status).toBe('stopped');
      const e = await rejection(c.start());
      expect(e).toMatchObject({ code: 'ERR_INVALID_STATE', stage: 'sync', signal: 'SIGKILL' });
      expect(e.message).toContain('kill SIGTERM');
      await c.delete();
      expect(children()).toEqual([]);
    });

    it('created → kill → start at once (before the exit is seen) is ERR_INVALID_STATE too', async () => {
      const c = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
      c.kill('SIGUSR1');
      expect((await rejection(c.start())).code).toBe('ERR_INVALID_STATE');
      expect((await c.wait()).signal).toBe('SIGKILL');
      await c.delete();
    });

    it('a core-dumping signal before the exec is SIGKILL (the child shares Node memory); after it, it is delivered', async () => {
      const c = await Container.create({ rootfs, args: ['/sleep'] });
      c.kill('SIGQUIT');
      expect(await c.wait()).toEqual({ exitCode: null, signal: 'SIGKILL' });
      await c.delete();
      // Running: PID 1 ignores a SIGQUIT it has no handler for; the signal is sent as asked.
      const r = await Container.create({ rootfs, args: ['/sleep'] });
      await r.start();
      await new Promise((res) => r.stdout!.once('data', res));
      expect(r.kill('SIGQUIT')).toBe(true);
      await settle();
      expect(r.status).toBe('running');
      await r.delete();
    });

    it('a signal that neither ends nor stops (SIGCHLD, 0) leaves the created container startable', async () => {
      const c = await Container.create({ rootfs, args: ['/probe', 'exit', '4'], stdio: 'ignore' });
      expect(c.kill(0)).toBe(true);
      expect(c.kill('SIGCHLD')).toBe(true);
      await settle();
      expect(c.status).toBe('created');
      await c.start();
      expect(await c.wait()).toEqual({ exitCode: 4, signal: null });
      await c.delete();
    });

    it('created → delete (before start): killed, reaped, start() is ERR_INVALID_STATE', async () => {
      const c = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
      await c.delete();
      expect(c.status).toBe('stopped');
      expect((await rejection(c.start())).code).toBe('ERR_INVALID_STATE');
      expect(children()).toEqual([]);
    });

    it('created → running → start twice → stopped → start again: each a typed error', async () => {
      const c = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
      await c.start();
      expect(c.status).toBe('running');
      expect((await rejection(c.start())).message).toContain('already started');
      c.kill('SIGKILL');
      await c.wait();
      expect(c.status).toBe('stopped');
      expect((await rejection(c.start())).code).toBe('ERR_INVALID_STATE');
      await c.delete();
    });

    it('kill after delete and delete after kill, in either order, are harmless', async () => {
      const a = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
      await a.delete();
      expect(a.kill('SIGKILL')).toBe(false);
      const b = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
      await b.start();
      expect(b.kill('SIGKILL')).toBe(true);
      await b.delete();
      await b.delete();
      expect(b.kill()).toBe(false);
      expect(children()).toEqual([]);
    });

    it('start() rejects when the process dies between START and execve (ECHILD, stage exec)', async () => {
      const c = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
      // Stopped (SIGSTOP is neither blocked nor ignored), it cannot read START: the SIGKILL that
      // follows is sure to come before execve.
      c.kill('SIGSTOP');
      await settle();
      expect(readFileSync(`/proc/${c.pid}/stat`, 'utf8')).toMatch(/\) T /);
      const started = c.start();
      c.kill('SIGKILL');
      const e = await rejection(started);
      expect(e).toMatchObject({ code: 'ECHILD', stage: 'exec', signal: 'SIGKILL', exitCode: null });
      expect(e.message).toContain('died before execve');
      expect(c.status).toBe('stopped');
      await c.delete();
    });

    it('start() rejects when the process read START and died in execve (a seccomp filter that kills it there)', async () => {
      // The filter is loaded after wait-start: the child has read START (no ECONNRESET), and dies
      // by SIGSYS in the execve call itself. Only its comm tells that this EOF was not an exec.
      const c = await Container.create({
        rootfs,
        args: ['/sleep'],
        stdio: 'ignore',
        seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['execve'], action: 'SCMP_ACT_KILL_PROCESS' }] },
      });
      const e = await rejection(c.start());
      expect(e).toMatchObject({ code: 'ECHILD', stage: 'exec', signal: 'SIGSYS' });
      await c.delete();
    });

    it('an exec that exits at once is still a successful start (the EOF after START is told apart by the comm)', async () => {
      for (let i = 0; i < 20; i++) {
        const c = await Container.create({ rootfs, args: ['/probe', 'exit', '0'], stdio: 'ignore' });
        await c.start();
        expect(await c.wait()).toEqual({ exitCode: 0, signal: null });
        await c.delete();
      }
    });
  });

  describe('unref()', () => {
    const script = `
      import { Container } from ${JSON.stringify(dist)};
      const c = await Container.create({ rootfs: process.argv[1], args: ['/sleep'], detached: process.argv[2] === 'd' });
      await c.start();
      c.unref();
      console.log(c.pid);
      // no delete, no exit(): the event loop has nothing left to wait for`;

    it('a started container no longer keeps Node alive; it dies with Node unless detached', async () => {
      for (const mode of ['a', 'd']) {
        const [pid] = node(script, rootfs, mode).map(Number);
        expect(pid).toBeGreaterThan(1);
        await settle();
        const lives = alive(pid!);
        if (lives) process.kill(pid!, 'SIGKILL'); // before any expect: nothing outlives a failed test
        expect(lives).toBe(mode === 'd');
      }
    });

    it('ref() undoes it: then Node waits for the container', () => {
      const s = `
        import { Container } from ${JSON.stringify(dist)};
        const c = await Container.create({ rootfs: process.argv[1], args: ['/probe', 'exit', '5'], stdio: 'ignore' });
        await c.start();
        c.unref().ref();
        c.wait().then((x) => console.log(JSON.stringify(x)));`;
      expect(node(s, rootfs)).toEqual(['{"exitCode":5,"signal":null}']);
    });

    it('a created container unref()ed lets Node exit, and exits with it even when detached', async () => {
      const s = `
        import { Container } from ${JSON.stringify(dist)};
        const c = await Container.create({ rootfs: process.argv[1], args: ['/sleep'], detached: true });
        c.unref();
        console.log(c.pid);`;
      const [pid] = node(s, rootfs).map(Number);
      await settle();
      expect(alive(pid!)).toBe(false);
    });
  });

  describe('containers made in a worker thread', () => {
    const script = `
      import { Worker } from 'node:worker_threads';
      import { readFileSync } from 'node:fs';
      const alive = (pid) => { try { const s = readFileSync('/proc/' + pid + '/stat', 'utf8'); return s.slice(s.lastIndexOf(')') + 2)[0] !== 'Z'; } catch { return false; } };
      const code = \`
        import { parentPort, workerData } from 'node:worker_threads';
        import { Container } from ${JSON.stringify(dist)};
        const out = [];
        for (let i = 0; i < 3; i++) {
          const c = await Container.create({ rootfs: workerData.rootfs, args: ['/sleep'], stdio: 'ignore', detached: workerData.detached });
          await c.start();
          out.push(c.pid);
        }
        parentPort.postMessage(out);\`;
      const w = new Worker(code, { eval: true, type: 'module', workerData: { rootfs: process.argv[1], detached: process.argv[2] === 'd' } });
      const pids = await new Promise((r) => w.once('message', r));
      await w.terminate();
      await new Promise((r) => setTimeout(r, 300));
      console.log(JSON.stringify({ pids, alive: pids.map(alive) }));
      process.exit(0);`;

    it('a worker thread uses scratchbox after the main thread has made containers, and leaves no fd behind when it ends', () => {
      // (A module instance of its own loads the addon again: the environment's settings are
      // applied only until the first container, without an error after it.)
      const fdScript = `
        import { Worker } from 'node:worker_threads';
        import { readdirSync } from 'node:fs';
        import { Container } from ${JSON.stringify(dist)};
        const fds = () => readdirSync('/proc/self/fd').length;
        const rootfs = process.argv[1];
        const c = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
        await c.start();
        await c.exec({ args: ['/probe', 'exit', '0'], stdio: 'ignore' });
        await c.delete();
        const code = \`
          import { parentPort, workerData } from 'node:worker_threads';
          import { Container } from ${JSON.stringify(dist)};
          const c = await Container.create({ rootfs: workerData, args: ['/sleep'], stdio: 'ignore' });
          await c.start();
          const r = await c.exec({ args: ['/probe', 'exit', '0'], stdio: 'ignore' });
          await c.delete();
          parentPort.postMessage(r.exitCode);\`;
        const worker = async () => {
          const w = new Worker(code, { eval: true, type: 'module', workerData: rootfs });
          const exit = await new Promise((r, j) => { w.once('message', r); w.once('error', j); });
          await new Promise((r) => w.once('exit', r));
          await new Promise((r) => setTimeout(r, 100));
          return exit;
        };
        // The first worker's containers are cloned by the spawner thread, which keeps one fd of
        // its own from then on (its pid namespace, to come back to after an exec's clone).
        const first = await worker();
        const before = fds();
        const second = await worker();
        console.log(JSON.stringify({ exits: [first, second], before, after: fds() }));
        process.exit(0);`;
      const r = JSON.parse(node(fdScript, rootfs)[0]!) as { exits: number[]; before: number; after: number };
      expect(r.exits).toEqual([0, 0]);
      expect(r.after).toBe(r.before);
    });

    it('live on after the worker ends, and die with the process (unless detached)', async () => {
      for (const mode of ['a', 'd']) {
        const { pids, alive: after } = JSON.parse(node(script, rootfs, mode)[0]!) as { pids: number[]; alive: boolean[] };
        await settle();
        const lives = pids.map(alive);
        for (const [i, p] of pids.entries()) if (lives[i]) process.kill(p, 'SIGKILL'); // before any expect
        expect(pids).toHaveLength(3);
        expect(after).toEqual([true, true, true]);
        expect(lives).toEqual(pids.map(() => mode === 'd'));
      }
    });
  });

  describe('inspect()', () => {
    it('lists the processes inside and the live root on the host', async () => {
      const c = await Container.create({ rootfs, args: ['/sleep'] });
      let info = await c.inspect();
      expect(info.rootPath).toBe(`/proc/${c.pid}/root`);
      expect(info.processes.map((p) => [p.pid, p.hostPid])).toEqual([[1, c.pid]]);
      await c.start();
      await new Promise((res) => c.stdout!.once('data', res));
      info = await c.inspect();
      expect(info.processes).toEqual([{ pid: 1, hostPid: c.pid, args: ['/sleep'], state: expect.stringMatching(/^[RS]$/) }]); // running its last write, or asleep
      expect(readFileSync(`${info.rootPath}/etc/hostname`, 'utf8')).toBe(readFileSync(`/proc/${c.pid}/root/etc/hostname`, 'utf8'));
      expect(info.namespaces.pid).toMatch(/^pid:/);
      expect(info.mounts.length).toBeGreaterThan(0);
      c.kill('SIGKILL');
      await c.wait();
      info = await c.inspect();
      expect(info.processes).toEqual([]);
      expect(info.rootPath).toBeUndefined();
      await c.delete();
    });

    it('without a PID namespace: the container process and its descendants only', async () => {
      const c = await Container.create({ rootfs, args: ['/sleep'], namespaces: { pid: false } });
      await c.start();
      await new Promise((res) => c.stdout!.once('data', res));
      const info = await c.inspect();
      expect(info.processes).toEqual([{ pid: c.pid, hostPid: c.pid, args: ['/sleep'], state: expect.stringMatching(/^[RS]$/) }]);
      await c.delete();
    });
  });
});
