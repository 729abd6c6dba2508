/**
 * tty: true without root: the options (src-ts/spec/tty.ts), where the plan puts tty-open in a
 * container's plan and an exec's (and that the default plan has none), and the addon's check of
 * the op (src-native/parent/plan.cc).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ContainerError } from '../../src-ts/errors.js';
import type { NativeAddon } from '../../src-ts/native/addon.js';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildExecPlan, EXEC_FD } from '../../src-ts/plan/exec.js';
import { buildPlan, TTY_BUILT_ROOT, TTY_SOCKET_FD, type HostInfo, type Op, type Plan } from '../../src-ts/plan/plan.js';
import { FD } from '../../src-ts/plan/wire.js';
import type { HostCaps } from '../../src-ts/security/capabilities.js';
import { defaultMounts } from '../../src-ts/spec/mounts.js';
import { buildSpec, type ContainerOptions } from '../../src-ts/spec/spec.js';
import { checkOwnDevpts, parseTty } from '../../src-ts/spec/tty.js';
import { parseMount } from '../../src-ts/spec/mounts.js';

const CAPS: HostCaps = { last: 40, bounding: 2 ** 41 - 1 };
const spec = (o: Partial<ContainerOptions> = {}) => buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep'], ...o } as ContainerOptions, () => '0123456789abcdef', { caps: CAPS });
const host = (mountMode: HostInfo['mountMode']): HostInfo => ({ cgroup: 'v2', resolvConf: '', mountMode });
const planOf = (o: Partial<ContainerOptions>, mode: HostInfo['mountMode'] = 'base') => {
  const s = spec(o);
  return buildPlan(s, host(mode), { bindSourceIsFile: s.mounts.map(() => false) });
};
const kinds = (p: Plan) => p.ops.map((o) => o.kind);

function refused(f: () => unknown): ContainerError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ContainerError);
    return e as ContainerError;
  }
  throw new Error('expected a ContainerError');
}

describe('the tty options', () => {
  it('gives 80 x 24 by default, the size asked otherwise, and null without tty', () => {
    expect(parseTty(true, undefined, undefined)).toEqual({ cols: 80, rows: 24 });
    expect(parseTty(true, { cols: 200, rows: 50 }, 'pipe')).toEqual({ cols: 200, rows: 50 });
    expect(parseTty(undefined, undefined, 'inherit')).toBeNull();
    expect(parseTty(false, undefined, undefined)).toBeNull();
  });

  it('refuses stdio with a tty, a size without one, and sizes a winsize cannot hold', () => {
    const cases: [unknown, unknown, unknown, string][] = [
      [true, undefined, 'inherit', 'stdio'],
      [true, undefined, ['pipe', 'pipe', 'pipe'], 'stdio'],
      ['yes', undefined, undefined, 'tty'],
      [false, { cols: 80, rows: 24 }, undefined, 'ttySize'],
      [true, { cols: 0, rows: 24 }, undefined, 'ttySize.cols'],
      [true, { cols: 80, rows: 65536 }, undefined, 'ttySize.rows'],
      [true, { cols: 80.5, rows: 24 }, undefined, 'ttySize.cols'],
      [true, { cols: 80, rows: 24, width: 1 }, undefined, 'ttySize.width'],
      [true, [80, 24], undefined, 'ttySize'],
      [true, null, undefined, 'ttySize'],
    ];
    for (const [tty, size, stdio, option] of cases) {
      const e = refused(() => parseTty(tty, size, stdio));
      expect([e.code, e.stage, e.option], JSON.stringify([tty, size, stdio])).toEqual(['EINVAL', 'validate', option]);
    }
  });

  it("needs the container's own devpts at /dev/pts, not covered by a later mount", () => {
    const m = (d: string, type: string) => parseMount({ destination: d, type, source: type === 'bind' ? '/srv' : type, ...(type === 'bind' ? { options: ['rbind'] } : {}) }, 0);
    expect(() => checkOwnDevpts(defaultMounts.map((x, i) => parseMount(x, i)))).not.toThrow();
    for (const mounts of [[], [m('/dev', 'tmpfs')], [m('/dev/pts', 'devpts'), m('/dev', 'tmpfs')], [m('/dev/pts', 'bind')], [m('/dev/pts', 'tmpfs')]]) {
      const e = refused(() => checkOwnDevpts(mounts));
      expect([e.code, e.option, e.path]).toEqual(['EINVAL', 'tty', '/dev/pts']);
    }
  });

  it('makes stdio /dev/null in the spec: the slave replaces it', () => {
    const s = spec({ tty: true });
    expect(s.tty).toEqual({ cols: 80, rows: 24 });
    expect(s.stdio).toEqual(['ignore', 'ignore', 'ignore']);
    expect(spec().tty).toBeNull();
  });
});

describe('tty-open in the plans', () => {
  const op: Op = { stage: 'device', kind: 'tty-open', path: 'dev/pts/ptmx', socket: TTY_SOCKET_FD, root: TTY_BUILT_ROOT, cols: 120, rows: 40 };

  it('the default plan has none (a container without a tty pays nothing)', () => {
    for (const mode of ['base', 'host'] as const) expect(kinds(planOf({}, mode))).not.toContain('tty-open');
  });

  it('comes right before the root is entered, the ptmx resolved beneath the root being built', () => {
    for (const [mode, enter] of [['base', 'chroot'], ['host', 'pivot-root']] as const) {
      const p = planOf({ tty: true, ttySize: { cols: 120, rows: 40 } }, mode);
      const i = p.ops.findIndex((o) => o.kind === 'tty-open');
      expect(p.ops[i]).toEqual(op);
      expect(p.ops[i + 1]!.kind).toBe(enter);
      // After every mount (devpts among them) and device, before the user changes.
      expect(i).toBeGreaterThan(kinds(p).lastIndexOf('mount'));
      expect(i).toBeLessThan(kinds(p).indexOf('setuser'));
      // The rest of the plan is the plan without a tty.
      expect(p.ops.filter((o) => o.kind !== 'tty-open')).toEqual(planOf({}, mode).ops);
    }
  });

  it("an exec's comes between join and enter-root, beneath PID 1's root, its socket the third plan fd", () => {
    const c = spec();
    const p = buildExecPlan(c, c, {}, { tty: { cols: 90, rows: 30 } });
    expect(kinds(p).slice(0, 3)).toEqual(['join', 'tty-open', 'enter-root']);
    expect(p.ops[1]).toEqual({ stage: 'device', kind: 'tty-open', path: 'dev/pts/ptmx', socket: EXEC_FD.TTY, root: EXEC_FD.ROOT, cols: 90, rows: 30 });
    expect(EXEC_FD.TTY).toBe(FD.PLAN0 + 2);
    expect(buildExecPlan(c, c, {}, { tty: null }).ops).toEqual(buildExecPlan(c, c, {}).ops);
  });
});

describe('PreparePlan: tty-open', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const addon = (createRequire(import.meta.url)('node-gyp-build') as (dir: string) => NativeAddon)(root);
  const tail: Op[] = [
    { stage: 'exec', kind: 'resolve-exec', file: '/x', searchPath: null },
    { stage: 'sync', kind: 'ready' },
    { stage: 'sync', kind: 'wait-start' },
    { stage: 'exec', kind: 'exec', args: ['/x'], env: [], umask: 0o22 },
  ];
  /** The addon's refusal of a plan with this op, or the error a valid one meets next (no plan fd given). */
  function verdict(o: Partial<Extract<Op, { kind: 'tty-open' }>>): string {
    const ops: Op[] = [{ stage: 'device', kind: 'tty-open', path: 'dev/pts/ptmx', socket: FD.PLAN0, root: TTY_BUILT_ROOT, cols: 80, rows: 24, ...o }, ...tail];
    try {
      new addon.Child(encodePlan({ cloneFlags: 0, detached: false, trace: false, base: false, ops }), [-3, -3, -3], () => {});
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('the plan was spawned');
  }

  it('refuses stdio or an index out of range as the socket or root, and a size of 0 or above 65535', () => {
    for (const o of [{ socket: 1 }, { socket: 24 }, { root: 2 }, { root: 30 }, { cols: 0 }, { rows: 65536 }]) expect(verdict(o), JSON.stringify(o)).toMatch(/TTY_OPEN: bad fd index or size/);
  });

  it('takes a valid one, and then wants the console socket it names (EBADF when not given)', () => {
    expect(verdict({})).toMatch(/plan fd/);
    expect(verdict({ root: FD.PLAN0 + 1, cols: 65535, rows: 1 })).toMatch(/plan fd/);
  });
});
