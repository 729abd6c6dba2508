/**
 * The handshake's named steps, through the addon's Child with plans built here: a SYNC point the
 * plan places between ops, fds the caller gives with a plan (FD.PLAN0 on), and what the parent
 * refuses out of order (docs/protocol.md).
 */
import { readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EV, native, STDIO, type NativeChild } from '../../src-ts/native/addon.js';
import { hostInfo } from '../../src-ts/container/host.js';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildPlan, type Op, type Plan } from '../../src-ts/plan/plan.js';
import { CLONE, FD } from '../../src-ts/plan/wire.js';
import { buildSpec } from '../../src-ts/spec/spec.js';
import { isRoot, removeRootfs, ROOT_REASON, scratchRootfs } from './helpers.js';

interface Run {
  child: NativeChild;
  events: number[][];
  /** Resolves with the first event of this type (and its arguments). */
  next(type: number): Promise<number[]>;
}

let rootfs = '';
let n = 0;

function planOf(edit: (ops: Op[]) => Op[] = (ops) => ops): Plan {
  const spec = buildSpec({ rootfs, args: ['/probe', 'exit', '0'], id: `proto-${n++}` }, () => 'x');
  const plan = buildPlan(spec, hostInfo(), { bindSourceIsFile: spec.mounts.map(() => false) });
  return { ...plan, ops: edit(plan.ops) };
}

function spawn(plan: Plan, fds?: number[]): Run {
  const events: number[][] = [];
  const waiters: { type: number; resolve: (e: number[]) => void }[] = [];
  const child = new (native().Child)(encodePlan(plan), [STDIO.IGNORE, STDIO.IGNORE, STDIO.IGNORE], (...e) => {
    events.push(e);
    for (const w of waiters.splice(0)) if (w.type === e[0]) w.resolve(e);
    else waiters.push(w);
  }, fds);
  return {
    child,
    events,
    next: (type) => {
      const seen = events.find((e) => e[0] === type);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ type, resolve }));
    },
  };
}

const after = (kind: Op['kind'], op: Op) => (ops: Op[]) => {
  const i = ops.findIndex((o) => o.kind === kind);
  return [...ops.slice(0, i + 1), op, ...ops.slice(i + 1)];
};

describe.skipIf(!isRoot)(`the handshake (${ROOT_REASON})`, () => {
  beforeAll(() => {
    rootfs = scratchRootfs(['probe']);
  });
  afterAll(() => removeRootfs(rootfs));

  it('a SYNC point waits for resume(point), then setup goes on to READY and the exec', async () => {
    const r = spawn(planOf(after('unshare', { stage: 'sync', kind: 'sync', point: 7 })));
    const [, point] = await r.next(EV.SYNC);
    expect(point).toBe(7);
    await new Promise((res) => setTimeout(res, 20));
    expect(r.events.map((e) => e[0])).toEqual([EV.SYNC]); // nothing past the point until resumed
    expect(r.child.start()).toBeLessThan(0); // START is refused before READY (-EPROTO)
    expect(r.child.resume(8)).toBeLessThan(0); // a point the child is not at
    expect(r.child.resume(7)).toBe(0);
    await r.next(EV.READY);
    expect(r.child.start()).toBe(0);
    const [, code] = await r.next(EV.EXIT);
    expect(code).toBe(0);
    expect(r.events.filter((e) => e[0] === EV.ERROR)).toEqual([]);
  });

  it('resume(point, errno) makes the child fail there with that errno', async () => {
    const r = spawn(planOf(after('unshare', { stage: 'sync', kind: 'sync', point: 1 })));
    await r.next(EV.SYNC);
    expect(r.child.resume(1, 13 /* EACCES */)).toBe(0);
    const [, stage, op, errno] = await r.next(EV.ERROR);
    expect([stage, errno]).toEqual([11 /* STAGE_SYNC */, 13]);
    expect(op).toBeGreaterThan(0);
    await r.next(EV.EXIT);
    expect(r.events.some((e) => e[0] === EV.READY)).toBe(false);
  });

  it('a plan fd: setns into the uts namespace of another container given at FD.PLAN0', async () => {
    const first = spawn(planOf());
    await first.next(EV.READY);
    const uts = readlinkSync(`/proc/${first.child.pid}/ns/uts`);
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(`/proc/${first.child.pid}/ns/uts`, 'r');
    // The joining container makes no uts namespace of its own and sets no hostname: it joins.
    const second = spawn(
      planOf((ops) =>
        after('unshare', { stage: 'prepare', kind: 'setns', fd: FD.PLAN0, nstype: CLONE.NEWUTS })(
          ops
            .filter((o) => o.kind !== 'sethostname')
            .map((o) => (o.kind === 'unshare' ? { ...o, flags: o.flags & ~CLONE.NEWUTS } : o)),
        ),
      ),
      [fd],
    );
    closeSync(fd);
    await second.next(EV.READY);
    expect(readlinkSync(`/proc/${second.child.pid}/ns/uts`)).toBe(uts);
    expect(readlinkSync(`/proc/${second.child.pid}/ns/uts`)).not.toBe(readlinkSync('/proc/self/ns/uts'));
    for (const r of [first, second]) r.child.kill(9);
    await Promise.all([first.next(EV.EXIT), second.next(EV.EXIT)]);
  });

  it('a plan that names a plan fd it was not given is refused before the clone', () => {
    const plan = planOf(after('unshare', { stage: 'prepare', kind: 'setns', fd: FD.PLAN0 + 1, nstype: CLONE.NEWUTS }));
    let err: (Error & { stage?: string; errno?: number }) | undefined;
    try {
      spawn(plan, [0]);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.stage).toBe('plan');
    expect(err?.errno).toBe(9); // EBADF
  });
});
