/** What a new user meets in the first hour (issue 8): stdio 'inherit', exec failures, duplicate ids. */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, defaultMounts } from '../../src-ts/index.js';
import { busyboxRootfs, busyboxSkip, children, rejection, removeRootfs, repoRoot } from './helpers.js';

const run = promisify(execFile);

describe.skipIf(busyboxSkip !== null)(`the first hour (${busyboxSkip ?? 'busybox-static rootfs, as root'})`, () => {
  let rootfs: string;
  beforeAll(() => {
    rootfs = busyboxRootfs();
    writeFileSync(`${rootfs}/garbage`, 'neither ELF nor #!\n');
    chmodSync(`${rootfs}/garbage`, 0o755);
    // A dynamically linked binary copied alone: its ELF interpreter (ld-linux) is not in the rootfs.
    copyFileSync('/bin/true', `${rootfs}/dyn-true`);
    chmodSync(`${rootfs}/dyn-true`, 0o755);
    writeFileSync(`${rootfs}/script.sh`, '#!/bin/bash\necho hi\n');
    chmodSync(`${rootfs}/script.sh`, 0o755);
  });
  afterAll(() => removeRootfs(rootfs));

  it("stdio 'inherit': the container writes to the Node process's own stdout and stderr (which Node marks O_CLOEXEC)", async () => {
    const script = `
      import { Container } from ${JSON.stringify(new URL('dist/index.js', `file://${repoRoot}`).href)};
      const c = await Container.create({ rootfs: ${JSON.stringify(rootfs)}, args: ['/bin/sh', '-c', 'echo to-stdout; echo to-stderr >&2'], stdio: 'inherit' });
      await c.start();
      const exit = await c.wait();
      await c.delete();
      process.exitCode = exit.exitCode ?? 99;`;
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(stdout).toBe('to-stdout\n');
    expect(stderr).toBe('to-stderr\n');
  });

  it("stdio 'inherit' for one stream, pipes for the others", async () => {
    const script = `
      import { Container } from ${JSON.stringify(new URL('dist/index.js', `file://${repoRoot}`).href)};
      const r = await Container.run({ rootfs: ${JSON.stringify(rootfs)}, args: ['/bin/sh', '-c', 'echo piped; echo inherited >&2'], stdio: ['ignore', 'pipe', 'inherit'] });
      process.stdout.write('run() got ' + JSON.stringify(r.stdout));`;
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(stdout).toBe('run() got "piped\\n"');
    expect(stderr).toBe('inherited\n');
  });

  it('a file execve cannot run is ENOEXEC, "Exec format error", from start() (not E8)', async () => {
    const c = await Container.create({ rootfs, args: ['/garbage'] });
    const e = await rejection(c.start());
    expect(e).toMatchObject({ code: 'ENOEXEC', errno: 8, stage: 'exec', path: '/garbage' });
    expect(e.message).toContain('Exec format error');
    await c.delete();
  });

  it('a dynamically linked binary without its loader fails create(), naming the loader', async () => {
    const e = await rejection(Container.create({ rootfs, args: ['/dyn-true'] }));
    expect(e).toMatchObject({ code: 'ENOENT', errno: 2, stage: 'exec', option: 'args' });
    expect(e.path).toMatch(/^\/lib.*\/ld-linux[^/]*\.so\.\d$/);
    expect(e.message).toBe(`/dyn-true needs ${e.path}, which the rootfs lacks`);
    expect(children()).toEqual([]);
  });

  it('a script whose #! interpreter is missing fails create(); one whose interpreter is there runs', async () => {
    const e = await rejection(Container.create({ rootfs, args: ['/script.sh'] }));
    expect(e).toMatchObject({ code: 'ENOENT', stage: 'exec', option: 'args', path: '/bin/bash' });
    expect(e.message).toBe('/script.sh needs /bin/bash, which the rootfs lacks');
    writeFileSync(`${rootfs}/ok.sh`, '#!/bin/sh\necho from-a-script\n');
    chmodSync(`${rootfs}/ok.sh`, 0o755);
    // Found through PATH, and /bin/sh is a symlink to busybox: resolved inside the rootfs.
    expect((await Container.run({ rootfs, args: ['ok.sh'], env: { PATH: '/nowhere:/' } })).stdout).toBe('from-a-script\n');
  });

  it('a loader under a mount of the spec is not checked: the child finds out, at start()', async () => {
    const interp = (await rejection(Container.create({ rootfs, args: ['/dyn-true'] }))).path!;
    const dir = interp.slice(0, interp.lastIndexOf('/'));
    const c = await Container.create({ rootfs, args: ['/dyn-true'], mounts: [...defaultMounts, { destination: dir, type: 'tmpfs' }] });
    const e = await rejection(c.start());
    expect(e).toMatchObject({ code: 'ENOENT', stage: 'exec', path: '/dyn-true' });
    expect((await c.wait()).exitCode).toBe(255);
    await c.delete();
  });

  it('a duplicate id of a live container is EEXIST before anything is cloned; free again after delete()', async () => {
    const id = `dup-${process.pid}`;
    const a = await Container.create({ rootfs, args: ['/bin/sleep', '100'], id, stdio: 'ignore' });
    const before = children().length;
    const e = await rejection(Container.create({ rootfs, args: ['/bin/true'], id }));
    expect(e).toMatchObject({ code: 'EEXIST', errno: 17, stage: 'validate', option: 'id' });
    expect(children().length).toBe(before);
    await a.start();
    expect((await rejection(Container.run({ rootfs, args: ['/bin/true'], id }))).code).toBe('EEXIST');
    a.kill('SIGKILL');
    await a.wait();
    // Stopped but not deleted: still taken.
    expect((await rejection(Container.create({ rootfs, args: ['/bin/true'], id }))).code).toBe('EEXIST');
    await a.delete();
    expect((await Container.run({ rootfs, args: ['/bin/true'], id })).exitCode).toBe(0);
  });

  it('the id of a failed create() is free again', async () => {
    const id = `failed-${process.pid}`;
    expect((await rejection(Container.create({ rootfs, args: ['/nope'], id }))).code).toBe('ENOENT'); // in the child
    expect((await rejection(Container.create({ rootfs, args: ['/dyn-true'], id }))).code).toBe('ENOENT'); // before the clone
    expect((await Container.run({ rootfs, args: ['/bin/true'], id })).exitCode).toBe(0);
  });

  it('two create() calls with one id at the same time: one wins, the other is EEXIST', async () => {
    const id = `race-${process.pid}`;
    const results = await Promise.allSettled([0, 1].map(() => Container.create({ rootfs, args: ['/bin/true'], id, stdio: 'ignore' })));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won.length).toBe(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ code: 'EEXIST', option: 'id' });
    await (won[0] as PromiseFulfilledResult<Container>).value.delete();
  });

  it('run() rejects an unknown RunOptions key before anything is cloned', async () => {
    const e = await rejection(Container.run({ rootfs, args: ['/bin/true'], timout: 100 } as never));
    expect(e).toMatchObject({ code: 'EINVAL', stage: 'validate', option: 'timout' });
    expect(e.message).toContain("did you mean 'timeout'?");
    const e2 = await rejection(Container.run({ rootfs, args: ['/bin/true'], hostnme: 'x' } as never));
    expect(e2.message).toContain("did you mean 'hostname'?");
    expect(children()).toEqual([]);
  });

  it("what the README says of stdio 'pipe', the default: unread output blocks the container once the pipe is full", async () => {
    // 1 MB: far more than the pipe (64 KiB) and the stream's buffer (up to another ~64 KiB) hold.
    const args = ['/bin/sh', '-c', 'i=0; while [ $i -lt 16000 ]; do echo 0123456789012345678901234567890123456789012345678901234567890123; i=$((i+1)); done'];
    const blocked = await Container.create({ rootfs, args }); // nobody reading
    await blocked.start();
    const early = await Promise.race([blocked.wait(), new Promise((r) => setTimeout(() => r('still running'), 300))]);
    expect(early).toBe('still running');
    let bytes = 0;
    blocked.stdout!.on('data', (d: Buffer) => (bytes += d.length)); // read it: it finishes
    expect(await blocked.wait()).toEqual({ exitCode: 0, signal: null });
    await blocked.delete();
    expect(bytes).toBe(16000 * 65); // all of it, the buffered part included
    const ignored = await Container.create({ rootfs, args, stdio: 'ignore' });
    await ignored.start();
    expect(await ignored.wait()).toEqual({ exitCode: 0, signal: null });
    await ignored.delete();
  });

  it('what the README says of delete(): a created container keeps Node running until it is deleted', async () => {
    const script = (del: boolean) => `
      import { Container } from ${JSON.stringify(new URL('dist/index.js', `file://${repoRoot}`).href)};
      const c = await Container.create({ rootfs: ${JSON.stringify(rootfs)}, args: ['/bin/true'], stdio: 'ignore' });
      console.log('created');
      ${del ? 'await c.delete();' : ''}`;
    expect((await run(process.execPath, ['--input-type=module', '-e', script(true)], { timeout: 5000 })).stdout).toBe('created\n');
    // Killed by the timeout, after it had made the container: it was the container that held it.
    const hung = await run(process.execPath, ['--input-type=module', '-e', script(false)], { timeout: 1000 }).then(
      () => 'exited',
      (e: { killed?: boolean; stdout?: string }) => (e.killed ? `still running after 1 s, having printed ${JSON.stringify(e.stdout)}` : 'failed'),
    );
    expect(hung).toBe('still running after 1 s, having printed "created\\n"');
  });

  it('run() failures name the container containerId, once', async () => {
    const e = await rejection(Container.run({ rootfs, args: ['/bin/false'] }));
    expect(e.code).toBe('ERR_CONTAINER_EXIT');
    expect(e.containerId).toMatch(/^[0-9a-f]{16}$/);
    expect('id' in e).toBe(false);
  });
  it('containers made from the same options (one template, src-ts/container/templates.ts) each have their own id and hostname', async () => {
    const o = { rootfs, args: ['/bin/sh', '-c', 'hostname; cat /etc/hostname; grep -c "$(hostname)" /etc/hosts'] };
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await Container.run(o);
      const h = r.id.slice(0, 12);
      expect(r.stdout).toBe(`${h}\n${h}\n1\n`);
      seen.add(h);
    }
    expect(seen.size).toBe(4);
    // A given id of another length (its hostname too), and a fixed hostname.
    expect((await Container.run({ ...o, id: `tpl-${process.pid}` })).stdout).toBe(`tpl-${process.pid}\n`.repeat(2) + '1\n');
    for (let i = 0; i < 2; i++) expect((await Container.run({ ...o, hostname: 'fixed' })).stdout).toBe('fixed\nfixed\n1\n');
  });

  it('the same options with a bind source that changed from a directory to a file: the plan follows the disk', async () => {
    const src = `${rootfs}.bindsrc`;
    const { mkdirSync, rmSync } = await import('node:fs');
    const o = { rootfs, args: ['/bin/sh', '-c', '[ -f /mnt/x ] && cat /mnt/x || ls /mnt/x'], mounts: [...defaultMounts, { destination: '/mnt/x', type: 'bind', source: src, options: ['bind', 'ro'] }] };
    try {
      mkdirSync(src);
      writeFileSync(`${src}/inside`, '');
      expect((await Container.run(o)).stdout).toBe('inside\n');
      expect((await Container.run(o)).stdout).toBe('inside\n');
      rmSync(src, { recursive: true });
      writeFileSync(src, 'a file now\n');
      expect((await Container.run(o)).stdout).toBe('a file now\n');
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });
  it('the disk checks are replayed for the same options, and still catch what changed on disk since', async () => {
    const { cpSync, rmSync, symlinkSync } = await import('node:fs');
    const dir = `${rootfs}.replay`;
    rmSync(dir, { recursive: true, force: true });
    cpSync(rootfs, dir, { recursive: true, verbatimSymlinks: true });
    try {
      const o = { rootfs: dir, args: ['/bin/true'] };
      for (let i = 0; i < 3; i++) expect((await Container.run(o)).exitCode).toBe(0);
      // /proc becomes a symlink to the host's: ELOOP at validate, as for a first create.
      rmSync(`${dir}/proc`, { recursive: true, force: true });
      symlinkSync('/proc', `${dir}/proc`);
      expect(await rejection(Container.run(o))).toMatchObject({ code: 'ELOOP', stage: 'validate', path: '/proc' });
      rmSync(`${dir}/proc`);
      expect((await Container.run(o)).exitCode).toBe(0);
      // /bin/true becomes a dynamic binary without its loader: ENOENT naming the loader.
      rmSync(`${dir}/bin/true`);
      copyFileSync('/bin/true', `${dir}/bin/true`);
      const e = await rejection(Container.run(o));
      expect(e).toMatchObject({ code: 'ENOENT', stage: 'exec' });
      expect(e.path).toMatch(/^\/lib.*ld-linux/);
      // The rootfs gone: the rootfs error.
      rmSync(dir, { recursive: true, force: true });
      expect(await rejection(Container.run(o))).toMatchObject({ code: 'ENOENT', stage: 'validate', option: 'rootfs' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
