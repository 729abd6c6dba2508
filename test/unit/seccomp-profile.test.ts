import { describe, expect, it } from 'vitest';
import { parseSeccomp, SECCOMP_ACTIONS, SECCOMP_OPS } from '../../src-ts/security/seccomp-profile.js';
import { ALLOWED, REFUSED, defaultSeccompOci, defaultSeccompProfile } from '../../src-ts/security/default-seccomp.js';
import { expectInvalid } from './helpers.js';

/** An allow-list in the shape container engines write into config.json (linux.seccomp). */
const allowList = `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  "syscalls": [
    { "names": ["read", "write", "exit_group", "futex"], "action": "SCMP_ACT_ALLOW" },
    { "names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{ "index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ" }] },
    { "names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{ "index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }] },
    { "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }
  ]
}`;

/** A deny-list: everything allowed but a few calls, some logged, one killing the process. */
const denyList = {
  defaultAction: 'SCMP_ACT_ALLOW',
  flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
  syscalls: [
    { names: ['ptrace'], action: 'SCMP_ACT_KILL' },
    { names: ['kexec_load'], action: 'SCMP_ACT_KILL_PROCESS' },
    { names: ['uname'], action: 'SCMP_ACT_LOG' },
    { names: ['mkdir', 'mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [] },
    { names: ['getuid'], action: 'SCMP_ACT_TRACE', errnoRet: 7 },
    { names: ['getpid'], action: 'SCMP_ACT_TRAP' },
    { names: ['mmap'], action: 'SCMP_ACT_ERRNO', args: [{ index: 2, value: 0x4n, op: 'SCMP_CMP_MASKED_EQ', valueTwo: 0x4n }, { index: 0, value: 0, op: 'SCMP_CMP_NE' }] },
    { names: ['lseek'], action: 'SCMP_ACT_ERRNO', errnoRet: 0, args: [{ index: 1, value: 0xffff_ffff_ffff_ffffn, op: 'SCMP_CMP_GE' }] },
  ],
};

describe('parseSeccomp accepts the OCI shape', () => {
  it('an allow-list read from JSON, normalised: errnoRet filled in, values as exact bigints', () => {
    const p = parseSeccomp(JSON.parse(allowList));
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(p.defaultErrnoRet).toBe(1);
    expect(p.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(p.flags).toEqual([]);
    expect(p.syscalls).toHaveLength(4);
    expect(p.syscalls[0]).toEqual({ names: ['read', 'write', 'exit_group', 'futex'], action: 'SCMP_ACT_ALLOW', args: [] });
    expect(p.syscalls[1]!.args).toEqual([{ index: 0, op: 'SCMP_CMP_EQ', value: 0xffffffffn, valueTwo: 0n }]);
    expect(p.syscalls[2]!.args[0]).toEqual({ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0x7e020000n, valueTwo: 0n });
    expect(p.syscalls[3]).toEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, args: [] });
  });

  it('a deny-list with every passing and killing action, flags, bigints up to 2^64-1', () => {
    const p = parseSeccomp(denyList);
    expect(p.defaultAction).toBe('SCMP_ACT_ALLOW');
    expect(p).not.toHaveProperty('defaultErrnoRet');
    expect(p.flags).toEqual(['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW']);
    expect(p.syscalls.map((r) => r.action)).toEqual([
      'SCMP_ACT_KILL_THREAD', // SCMP_ACT_KILL is libseccomp's name for it
      'SCMP_ACT_KILL_PROCESS',
      'SCMP_ACT_LOG',
      'SCMP_ACT_ERRNO',
      'SCMP_ACT_TRACE',
      'SCMP_ACT_TRAP',
      'SCMP_ACT_ERRNO',
      'SCMP_ACT_ERRNO',
    ]);
    expect(p.syscalls[0]).not.toHaveProperty('errnoRet');
    expect(p.syscalls[3]).toMatchObject({ names: ['mkdir'], errnoRet: 13 });
    expect(p.syscalls[4]!.errnoRet).toBe(7);
    expect(p.syscalls[6]!.errnoRet).toBe(1);
    expect(p.syscalls[6]!.args).toEqual([
      { index: 2, op: 'SCMP_CMP_MASKED_EQ', value: 4n, valueTwo: 4n },
      { index: 0, op: 'SCMP_CMP_NE', value: 0n, valueTwo: 0n },
    ]);
    expect(p.syscalls[7]).toMatchObject({ errnoRet: 0, args: [{ value: 0xffff_ffff_ffff_ffffn }] });
  });

  it('the smallest profile: a default action alone', () => {
    expect(parseSeccomp({ defaultAction: 'SCMP_ACT_LOG' })).toEqual({ defaultAction: 'SCMP_ACT_LOG', architectures: [], flags: [], syscalls: [] });
  });

  it('returns a frozen profile, so it can be cached by identity', () => {
    const p = parseSeccomp(JSON.parse(allowList));
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.syscalls)).toBe(true);
    expect(Object.isFrozen(p.syscalls[1])).toBe(true);
    expect(Object.isFrozen(p.syscalls[1]!.names)).toBe(true);
    expect(Object.isFrozen(p.syscalls[1]!.args[0])).toBe(true);
  });

  it('every action but NOTIFY and every operator of the spec', () => {
    for (const action of SECCOMP_ACTIONS.filter((a) => a !== 'SCMP_ACT_NOTIFY'))
      expect(() => parseSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action }] })).not.toThrow();
    for (const op of SECCOMP_OPS)
      expect(parseSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ERRNO', args: [{ index: 5, value: 1, op }] }] }).syscalls[0]!.args[0]!.op).toBe(op);
  });
});

describe('parseSeccomp refuses, naming the field', () => {
  const ok = { defaultAction: 'SCMP_ACT_ERRNO' };
  const rule = (r: object) => ({ ...ok, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, r] });
  const arg = (a: object) => rule({ names: ['mmap'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }, a] });
  const cases: [string, unknown, string, string?][] = [
    ['not an object', [], 'seccomp'],
    ['null', null, 'seccomp'],
    ['an unknown field (Docker format)', { ...ok, archMap: [] }, 'seccomp.archMap'],
    ['no defaultAction', {}, 'seccomp.defaultAction'],
    ['an unknown action', { defaultAction: 'SCMP_ACT_DENY' }, 'seccomp.defaultAction'],
    ['a lower-case action', { defaultAction: 'scmp_act_allow' }, 'seccomp.defaultAction'],
    ['NOTIFY as the default', { defaultAction: 'SCMP_ACT_NOTIFY' }, 'seccomp.defaultAction', 'ENOTSUP'],
    ['a listener path', { ...ok, listenerPath: '/run/seccomp.sock' }, 'seccomp.listenerPath', 'ENOTSUP'],
    ['listener metadata', { ...ok, listenerMetadata: 'x' }, 'seccomp.listenerMetadata', 'ENOTSUP'],
    ['defaultErrnoRet with ALLOW', { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, 'seccomp.defaultErrnoRet'],
    ['defaultErrnoRet above 4095', { ...ok, defaultErrnoRet: 4096 }, 'seccomp.defaultErrnoRet'],
    ['defaultErrnoRet negative', { ...ok, defaultErrnoRet: -1 }, 'seccomp.defaultErrnoRet'],
    ['defaultErrnoRet a string', { ...ok, defaultErrnoRet: 'EPERM' }, 'seccomp.defaultErrnoRet'],
    ['architectures not an array', { ...ok, architectures: 'SCMP_ARCH_X86_64' }, 'seccomp.architectures'],
    ['an unknown architecture', { ...ok, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_Z80'] }, 'seccomp.architectures[1]'],
    ['an architecture newer than libseccomp 2.5.4', { ...ok, architectures: ['SCMP_ARCH_LOONGARCH64'] }, 'seccomp.architectures[0]', 'ENOTSUP'],
    ['flags not an array', { ...ok, flags: 'SECCOMP_FILTER_FLAG_LOG' }, 'seccomp.flags'],
    ['an unknown flag', { ...ok, flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_FAST'] }, 'seccomp.flags[1]'],
    ['TSYNC', { ...ok, flags: ['SECCOMP_FILTER_FLAG_TSYNC'] }, 'seccomp.flags[0]', 'ENOTSUP'],
    ['WAIT_KILLABLE_RECV', { ...ok, flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }, 'seccomp.flags[0]', 'ENOTSUP'],
    ['syscalls not an array', { ...ok, syscalls: {} }, 'seccomp.syscalls'],
    ['a rule that is not an object', { ...ok, syscalls: ['read'] }, 'seccomp.syscalls[0]'],
    ['a rule with an unknown field', rule({ names: ['read'], action: 'SCMP_ACT_ALLOW', comment: 'x' }), 'seccomp.syscalls[1].comment'],
    ['a rule without names', rule({ action: 'SCMP_ACT_ALLOW' }), 'seccomp.syscalls[1].names'],
    ['a rule with no names', rule({ names: [], action: 'SCMP_ACT_ALLOW' }), 'seccomp.syscalls[1].names'],
    ['a rule with a name (singular)', rule({ name: 'read', action: 'SCMP_ACT_ALLOW' }), 'seccomp.syscalls[1].name'],
    ['a syscall name that is not one', rule({ names: ['read', 'Read'], action: 'SCMP_ACT_ALLOW' }), 'seccomp.syscalls[1].names[1]'],
    ['a syscall name with a NUL', rule({ names: ['read\0'], action: 'SCMP_ACT_ALLOW' }), 'seccomp.syscalls[1].names[0]'],
    ['a syscall number', rule({ names: [0], action: 'SCMP_ACT_ALLOW' }), 'seccomp.syscalls[1].names[0]'],
    ['a rule without action', rule({ names: ['read'] }), 'seccomp.syscalls[1].action'],
    ['NOTIFY in a rule', rule({ names: ['read'], action: 'SCMP_ACT_NOTIFY' }), 'seccomp.syscalls[1].action', 'ENOTSUP'],
    ['errnoRet with KILL', rule({ names: ['read'], action: 'SCMP_ACT_KILL', errnoRet: 1 }), 'seccomp.syscalls[1].errnoRet'],
    ['errnoRet not an integer', rule({ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 1.5 }), 'seccomp.syscalls[1].errnoRet'],
    ['TRACE data above 16 bits', rule({ names: ['read'], action: 'SCMP_ACT_TRACE', errnoRet: 0x10000 }), 'seccomp.syscalls[1].errnoRet'],
    ['args not an array', rule({ names: ['read'], action: 'SCMP_ACT_ALLOW', args: {} }), 'seccomp.syscalls[1].args'],
    ['seven args', rule({ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [0, 1, 2, 3, 4, 5, 6].map((index) => ({ index, value: 0, op: 'SCMP_CMP_EQ' })) }), 'seccomp.syscalls[1].args[6].index'],
    ['an arg that is not an object', arg(null as never), 'seccomp.syscalls[1].args[1]'],
    ['an arg with an unknown field', arg({ index: 1, value: 0, op: 'SCMP_CMP_EQ', mask: 1 }), 'seccomp.syscalls[1].args[1].mask'],
    ['an arg index of 6', arg({ index: 6, value: 0, op: 'SCMP_CMP_EQ' }), 'seccomp.syscalls[1].args[1].index'],
    ['an arg index that is a string', arg({ index: '1', value: 0, op: 'SCMP_CMP_EQ' }), 'seccomp.syscalls[1].args[1].index'],
    ['an arg without index', arg({ value: 0, op: 'SCMP_CMP_EQ' }), 'seccomp.syscalls[1].args[1].index'],
    ['an arg without value', arg({ index: 1, op: 'SCMP_CMP_EQ' }), 'seccomp.syscalls[1].args[1].value'],
    ['a negative value', arg({ index: 1, value: -1, op: 'SCMP_CMP_EQ' }), 'seccomp.syscalls[1].args[1].value'],
    ['a fractional value', arg({ index: 1, value: 0.5, op: 'SCMP_CMP_EQ' }), 'seccomp.syscalls[1].args[1].value'],
    ['a value JSON rounded (above 2^53)', arg({ index: 1, value: JSON.parse('18446744073709551615'), op: 'SCMP_CMP_EQ' }), 'seccomp.syscalls[1].args[1].value'],
    ['a bigint above 2^64-1', arg({ index: 1, value: 1n << 64n, op: 'SCMP_CMP_EQ' }), 'seccomp.syscalls[1].args[1].value'],
    ['a valueTwo that is a string', arg({ index: 1, value: 1, valueTwo: '1', op: 'SCMP_CMP_MASKED_EQ' }), 'seccomp.syscalls[1].args[1].valueTwo'],
    ['an arg without op', arg({ index: 1, value: 0 }), 'seccomp.syscalls[1].args[1].op'],
    ['an unknown op', arg({ index: 1, value: 0, op: 'SCMP_CMP_MASKED_NE' }), 'seccomp.syscalls[1].args[1].op'],
    ['one argument compared twice in a rule', arg({ index: 0, value: 8, op: 'SCMP_CMP_NE' }), 'seccomp.syscalls[1].args[1].index'],
  ];
  it.each(cases)('%s', (_what, value, option, code) => {
    const err = expectInvalid(() => parseSeccomp(value), { option, code: code ?? 'EINVAL' });
    expect(err.message).toContain(option);
  });

  it("says when a field is Docker's profile format rather than OCI", () => {
    const err = expectInvalid(() => parseSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', includes: { caps: [] } }] }), {
      option: 'seccomp.syscalls[0].includes',
    });
    expect(err.message).toContain("Docker's profile format");
  });

  it('uses the option name it is given', () => {
    expectInvalid(() => parseSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'x' }] }, 'linux.seccomp'), {
      option: 'linux.seccomp.syscalls[0].action',
    });
  });
});

describe('the default profile (data)', () => {
  const allowed = ALLOWED.flatMap((g) => g.names);
  const refused = REFUSED.flatMap((g) => g.names);

  it('parses, with EPERM as the default', () => {
    const p = defaultSeccompProfile();
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(p.defaultErrnoRet).toBe(1);
    expect(defaultSeccompProfile()).toBe(p); // parsed once
  });

  it('allows execve and execveat (the filter is loaded right before execve)', () => {
    expect(allowed).toEqual(expect.arrayContaining(['execve', 'execveat']));
  });

  it('names each syscall once: nothing is both allowed and refused', () => {
    const conditional = ['clone', 'clone3', 'personality', 'socket'];
    const all = [...allowed, ...refused, ...conditional];
    expect(all.filter((n, i) => all.indexOf(n) !== i)).toEqual([]);
  });

  it('refuses what Docker refuses a container without extra capabilities', () => {
    expect(refused).toEqual(
      expect.arrayContaining([
        'init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load', 'reboot', 'swapon', 'swapoff',
        'mount', 'umount2', 'pivot_root', 'fsopen', 'fsmount', 'fsconfig', 'move_mount', 'open_tree', 'mount_setattr',
        'keyctl', 'add_key', 'request_key', 'bpf', 'perf_event_open', 'userfaultfd', 'open_by_handle_at', 'name_to_handle_at',
        'unshare', 'setns', 'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'clock_settime', 'settimeofday',
        'adjtimex', 'clock_adjtime', 'stime', 'iopl', 'ioperm', 'acct', 'quotactl', 'io_uring_setup', 'io_uring_enter',
        'io_uring_register', 'lookup_dcookie', 'nfsservctl', 'uselib', 'vm86', 'syslog',
      ]),
    );
  });

  it("takes clone's flags from the second argument on s390x only, and lists the host's compat architectures", () => {
    const cloneArg = (arch: string) => defaultSeccompOci(arch).syscalls!.find((s) => s.names[0] === 'clone')!.args![0]!.index;
    expect([cloneArg('x64'), cloneArg('arm64'), cloneArg('s390x')]).toEqual([0, 0, 1]);
    // The native ABI only, unless asked (each ABI is another copy of the program to load).
    expect(defaultSeccompOci('x64').architectures).toEqual(['SCMP_ARCH_X86_64']);
    expect(defaultSeccompOci('arm64').architectures).toEqual(['SCMP_ARCH_AARCH64']);
    expect(defaultSeccompOci('x64', { compat: true }).architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(defaultSeccompOci('arm64', { compat: true }).architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    expect(() => parseSeccomp(defaultSeccompOci('s390x'))).not.toThrow();
  });
});
