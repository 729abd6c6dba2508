/**
 * Namespaces joined at create (options.namespaces: { container } / { path }): the article's second
 * half (a debug container with its own tools that joins a FROM-scratch container's pid namespace
 * sees its sleep as PID 1 and reads its root through /proc/1/root), the other namespaces, what
 * inspect() says, the joined container's lifetime, and the typed errors before anything is cloned.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from '../../src-ts/index.js';
import { collect } from '../../src-ts/container/proc.js';
import { native } from '../../src-ts/native/addon.js';
import { busyboxRootfs, busyboxSkip, children, openFds, rejection, removeRootfs, scratchRootfs } from './helpers.js';

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.skipIf(busyboxSkip !== null)(`namespaces joined at create${busyboxSkip ? ` (${busyboxSkip})` : ''}`, () => {
  let scratch: string;
  let tools: string;
  let sleep: Container;

  beforeAll(async () => {
    scratch = scratchRootfs(['sleep']);
    tools = busyboxRootfs();
    for (const a of ['ps', 'readlink']) symlinkSync('busybox', `${tools}/bin/${a}`);
    sleep = await Container.create({ rootfs: scratch, args: ['/sleep'], hostname: 'scratchy' });
    await sleep.start();
  });
  afterAll(async () => {
    await sleep?.delete();
    removeRootfs(scratch);
    removeRootfs(tools);
  });

  const debug = (args: string[], namespaces: NonNullable<Parameters<typeof Container.run>[0]['namespaces']>) =>
    Container.run({ rootfs: tools, args, namespaces, reject: false });

  it('the article: a debug container that joins the pid namespace at create lists the sleep as PID 1 and reads /proc/1/root', async () => {
    const r = await debug(['/bin/sh', '-c', 'ps -o pid,args; echo ---; ls /proc/1/root; echo ---; cat /proc/1/root/etc/hostname; echo $$'], { pid: { container: sleep } });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const [ps, ls, rest] = r.stdout.split('---\n');
    // /proc is mounted in the joined pid namespace: the sleep is PID 1 there, the shell is not.
    expect(ps).toMatch(/^\s*1 \/sleep$/m);
    expect(ps).toMatch(/^\s*\d+ \/bin\/sh -c ps/m);
    expect(ls!.split('\n').filter(Boolean)).toEqual(['dev', 'etc', 'proc', 'sleep', 'sys']); // the scratch container's root
    const [hostname, shellPid] = rest!.trim().split('\n');
    expect(hostname).toBe('scratchy');
    expect(Number(shellPid)).toBeGreaterThan(1);
    // Set up in that pid namespace on the Node process's memory, which was non-dumpable meanwhile.
    expect(native().dumpable()).toBe(1);
  });

  it('with tty and init too: the console socket comes after the joined namespaces\' fds, and the init leads the session', async () => {
    const r = await Container.run({
      rootfs: tools,
      args: ['/bin/sh', '-c', "busybox tty; ps -o pid,args | grep -c ' /sleep$'; readlink /proc/self/ns/net"],
      namespaces: { pid: { container: sleep }, network: { path: `/proc/${sleep.pid}/ns/net` } },
      tty: true,
      init: true,
    });
    const lines = r.stdout.trim().split('\r\n');
    expect(lines[0]).toBe('/dev/pts/0');
    expect(lines[1]).toBe('1'); // the sleep, seen from the joined pid namespace (grep's own line ends in $)
    expect(lines[2]).toBe(readlinkSync(`/proc/${sleep.pid}/ns/net`));
    expect(r.exitCode).toBe(0);
  });

  it('inspect(): the pid namespace joined (the other\'s inode, by container id), the rest own', async () => {
    const d = await Container.create({ rootfs: tools, args: ['/bin/sleep', '30'], namespaces: { pid: { container: sleep } }, stdio: 'ignore' });
    try {
      await d.start();
      const [mine, theirs] = [await d.inspect(), await sleep.inspect()];
      expect(mine.namespaceSources.pid).toEqual({ inode: theirs.namespaceSources.pid!.inode, source: 'joined', container: sleep.id });
      expect(mine.namespaces.pid).toBe(theirs.namespaces.pid);
      for (const ns of ['mnt', 'net', 'ipc', 'uts'] as const) {
        expect(mine.namespaceSources[ns]!.source, ns).toBe('own');
        expect(mine.namespaces[ns]).not.toBe(theirs.namespaces[ns]);
      }
      expect(mine.namespaceSources.user!.source).toBe('host');
      expect(theirs.namespaceSources.pid).toMatchObject({ source: 'own' });
      // Both processes are in the one pid namespace: the joined container's list has the sleep too.
      expect(mine.processes.map((p) => p.args[0])).toEqual(expect.arrayContaining(['/sleep', '/bin/sleep']));
    } finally {
      await d.delete();
    }
  });

  it('network by path, ipc and uts by container: the same namespaces as the sleep\'s, its hostname kept (not set), /etc/hostname its', async () => {
    const net = readlinkSync(`/proc/${sleep.pid}/ns/net`);
    const r = await debug(['/bin/sh', '-c', 'for n in net ipc uts; do readlink /proc/self/ns/$n; done; hostname; cat /etc/hostname /etc/hosts'], {
      network: { path: `/proc/${sleep.pid}/ns/net` },
      ipc: { container: sleep },
      uts: { container: sleep },
    });
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual([net, readlinkSync(`/proc/${sleep.pid}/ns/ipc`), readlinkSync(`/proc/${sleep.pid}/ns/uts`)]);
    expect(lines[3]).toBe('scratchy');
    expect(lines[4]).toBe('scratchy');
    expect(lines[5]).toMatch(/^127\.0\.0\.1\tlocalhost scratchy$/);
    expect(await sleep.readFile('/etc/hostname', 'utf8')).toBe('scratchy\n');
  });

  it('the mqueue mount is the joined ipc namespace\'s: a queue made by one container is seen by the other', async () => {
    const a = await Container.create({ rootfs: tools, args: ['/bin/sleep', '30'], stdio: 'ignore' });
    try {
      await a.start();
      // mqueue files can be made with plain open(2) inside a mqueue mount.
      await a.exec({ args: ['/bin/sh', '-c', ': > /dev/mqueue/sbx-join-test'] });
      const r = await debug(['/bin/ls', '/dev/mqueue'], { ipc: { container: a } });
      expect(r.stdout.trim()).toBe('sbx-join-test');
      const own = await debug(['/bin/ls', '/dev/mqueue'], {});
      expect(own.stdout.trim()).toBe('');
    } finally {
      await a.delete();
    }
  });

  it('cgroup by path (the Node process\'s own), and an exec into a container with joins joins them too', async () => {
    const d = await Container.create({ rootfs: tools, args: ['/bin/sleep', '30'], namespaces: { cgroup: { path: '/proc/self/ns/cgroup' }, network: { container: sleep } }, stdio: 'ignore' });
    try {
      await d.start();
      expect(readlinkSync(`/proc/${d.pid}/ns/cgroup`)).toBe(readlinkSync('/proc/self/ns/cgroup'));
      const e = await d.exec({ args: ['/bin/readlink', '/proc/self/ns/net'] });
      expect(e.stdout.trim()).toBe(readlinkSync(`/proc/${sleep.pid}/ns/net`));
      expect((await d.inspect()).namespaceSources.cgroup).toMatchObject({ source: 'joined', path: '/proc/self/ns/cgroup' });
    } finally {
      await d.delete();
    }
  });

  it('when the joined pid namespace\'s init dies, the kernel kills every process in it: the debug container ends by SIGKILL', async () => {
    const own = await Container.create({ rootfs: scratch, args: ['/sleep'], stdio: 'ignore' });
    await own.start();
    const d = await Container.create({ rootfs: tools, args: ['/bin/sleep', '60'], namespaces: { pid: { container: own } }, stdio: 'ignore' });
    await d.start();
    own.kill('SIGKILL');
    expect(await d.wait()).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    await d.delete();
    await own.delete();
  });

  it('typed errors before anything is cloned, with the path, and no fd or child left behind', async () => {
    const before = openFds().fds;
    const kids = children().length;
    const created = await Container.create({ rootfs: scratch, args: ['/sleep'], stdio: 'ignore' });
    try {
      const cases: [Parameters<typeof debug>[1], { code: string; option: string; path?: string; msg: RegExp }][] = [
        [{ pid: { path: '/nonexistent/ns/pid' } }, { code: 'ENOENT', option: 'namespaces.pid', path: '/nonexistent/ns/pid', msg: /does not exist/ }],
        [{ network: { path: '/etc/passwd' } }, { code: 'EINVAL', option: 'namespaces.network', path: '/etc/passwd', msg: /not a namespace file/ }],
        [{ ipc: { path: '/proc/self/ns/net' } }, { code: 'EINVAL', option: 'namespaces.ipc', path: '/proc/self/ns/net', msg: /is a net namespace, not ipc$/ }],
        [{ pid: { path: '/proc/self/ns/pid' }, uts: { path: '/proc/self/ns/pid' } }, { code: 'EINVAL', option: 'namespaces.uts', path: '/proc/self/ns/pid', msg: /pid namespace/ }],
        [{ pid: { container: created } }, { code: 'ERR_INVALID_STATE', option: 'namespaces.pid', msg: /is created: joining its namespaces needs it running \(start\(\) it first\)/ }],
        [{ uts: { container: {} as Container } }, { code: 'EINVAL', option: 'namespaces.uts.container', msg: /must be a Container of this process/ }],
      ];
      for (const [namespaces, want] of cases) {
        const e = await rejection(Container.create({ rootfs: tools, args: ['/bin/true'], namespaces }));
        expect(e, want.option).toMatchObject({ code: want.code, stage: 'validate', option: want.option, ...(want.path ? { path: want.path } : {}) });
        expect(e.message).toMatch(want.msg);
      }
    } finally {
      await created.delete();
    }
    const stopped = await Container.create({ rootfs: scratch, args: ['/sleep'], stdio: 'ignore' });
    await stopped.start();
    stopped.kill('SIGKILL');
    await stopped.wait();
    const e = await rejection(Container.create({ rootfs: tools, args: ['/bin/true'], namespaces: { network: { container: stopped } } }));
    expect(e).toMatchObject({ code: 'ERR_INVALID_STATE', stage: 'validate', containerId: stopped.id });
    await stopped.delete();
    // A process holding CAP_SYS_PTRACE could read the Node process's memory through the new
    // container's /proc/<pid>/mem while it is set up in that pid namespace.
    const tracer = await Container.create({ rootfs: scratch, args: ['/sleep'], stdio: 'ignore', capabilities: { add: ['SYS_PTRACE'] } });
    await tracer.start();
    const p = await rejection(Container.create({ rootfs: tools, args: ['/bin/true'], namespaces: { pid: { container: tracer } } }));
    expect(p).toMatchObject({ code: 'EPERM', stage: 'validate', option: 'namespaces.pid.container' });
    await tracer.delete();
    expect(openFds().fds).toEqual(before);
    expect(children()).toHaveLength(kids);
  });

  it('CVE-2019-5736: a process of the joined container cannot open /proc/<pid>/exe or mem of the joiner while it is set up (on Node\'s memory, non-dumpable)', async () => {
    const probeRoot = scratchRootfs(['probe', 'sleep']);
    const node = process.execPath;
    const before = sha256(node);
    const dumpable = native().dumpable();
    const box = await Container.create({ rootfs: probeRoot, args: ['/sleep'], stdio: 'ignore' });
    try {
      await box.start();
      const attacker = await box.spawn({ args: ['/probe', 'exe-attack', '600'], stdio: ['ignore', 'pipe', 'inherit'] });
      const report = collect(attacker.stdout);
      // Created, not started: the joiner waits at wait-start in box's pid namespace, after capset,
      // still on Node's memory, for as long as the attack lasts.
      const joiner = await Container.create({ rootfs: probeRoot, args: ['/probe', 'exit', '0'], stdio: 'ignore', namespaces: { pid: { container: box } } });
      const nsPid = Number(/^NSpid:\s*\d+\s+(\d+)/m.exec(readFileSync(`/proc/${joiner.pid}/status`, 'utf8'))?.[1]);
      const during = native().dumpable();
      expect(await attacker.wait()).toEqual({ exitCode: 0, signal: null });
      await joiner.start();
      expect(await joiner.wait()).toEqual({ exitCode: 0, signal: null });
      await joiner.delete();
      expect(during).toBe(0);
      expect(native().dumpable()).toBe(dumpable);
      const r = JSON.parse(await report) as { control: object; pids: { pid: number; tries: number; exe: string | null; exePath: string | null; mem: string | null }[]; hits: { pid: number }[] };
      expect(r.control).toEqual({ exePath: null, mem: null }); // its ways work on a process of its own
      const t = r.pids.find((x) => x.pid === nsPid);
      expect(t, `the attacker saw pid ${nsPid}`).toBeDefined();
      expect(t!.tries).toBeGreaterThan(10);
      expect(t).toMatchObject({ exe: 'EACCES', exePath: 'EACCES', mem: 'EACCES' });
      expect(r.hits.filter((h) => h.pid === nsPid)).toEqual([]);
    } finally {
      await box.delete();
      removeRootfs(probeRoot);
    }
    expect(sha256(node)).toBe(before);
  });

  it('init: true in a joined pid namespace: the init is not PID 1 there, so it is a subreaper, and reaps its process\'s orphans', async () => {
    symlinkSync('busybox', `${tools}/bin/grep`);
    const r = await Container.run({
      rootfs: tools,
      init: true,
      namespaces: { pid: { container: sleep } },
      args: ['/bin/sh', '-c', 'echo $PPID; cat /proc/$PPID/cmdline | grep -c init; (sleep 0.2 &); sleep 0.5; cat /proc/[0-9]*/stat | grep -c " Z "'],
      reject: false,
    });
    const [ppid, isInit, zombies] = r.stdout.trim().split('\n').map(Number);
    expect(ppid).toBeGreaterThan(1); // the init, a process of the sleep's pid namespace
    expect(isInit).toBe(1);
    expect(zombies).toBe(0);
    expect(r.exitCode).toBe(1); // grep -c found none: its exit code, passed on by the init
  });

  it('the Node process\'s own pid namespace by path: a container in the host\'s pid namespace, like pid: false', async () => {
    const r = await debug(['/bin/sh', '-c', 'echo $$; ls /proc | grep -c "^[0-9]"'], { pid: { path: '/proc/self/ns/pid' } });
    expect(r.exitCode).toBe(0);
    const [pid, count] = r.stdout.trim().split('\n').map(Number);
    expect(pid).toBeGreaterThan(1);
    expect(count).toBeGreaterThan(2); // the host's processes
  });
});
