/**
 * The cgroup v2 code path, on the cgroup2 tree of a hybrid host: it holds no controllers there,
 * but the core files every v2 cgroup has (cgroup.procs, cgroup.freeze, cgroup.kill,
 * cgroup.events, cpu.stat) are enough for placement by CLONE_INTO_CGROUP, freeze, kill and stats.
 * On a pure v2 host ./cgroups.test.ts runs this manager with its controllers instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cgroupLayout, type CgroupLayout } from '../../src-ts/cgroup/layout.js';
import { overrideCgroupLayout } from '../../src-ts/cgroup/manager.js';
import { Container, defaultMounts, type ContainerOptions, type RunOptions } from '../../src-ts/index.js';
import { lastNumber, leftovers, loadOptions, outputUntil, removeParent, running, tap } from './cgroup-helpers.js';
import { isRoot, rejection, removeRootfs, ROOT_REASON, scratchRootfs } from './helpers.js';

const host = cgroupLayout();
const skip = !isRoot ? ROOT_REASON : host.kind !== 'hybrid' ? `needs a hybrid host (this one is ${host.kind}): ./cgroups.test.ts covers v2 on a v2 host` : null;
const v2: CgroupLayout = { kind: 'v2', v1: new Map(), v2: host.v2, self: new Map([['', host.self.get('') ?? '/']]) };
const parent = `/sbx-test-v2-${process.pid}`;

describe.skipIf(skip !== null)(`cgroup v2 manager on the cgroup2 tree without controllers${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let rootfs: string;
  const opts = (args: string[], more: Partial<RunOptions> = {}): RunOptions => loadOptions(rootfs, parent, args, more);
  beforeAll(() => {
    overrideCgroupLayout(v2);
    rootfs = scratchRootfs(['cgroup-load']);
  });
  afterAll(() => {
    overrideCgroupLayout(undefined);
    removeRootfs(rootfs);
    expect(leftovers(v2, parent)).toEqual([]);
    removeParent(v2, parent);
  });

  it('is born in its cgroup (CLONE_INTO_CGROUP: no sync op in the plan), and the cgroup goes with delete()', async () => {
    const c = await Container.create(opts(['cgroup'], { trace: true }));
    expect(c.setupTrace()!.map((t) => t.kind)).not.toContain('sync');
    const dir = (await c.inspect()).cgroup!.dirs[0]!;
    expect(dir).toBe(`${host.v2}${parent}/sbx-${process.pid}-${c.id}`);
    // Already in it before start(): the setup ran there too.
    expect(readFileSync(`${dir}/cgroup.procs`, 'utf8').trim()).toBe(String(c.pid));
    const out = outputUntil(c.stdout!, (t) => t.includes('0::'));
    await c.start();
    expect((await out).split('\n')).toContain(`0::${parent}/sbx-${process.pid}-${c.id}`);
    await c.delete();
    expect(existsSync(dir)).toBe(false);
  });

  it("an exec'd process is born in the container's cgroup too (CLONE_INTO_CGROUP with its directory)", async () => {
    const c = await Container.create(opts(['counter']));
    await c.start();
    const r = await c.exec({ args: ['/cgroup-load', 'cgroup'] });
    expect(r.stdout.split('\n')).toContain(`0::${parent}/sbx-${process.pid}-${c.id}`);
    await c.delete();
  });

  it('freeze and thaw through cgroup.freeze / cgroup.events', async () => {
    const c = await Container.create(opts(['counter']));
    try {
      const out = tap(c.stdout!);
      await c.start();
      await outputUntil(c.stdout!, (t) => t.split('\n').length > 5);
      await c.pause();
      const dir = (await c.inspect()).cgroup!.dirs[0]!;
      expect(readFileSync(`${dir}/cgroup.events`, 'utf8')).toContain('frozen 1');
      await new Promise((r) => setTimeout(r, 50));
      const at = lastNumber(out.text());
      await new Promise((r) => setTimeout(r, 300));
      expect(lastNumber(out.text())).toBe(at);
      c.resume();
      await outputUntil(c.stdout!, () => lastNumber(out.text()) > at + 3);
    } finally {
      await c.delete();
    }
  });

  it('cgroup.kill takes a daemon left behind by PID 1', async () => {
    const c = await Container.create(opts(['daemon'], { namespaces: { pid: false } }));
    try {
      const out = outputUntil(c.stdout!, (t) => t.endsWith('\n'));
      await c.start();
      const daemon = Number(await out);
      await c.wait();
      expect(running(daemon)).toBe(true);
      await c.killAll();
      expect(running(daemon)).toBe(false);
      const dir = (await c.inspect()).cgroup!.dirs[0]!;
      await vi.waitFor(() => expect(readFileSync(`${dir}/cgroup.events`, 'utf8')).toContain('populated 0'));
    } finally {
      await c.delete();
    }
  });

  it('stats: cpu from cpu.stat; memory and pids absent without their controllers', async () => {
    const c = await Container.create(opts(['spin', '0.2']));
    try {
      await c.start();
      await c.wait();
      const s = c.stats();
      expect(s.cpu!.usageUsec).toBeGreaterThan(20_000); // 0.2 s of spinning, on a shared machine
      expect(s.cpu!.userUsec + s.cpu!.systemUsec).toBeGreaterThan(0);
      expect(s.memory).toBeUndefined();
      expect(s.pids).toBeUndefined();
    } finally {
      await c.delete();
    }
  });

  it('limits need controllers this tree lacks: ENOTSUP at stage cgroup, naming cgroup.controllers, nothing left', async () => {
    const e = await rejection(Container.create(opts(['cgroup'], { resources: { pids: { limit: 10 } } })));
    expect(e).toMatchObject({ code: 'ENOTSUP', stage: 'cgroup' });
    expect(e.path).toMatch(/cgroup\.controllers$/);
    expect(e.message).toContain('pids');
    expect(leftovers(v2, parent)).toEqual([]);
  });

  it('the device allow-list is a BPF program on the cgroup: deny-all stops a bound host device, the runtime\'s own nodes still open', async () => {
    // Opening /dev/kmsg needs CAP_SYSLOG, which the default capability set lacks: given here (this
    // test is about the device cgroup).
    const kmsg = { mounts: [...defaultMounts, { destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['bind'] }], capabilities: { add: ['SYSLOG'] } };
    expect((await Container.run(opts(['open', '/dev/kmsg'], kmsg))).stdout).toBe('ok\n');
    const denyAll = { resources: { devices: [{ allow: false }] } };
    expect((await Container.run(opts(['open', '/dev/kmsg'], { ...kmsg, ...denyAll }))).stdout).toBe('EPERM\n');
    expect((await Container.run(opts(['open', '/dev/null'], denyAll))).stdout).toBe('ok\n');
    const readOnly = { resources: { devices: [{ allow: false }, { allow: true, type: 'c' as const, major: 1, minor: 11, access: 'r' }] } };
    expect((await Container.run(opts(['open', '/dev/kmsg'], { ...kmsg, ...readOnly }))).stdout).toBe('ok\n');
    expect(leftovers(v2, parent)).toEqual([]);
  });
});
