/**
 * The exec plan (src-ts/plan/exec.ts): the exact op list (join, enter-root, then the same process
 * ops as a container's PID 1), the namespaces it joins, and the addon's check of JOIN and
 * ENTER_ROOT. No root needed.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { NativeAddon } from '../../src-ts/native/addon.js';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildExecPlan, EXEC_FD, joinFlagsOf } from '../../src-ts/plan/exec.js';
import { buildPlan, processOps, type Op } from '../../src-ts/plan/plan.js';
import { CLONE, FD } from '../../src-ts/plan/wire.js';
import type { HostCaps } from '../../src-ts/security/capabilities.js';
import { buildSpec, type ContainerOptions, type Spec } from '../../src-ts/spec/spec.js';

const CAPS: HostCaps = { last: 40, bounding: 2 ** 41 - 1 };
const OCI_DEFAULT = 2 ** 5 + 2 ** 10 + 2 ** 29;
const spec = (o: Partial<ContainerOptions> = {}): Spec =>
  buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep'], ...o } as ContainerOptions, () => '0123456789abcdef', { caps: CAPS });
const SECCOMP = { seccomp: { bpf: new Uint8Array(16), flags: 0 } };
const root = fileURLToPath(new URL('../../', import.meta.url));
const addon = (createRequire(import.meta.url)('node-gyp-build') as (dir: string) => NativeAddon)(root);

describe('buildExecPlan', () => {
  const c = spec();
  const proc = { ...c, args: ['/probe', 'report'], cwd: '/etc', user: { uid: 1000, gid: 1000, additionalGids: [] } };

  it('is the exact op list: join, enter-root, then the process ops of a container', () => {
    const p = buildExecPlan(c, proc, SECCOMP);
    const seccomp: Op = { stage: 'security', kind: 'seccomp', bpf: SECCOMP.seccomp.bpf, instructions: 2, flags: 0 };
    expect(p).toEqual({
      cloneFlags: 0, // no new namespace: the pid namespace is joined by the parent around clone3
      detached: false,
      trace: false,
      base: false,
      ops: [
        { stage: 'prepare', kind: 'join', fd: FD.PLAN0, nstypes: CLONE.NEWNS | CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWIPC | CLONE.NEWUTS },
        { stage: 'pivot', kind: 'enter-root', fd: FD.PLAN0 + 1 },
        { stage: 'security', kind: 'rlimit', resource: 7, softLo: 1024, softHi: 0, hardLo: 1024, hardHi: 0 },
        { stage: 'security', kind: 'cap-bounding', keep: OCI_DEFAULT, last: 40 },
        { stage: 'security', kind: 'keep-caps' },
        { stage: 'user', kind: 'setuser', uid: 1000, gid: 1000, groups: [] },
        { stage: 'cwd', kind: 'chdir', path: '/etc' },
        { stage: 'user', kind: 'no-new-privs' },
        { stage: 'security', kind: 'capset', effectiveLo: OCI_DEFAULT, effectiveHi: 0, permittedLo: OCI_DEFAULT, permittedHi: 0, inheritable: OCI_DEFAULT },
        { stage: 'security', kind: 'cap-ambient', ambient: OCI_DEFAULT },
        { stage: 'exec', kind: 'resolve-exec', file: '/probe', searchPath: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
        { stage: 'sync', kind: 'ready' },
        { stage: 'sync', kind: 'wait-start' },
        seccomp,
        { stage: 'exec', kind: 'exec', args: ['/probe', 'report'], env: c.env, umask: 0o22 },
      ],
    });
    expect(EXEC_FD).toEqual({ PIDFD: FD.PLAN0, ROOT: FD.PLAN0 + 1, TTY: FD.PLAN0 + 2 });
  });

  it("ends in the same process ops as the container's own plan (one builder, processOps)", () => {
    const own = buildPlan(c, { cgroup: 'v2', resolvConf: '', mountMode: 'base' }, { bindSourceIsFile: c.mounts.map(() => false) }, SECCOMP).ops;
    const tail = processOps(c, SECCOMP);
    expect(own.slice(own.length - tail.length)).toEqual(tail);
    expect(buildExecPlan(c, c, SECCOMP).ops.slice(2)).toEqual(tail);
  });

  it('puts a sync point before ready when asked (after every credential op)', () => {
    const ops = buildExecPlan(c, proc, {}, { syncPoint: 70 }).ops.map((o) => o.kind);
    expect(ops.slice(ops.indexOf('cap-ambient'))).toEqual(['cap-ambient', 'resolve-exec', 'sync', 'ready', 'wait-start', 'exec']);
  });

  it("joins the namespaces the container has of its own, the mount one always", () => {
    expect(joinFlagsOf(spec({ namespaces: { pid: false, network: false, ipc: false, uts: false } }).namespaces)).toBe(CLONE.NEWNS);
    expect(joinFlagsOf(spec({ namespaces: { cgroup: true } }).namespaces) & CLONE.NEWCGROUP).toBe(CLONE.NEWCGROUP);
    expect(joinFlagsOf(spec({ namespaces: { network: 'shared' } }).namespaces) & CLONE.NEWNET).toBe(CLONE.NEWNET);
  });
});

/** The addon's verdict on a plan of these ops: the error message, or null if it would spawn. */
function refusal(ops: Op[]): string | null {
  const tail: Op[] = [
    { stage: 'sync', kind: 'ready' },
    { stage: 'sync', kind: 'wait-start' },
    { stage: 'exec', kind: 'exec', args: ['/x'], env: [], umask: 0o22 },
  ];
  try {
    // No fds are given: a valid plan fails at stage plan for its missing plan fd (EBADF) instead.
    new addon.Child(encodePlan({ cloneFlags: 0, detached: false, trace: false, base: false, ops: [...ops, ...tail] }), [-3, -3, -3], () => {});
  } catch (e) {
    expect((e as { stage?: string }).stage).toBe('plan');
    return (e as Error).message;
  }
  return null;
}

describe('PreparePlan: join and enter-root', () => {
  it('refuses a join of no namespace, of a user namespace, or beyond namespaces, and stdio as its fd', () => {
    expect(refusal([{ stage: 'prepare', kind: 'join', fd: FD.PLAN0, nstypes: 0 }])).toMatch(/JOIN: bad fd index or namespaces/);
    expect(refusal([{ stage: 'prepare', kind: 'join', fd: FD.PLAN0, nstypes: CLONE.NEWNS | CLONE.NEWUSER }])).toMatch(/JOIN/);
    expect(refusal([{ stage: 'prepare', kind: 'join', fd: FD.PLAN0, nstypes: CLONE.NEWNS | 0x100 /* CLONE_VM */ }])).toMatch(/JOIN/);
    expect(refusal([{ stage: 'prepare', kind: 'join', fd: 1, nstypes: CLONE.NEWNS }])).toMatch(/JOIN/);
    expect(refusal([{ stage: 'pivot', kind: 'enter-root', fd: 2 }])).toMatch(/ENTER_ROOT: bad fd index/);
  });

  it('takes a valid one, and then wants the plan fds it names (EBADF when not given)', () => {
    expect(refusal([{ stage: 'prepare', kind: 'join', fd: FD.PLAN0, nstypes: CLONE.NEWNS | CLONE.NEWPID }, { stage: 'pivot', kind: 'enter-root', fd: FD.PLAN0 + 1 }])).toMatch(
      /plan fd/,
    );
  });
});
