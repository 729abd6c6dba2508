import { describe, expect, it } from 'vitest';
import {
  CAPABILITY_NAMES,
  capabilitiesOf,
  capabilityNames,
  hostCapabilities,
  parseCapMask,
  type CapSets,
  type HostCaps,
} from '../../src-ts/security/capabilities.js';
import { buildSpec } from '../../src-ts/spec/spec.js';
import { expectInvalid } from './helpers.js';

const ALL_41 = 2 ** 41 - 1;
/** A kernel with capabilities 0..40, all in the Node process's bounding set. */
const FULL: HostCaps = { last: 40, bounding: ALL_41 };
/** This test machine's shape: CAP_SYS_RESOURCE (24) missing from the bounding set. */
const NO_RESOURCE: HostCaps = { last: 40, bounding: ALL_41 - 2 ** 24 };
/** An older kernel: cap_last_cap 37 (no PERFMON, BPF, CHECKPOINT_RESTORE). */
const OLD: HostCaps = { last: 37, bounding: 2 ** 38 - 1 };

const names = (sets: CapSets) => ({
  bounding: capabilityNames(sets.bounding),
  effective: capabilityNames(sets.effective),
  permitted: capabilityNames(sets.permitted),
  inheritable: capabilityNames(sets.inheritable),
  ambient: capabilityNames(sets.ambient),
});
const same = (list: string[]) => ({ bounding: list, effective: list, permitted: list, inheritable: list, ambient: list });
const DEFAULT = ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE'];

describe('capabilitiesOf: the short form', () => {
  it('default: the OCI set in all five sets, and the kernel’s cap_last_cap', () => {
    const c = capabilitiesOf(undefined, FULL);
    expect(names(c)).toEqual(same(DEFAULT));
    expect(c.last).toBe(40);
    expect(capabilitiesOf({}, FULL)).toEqual(c);
  });

  it('names with or without CAP_, in any case', () => {
    const c = capabilitiesOf({ add: ['sys_admin', 'CAP_MKNOD', 'Cap_Chown'], drop: ['kill'] }, FULL);
    expect(names(c)).toEqual(same(['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN', 'CAP_MKNOD', 'CAP_AUDIT_WRITE']));
  });

  it("'ALL': drop ALL starts from nothing, add ALL from every capability this process can give", () => {
    expect(names(capabilitiesOf({ drop: ['ALL'] }, FULL))).toEqual(same([]));
    expect(names(capabilitiesOf({ drop: ['all'], add: ['NET_RAW'] }, FULL))).toEqual(same(['CAP_NET_RAW']));
    expect(capabilitiesOf({ add: ['ALL'] }, FULL).bounding).toBe(ALL_41);
    // On this kind of machine ALL is everything but CAP_SYS_RESOURCE, which Node itself lacks.
    expect(capabilitiesOf({ add: ['ALL'] }, NO_RESOURCE).permitted).toBe(NO_RESOURCE.bounding);
    expect(capabilitiesOf({ add: ['ALL'] }, OLD).bounding).toBe(2 ** 38 - 1);
    const most = capabilitiesOf({ add: ['ALL'], drop: ['SYS_ADMIN', 'NET_ADMIN'] }, FULL);
    expect(most.effective).toBe(ALL_41 - 2 ** 21 - 2 ** 12);
  });

  it('bad names, shapes and contradictions are EINVAL naming the entry', () => {
    const e = expectInvalid(() => capabilitiesOf({ add: ['KILL', 'CHOWN', 'SYS_ADMN'] }, FULL), { option: 'capabilities.add[2]' });
    expect(e.message).toContain(`"SYS_ADMN" is not a Linux capability (did you mean 'SYS_ADMIN'?)`);
    expect(expectInvalid(() => capabilitiesOf({ add: ['FLY'] }, FULL), {}).message).not.toContain('did you mean');
    expectInvalid(() => capabilitiesOf({ drop: [7] }, FULL), { option: 'capabilities.drop[0]' });
    expectInvalid(() => capabilitiesOf({ add: 'SYS_ADMIN' }, FULL), { option: 'capabilities.add' });
    expectInvalid(() => capabilitiesOf(['SYS_ADMIN'], FULL), { option: 'capabilities' });
    expectInvalid(() => capabilitiesOf('ALL', FULL), { option: 'capabilities' });
    const typo = expectInvalid(() => capabilitiesOf({ adds: ['KILL'] }, FULL), { option: 'capabilities.adds' });
    expect(typo.message).toContain("did you mean 'add'?");
    const both = expectInvalid(() => capabilitiesOf({ add: ['MKNOD'], drop: ['KILL', 'mknod'] }, FULL), { option: 'capabilities.drop[1]' });
    expect(both.message).toContain('CAP_MKNOD is in capabilities.add too');
    expectInvalid(() => capabilitiesOf({ add: ['KILL'], bounding: ['CAP_KILL'] }, FULL), { option: 'capabilities' });
  });

  it('a capability this kernel does not know is EINVAL; one the Node process lacks is EPERM', () => {
    const old = expectInvalid(() => capabilitiesOf({ add: ['BPF'] }, OLD), { option: 'capabilities.add[0]' });
    expect(old.message).toContain('cap_last_cap is 37');
    const e = expectInvalid(() => capabilitiesOf({ add: ['NET_ADMIN', 'SYS_RESOURCE'] }, NO_RESOURCE), { code: 'EPERM', option: 'capabilities.add[1]' });
    expect(e.errno).toBe(1);
    expect(e.message).toContain('CAP_SYS_RESOURCE is not in the bounding set of this Node process');
    // Dropping one is an error too: the name is checked wherever it appears.
    expectInvalid(() => capabilitiesOf({ drop: ['SYS_RESOURCE'] }, NO_RESOURCE), { code: 'EPERM', option: 'capabilities.drop[0]' });
  });

  it('the default leaves out what the host cannot give instead of failing every container', () => {
    const noKill: HostCaps = { last: 40, bounding: ALL_41 - 2 ** 5 };
    expect(names(capabilitiesOf(undefined, noKill))).toEqual(same(['CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE']));
  });
});

describe('capabilitiesOf: the OCI form', () => {
  it('each set as given; a missing set is empty', () => {
    const c = capabilitiesOf(
      {
        bounding: ['CAP_KILL', 'CAP_SYS_ADMIN', 'CAP_NET_BIND_SERVICE'],
        effective: ['CAP_KILL'],
        permitted: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        inheritable: ['CAP_NET_BIND_SERVICE'],
        ambient: ['CAP_NET_BIND_SERVICE'],
      },
      FULL,
    );
    expect(names(c)).toEqual({
      bounding: ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN'],
      effective: ['CAP_KILL'],
      permitted: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      inheritable: ['CAP_NET_BIND_SERVICE'],
      ambient: ['CAP_NET_BIND_SERVICE'],
    });
    expect(names(capabilitiesOf({ bounding: ['CAP_CHOWN'] }, FULL))).toEqual({ ...same([]), bounding: ['CAP_CHOWN'] });
  });

  it('what capset(2) or PR_CAP_AMBIENT_RAISE would refuse is EINVAL naming the entry', () => {
    const eff = expectInvalid(() => capabilitiesOf({ bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: [] }, FULL), { option: 'capabilities.effective[0]' });
    expect(eff.message).toContain('not in capabilities.permitted');
    expectInvalid(() => capabilitiesOf({ bounding: [], inheritable: ['CAP_KILL'] }, FULL), { option: 'capabilities.inheritable[0]' });
    // runc spec's own output (ambient without inheritable): runc and crun skip the raise silently.
    const amb = expectInvalid(
      () => capabilitiesOf({ bounding: DEFAULT, effective: DEFAULT, permitted: DEFAULT, ambient: ['CAP_AUDIT_WRITE', 'CAP_KILL'] }, FULL),
      { option: 'capabilities.ambient[0]' },
    );
    expect(amb.message).toContain('capabilities.inheritable');
    expectInvalid(() => capabilitiesOf({ bounding: ['ALL'] }, FULL), { option: 'capabilities.bounding[0]' });
    expectInvalid(() => capabilitiesOf({ permitted: ['CAP_NOPE'] }, FULL), { option: 'capabilities.permitted[0]' });
    expectInvalid(() => capabilitiesOf({ permitted: ['CAP_SYS_RESOURCE'] }, NO_RESOURCE), { code: 'EPERM', option: 'capabilities.permitted[0]' });
  });
});

describe('capabilitiesOf: caching', () => {
  it('a deeply frozen option is computed once; an unfrozen one each time (it may have changed)', () => {
    const frozen = Object.freeze({ add: Object.freeze(['SYS_ADMIN']) });
    expect(capabilitiesOf(frozen, FULL)).toBe(capabilitiesOf(frozen, FULL));
    const open = { add: ['SYS_ADMIN'] };
    const first = capabilitiesOf(open, FULL);
    open.add.push('MKNOD');
    expect(capabilityNames(capabilitiesOf(open, FULL).bounding)).toContain('CAP_MKNOD');
    expect(capabilityNames(first.bounding)).not.toContain('CAP_MKNOD');
    // Frozen outside, an array inside still open: not cached.
    const shallow = Object.freeze({ add: ['SYS_ADMIN'] });
    expect(capabilitiesOf(shallow, FULL)).not.toBe(capabilitiesOf(shallow, FULL));
    expect(capabilitiesOf(undefined, FULL)).toBe(capabilitiesOf(undefined, FULL));
  });
});

describe('host facts and buildSpec', () => {
  it('parseCapMask reads /proc/self/status masks above 32 bits exactly', () => {
    expect(parseCapMask('000001fffeffffff')).toBe(ALL_41 - 2 ** 24);
    expect(parseCapMask('0000000020000420')).toBe(2 ** 29 + 2 ** 10 + 2 ** 5);
    expect(() => parseCapMask('xyz')).toThrow(RangeError);
  });

  it('hostCapabilities: this kernel and this process (no root needed)', () => {
    const h = hostCapabilities();
    expect(h.last).toBeGreaterThanOrEqual(37); // every kernel scratchbox runs on (5.x and later)
    expect(h).toBe(hostCapabilities()); // read once
    expect(CAPABILITY_NAMES.length).toBe(41);
  });

  it('buildSpec carries the sets and reports errors at the option path', () => {
    const s = buildSpec({ rootfs: '/srv/r', args: ['/x'], capabilities: { add: ['SYS_ADMIN'] } }, () => 'id', { caps: FULL });
    expect(capabilityNames(s.capabilities.effective)).toContain('CAP_SYS_ADMIN');
    expectInvalid(() => buildSpec({ rootfs: '/srv/r', args: ['/x'], capabilities: { add: ['SYS_ADMIN', 'bogus'] } }, () => 'id', { caps: FULL }), {
      option: 'capabilities.add[1]',
    });
  });
});
