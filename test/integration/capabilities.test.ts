/**
 * Capabilities as the process inside sees them (the probe reads /proc/self/status), for root and
 * for a non-root user, and what they allow: binding a port below 1024 as a non-root user.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, type ContainerOptions } from '../../src-ts/index.js';
import { hostInfo } from '../../src-ts/container/host.js';
import { EV, native, STDIO } from '../../src-ts/native/addon.js';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildPlan, type Op } from '../../src-ts/plan/plan.js';
import { STAGES } from '../../src-ts/plan/wire.js';
import { buildSpec } from '../../src-ts/spec/spec.js';
import { CAPABILITY_NAMES, hostCapabilities } from '../../src-ts/security/capabilities.js';
import { children, isRoot, OCI_DEFAULT_CAPS, rejection, removeRootfs, ROOT_REASON, scratchRootfs, type ProbeReport } from './helpers.js';

const USER = { uid: 1000, gid: 1000 };
const ZERO = '0000000000000000';
/** A mask of these capability numbers as /proc/self/status prints it. */
const hex = (...caps: number[]) => caps.reduce((m, c) => m + 2n ** BigInt(c), 0n).toString(16).padStart(16, '0');
const CAP = Object.fromEntries(CAPABILITY_NAMES.map((n, i) => [n.slice(4), i])) as Record<string, number>;

/**
 * The default plan with one op replaced, run by the addon's Child: the child's first ERROR as
 * [stage, op index, errno], or null when it got to READY.
 */
async function childError(rootfs: string, kind: Op['kind'], op: Op): Promise<[string, number, number] | null> {
  const spec = buildSpec({ rootfs, args: ['/probe', 'exit', '0'], user: USER }, () => 'caps-child');
  const plan = buildPlan(spec, hostInfo(), { bindSourceIsFile: spec.mounts.map(() => false) });
  const at = plan.ops.findIndex((o) => o.kind === kind);
  plan.ops[at] = op;
  let error: [string, number, number] | null = null;
  return new Promise((resolve) => {
    const child = new (native().Child)(encodePlan(plan), [STDIO.IGNORE, STDIO.IGNORE, STDIO.IGNORE], (type, a, b, c) => {
      if (type === EV.ERROR) error = [STAGES[a]!, b - at, c];
      else if (type === EV.READY) child.kill(9);
      else if (type === EV.EXIT) resolve(error); // reaped: nothing left behind
    });
  });
}

describe.skipIf(!isRoot)(`capabilities inside the container (${ROOT_REASON})`, () => {
  let rootfs: string;
  beforeAll(() => {
    rootfs = scratchRootfs(['probe']);
  });
  afterAll(() => removeRootfs(rootfs));

  const report = async (o: Partial<ContainerOptions> = {}) =>
    JSON.parse((await Container.run({ rootfs, args: ['/probe', 'report'], ...o })).stdout) as ProbeReport;
  const bind = async (port: number, o: Partial<ContainerOptions> = {}) =>
    JSON.parse((await Container.run({ rootfs, args: ['/probe', 'bind-port', String(port)], ...o })).stdout) as unknown;

  it('a non-root user keeps the OCI default set across setuid and execve (through the ambient set)', async () => {
    const r = await report({ user: USER });
    expect([r.uid, r.gid]).toEqual([1000, 1000]);
    const d = OCI_DEFAULT_CAPS;
    expect(r.caps).toEqual({ CapInh: d, CapPrm: d, CapEff: d, CapBnd: d, CapAmb: d });
  });

  it('add SYS_ADMIN: root and a non-root user see it in every set', async () => {
    const want = hex(CAP.KILL!, CAP.NET_BIND_SERVICE!, CAP.SYS_ADMIN!, CAP.AUDIT_WRITE!);
    for (const user of [undefined, USER]) {
      const r = await report({ capabilities: { add: ['SYS_ADMIN'] }, ...(user ? { user } : {}) });
      expect(r.caps, JSON.stringify(user)).toEqual({ CapInh: want, CapPrm: want, CapEff: want, CapBnd: want, CapAmb: want });
    }
  });

  it('drop ALL: nothing at all, root included', async () => {
    const r = await report({ capabilities: { drop: ['ALL'] } });
    expect(r.uid).toBe(0);
    expect(r.caps).toEqual({ CapInh: ZERO, CapPrm: ZERO, CapEff: ZERO, CapBnd: ZERO, CapAmb: ZERO });
  });

  it('the OCI form, as a config.json has it: each set exactly as given', async () => {
    const capabilities = {
      bounding: ['CAP_KILL', 'CAP_CHOWN', 'CAP_NET_BIND_SERVICE'],
      effective: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      permitted: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      inheritable: ['CAP_NET_BIND_SERVICE'],
      ambient: ['CAP_NET_BIND_SERVICE'],
    };
    // A non-root user after execve has its ambient set, in permitted and effective.
    const u = await report({ user: USER, capabilities });
    expect(u.caps).toEqual({
      CapInh: hex(CAP.NET_BIND_SERVICE!),
      CapPrm: hex(CAP.NET_BIND_SERVICE!),
      CapEff: hex(CAP.NET_BIND_SERVICE!),
      CapBnd: hex(CAP.CHOWN!, CAP.KILL!, CAP.NET_BIND_SERVICE!),
      CapAmb: hex(CAP.NET_BIND_SERVICE!),
    });
    // Root's execve gives it the bounding set (the kernel's rule for uid 0), within what it
    // had permitted (no_new_privs): KILL and NET_BIND_SERVICE, not CHOWN.
    const r = await report({ capabilities });
    expect(r.caps).toMatchObject({ CapPrm: hex(CAP.KILL!, CAP.NET_BIND_SERVICE!), CapEff: hex(CAP.KILL!, CAP.NET_BIND_SERVICE!) });
  });

  it('a non-root user binds port 80 with NET_BIND_SERVICE, and not without it', async () => {
    expect(await bind(80, { user: USER, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } })).toEqual({ ok: true });
    expect(await bind(80, { user: USER })).toEqual({ ok: true }); // in the default set
    expect(await bind(80, { user: USER, capabilities: { drop: ['NET_BIND_SERVICE'] } })).toEqual({ ok: false, errno: 'EACCES' });
    expect(await bind(8080, { user: USER, capabilities: { drop: ['ALL'] } })).toEqual({ ok: true }); // the EACCES was the capability's
  });

  const missing = CAPABILITY_NAMES.filter((n, i) => i <= hostCapabilities().last && Math.floor(hostCapabilities().bounding / 2 ** i) % 2 === 0);
  it.skipIf(missing.length === 0)(
    `a capability the Node process lacks (${missing[0] ?? 'none: every one is in this bounding set'}) is EPERM before anything is cloned`,
    async () => {
      const before = children().length;
      const e = await rejection(Container.create({ rootfs, args: ['/probe'], capabilities: { add: ['KILL', missing[0]!.slice(4)] } }));
      expect(e).toMatchObject({ code: 'EPERM', stage: 'validate', option: 'capabilities.add[1]', errno: 1 });
      expect(children()).toHaveLength(before);
    },
  );

  it('what the validation refuses is what the kernel refuses: the child fails at that op with EPERM', async () => {
    const k = 2 ** CAP.KILL!;
    // effective beyond permitted: capset(2) refuses it.
    const capset: Op = { stage: 'security', kind: 'capset', effectiveLo: k, effectiveHi: 0, permittedLo: 0, permittedHi: 0, inheritable: 0 };
    expect(await childError(rootfs, 'capset', capset)).toEqual(['security', 0, 1]);
    // ambient without inheritable (runc spec's sets): PR_CAP_AMBIENT_RAISE refuses it.
    const ambient: Op = { stage: 'security', kind: 'cap-ambient', ambient: 2 ** CAP.SYS_ADMIN! };
    expect(await childError(rootfs, 'cap-ambient', ambient)).toEqual(['security', 0, 1]);
    // The op as the plan makes it gets through.
    expect(await childError(rootfs, 'cap-ambient', { stage: 'security', kind: 'cap-ambient', ambient: k })).toBeNull();
  });

  it('an unknown name is EINVAL at validate, naming the entry', async () => {
    const e = await rejection(Container.run({ rootfs, args: ['/probe'], capabilities: { drop: ['NET_RAW', 'CAP_NETRAW'] } }));
    expect(e).toMatchObject({ code: 'EINVAL', stage: 'validate', option: 'capabilities.drop[1]' });
  });
});
