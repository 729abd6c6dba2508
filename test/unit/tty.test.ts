/**
 * tty: true without root: the options (src-ts/spec/tty.ts), where the plan puts tty-open in a
 * container's plan and an exec's (and that the default plan has none). The addon's check of the
 * op is in plan-validate.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { buildExecPlan, EXEC_FD } from '../../src-ts/plan/exec.js';
import { buildPlan, TTY_BUILT_ROOT, type HostInfo, type Op, type Plan } from '../../src-ts/plan/plan.js';
import { FD } from '../../src-ts/plan/wire.js';
import type { HostCaps } from '../../src-ts/security/capabilities.js';
import { defaultMounts, parseMount } from '../../src-ts/spec/mounts.js';
import { buildSpec, type ContainerOptions } from '../../src-ts/spec/spec.js';
import { checkOwnDevpts, parseTty } from '../../src-ts/spec/tty.js';
import { expectInvalid } from './helpers.js';

const CAPS: HostCaps = { last: 40, bounding: 2 ** 41 - 1 };
const spec = (o: Partial<ContainerOptions> = {}) => buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep'], ...o } as ContainerOptions, () => '0123456789abcdef', { caps: CAPS });
const host = (mountMode: HostInfo['mountMode']): HostInfo => ({ cgroup: 'v2', resolvConf: '', mountMode });
const planOf = (o: Partial<ContainerOptions>, mode: HostInfo['mountMode'] = 'base') => {
  const s = spec(o);
  return buildPlan(s, host(mode), { bindSourceIsFile: s.mounts.map(() => false) });
};
const kinds = (p: Plan) => p.ops.map((o) => o.kind);

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
      expectInvalid(() => parseTty(tty, size, stdio), { option });
    }
  });

  it("needs the container's own devpts at /dev/pts, not covered by a later mount", () => {
    const m = (d: string, type: string) => parseMount({ destination: d, type, source: type === 'bind' ? '/srv' : type, ...(type === 'bind' ? { options: ['rbind'] } : {}) }, 0);
    expect(() => checkOwnDevpts(defaultMounts.map((x, i) => parseMount(x, i)))).not.toThrow();
    for (const mounts of [[], [m('/dev', 'tmpfs')], [m('/dev/pts', 'devpts'), m('/dev', 'tmpfs')], [m('/dev/pts', 'bind')], [m('/dev/pts', 'tmpfs')]]) {
      expectInvalid(() => checkOwnDevpts(mounts), { option: 'tty', path: '/dev/pts' });
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
  const op: Op = { stage: 'device', kind: 'tty-open', path: 'dev/pts/ptmx', socket: FD.PLAN0, // no joins: the first plan fd
    root: TTY_BUILT_ROOT, cols: 120, rows: 40, uid: 0 };

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
    expect(p.ops[1]).toEqual({ stage: 'device', kind: 'tty-open', path: 'dev/pts/ptmx', socket: EXEC_FD.TTY, root: EXEC_FD.ROOT, cols: 90, rows: 30, uid: 0 });
    // The slave goes to the exec's user, not the container's.
    expect(buildExecPlan(c, { ...c, user: { uid: 1000, gid: 1000, additionalGids: [] } }, {}, { tty: { cols: 90, rows: 30 } }).ops[1]).toMatchObject({ uid: 1000 });
    expect(planOf({ tty: true, user: { uid: 1001, gid: 1001 } }).ops.find((o) => o.kind === 'tty-open')).toMatchObject({ uid: 1001 });
    expect(EXEC_FD.TTY).toBe(FD.PLAN0 + 2);
    expect(buildExecPlan(c, c, {}, { tty: null }).ops).toEqual(buildExecPlan(c, c, {}).ops);
  });
});
