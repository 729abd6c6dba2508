/**
 * The classic escapes, each named by the class of CVE it stands for, tried from a default
 * container (the path and symlink classes are in safety-suite.ts; the filter itself in
 * seccomp-filter.test.ts). None may succeed, and the host must be unchanged.
 */
import { closeSync, mkdtempSync, openSync, readlinkSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from '../../src-ts/index.js';
import { hostMountinfo, isRoot, rejection, removeRootfs, ROOT_REASON, scratchRootfs, type ProbeReport } from './helpers.js';

let rootfs = '';

describe.skipIf(!isRoot)(`escapes from a default container (${ROOT_REASON})`, () => {
  beforeAll(() => {
    rootfs = scratchRootfs(['probe']);
  });
  afterAll(() => removeRootfs(rootfs));

  it('CVE-2024-21626 (a host fd leaked into the container): none is open inside, and cwd /proc/self/fd/N finds none', async () => {
    // Host directories open in the Node process, as a runtime's cgroup or state dir fds would be.
    const dir = mkdtempSync(`${tmpdir()}/sbx-leak-`);
    const fds = Array.from({ length: 12 }, () => openSync(dir, 'r'));
    try {
      const r = await Container.run({ rootfs, args: ['/probe', 'report'] });
      const report = JSON.parse(r.stdout) as ProbeReport;
      expect(report.fds).toEqual([0, 1, 2]);
      expect(report.cwd).toBe('/');
      // The attack: a working directory through a leaked fd. Every N a host fd has here fails.
      for (const n of [3, 4, 5, 6, 7, 8, fds[0]!, fds.at(-1)!]) {
        const e = await rejection(Container.create({ rootfs, args: ['/probe'], cwd: `/proc/self/fd/${n}` }));
        expect([e.code, e.stage], `fd ${n}`).toEqual(['ENOENT', 'cwd']);
      }
    } finally {
      for (const fd of fds) closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  });

  it('a hostile workload: the kernel interfaces of the classic escapes are refused', async () => {
    const before = hostMountinfo();
    const names = ['mount', 'mknod-block', 'open_by_handle_at', 'ptrace', 'unshare-user', 'setns', 'bpf', 'keyctl', 'kexec_load', 'init_module'];
    const r = await Container.run({ rootfs, args: ['/probe', 'try', ...names] });
    const t = JSON.parse(r.stdout) as Record<string, string>;
    for (const n of names) expect(t[n], n).toBe('EPERM');
    expect(hostMountinfo()).toBe(before);
  });

  it('the container sees neither the host pids nor the host hostname', async () => {
    const r = JSON.parse((await Container.run({ rootfs, args: ['/probe', 'report'] })).stdout) as ProbeReport;
    expect(r.pid).toBe(1);
    expect(r.procPids).toEqual([1]);
    expect(r.hostname).not.toBe(hostname());
    expect(r.ns.uts).not.toBe(readlinkSync('/proc/self/ns/uts'));
  });
});
