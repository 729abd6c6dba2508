/**
 * The seccomp program rewriter (src-ts/security/bpf-optimize.ts): smaller, and the same filter as
 * libseccomp's on every input class. The comparison uses this directory's own interpreter
 * (bpf-run.ts), not the one the rewriter checks itself with. No root: nothing is loaded here;
 * the integration suites load the rewritten default into real containers.
 */
import { describe, expect, it } from 'vitest';
import { native } from '../../src-ts/native/addon.js';
import { flattenSeccomp } from '../../src-ts/security/seccomp.js';
import { parseSeccomp, type OciSeccomp } from '../../src-ts/security/seccomp-profile.js';
import { defaultSeccompOci } from '../../src-ts/security/default-seccomp.js';
import { checkEquivalent, decode, encode, optimize, optimizeFilter, rewrite, type Insn } from '../../src-ts/security/bpf-optimize.js';
import { runBpf } from './bpf-run.js';

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const X32 = 0x40000000;

/** libseccomp's program, as the addon exports it (before the rewrite). */
function raw(oci: OciSeccomp): Uint8Array {
  return native().compileSeccomp(flattenSeccomp(parseSeccomp(oci))).bpf;
}

/** Numbers to try: every one below 1100, the x32 range, and the edges of 32 bits. */
const NRS = [
  ...Array.from({ length: 1100 }, (_, i) => i),
  ...Array.from({ length: 600 }, (_, i) => X32 + i),
  0x3fffffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];
const ARCHES = [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0xc00000b7 /* aarch64 */, 0, 0xffffffff];
/** Argument vectors that hit the rules below: clone flags, personality values, socket families. */
const ARGS: bigint[][] = [
  [],
  [0x10000000n], // CLONE_NEWUSER
  [0x00011200n], // thread-like clone flags, no namespace
  [0x0n, 0x1n],
  [0xffffffffn],
  [0x8n], // PER_LINUX32
  [0x20008n], // UNAME26 | PER_LINUX32
  [0x400000n], // ADDR_NO_RANDOMIZE
  [16n], // AF_NETLINK
  [40n], // AF_VSOCK
  [2n, 1n, 6n],
  [0x100000000n + 2n], // high word set
];

/** Both programs on every number × arch × argument vector; the first difference, or null. */
function firstDifference(a: Uint8Array, b: Uint8Array): string | null {
  for (const arch of ARCHES)
    for (const nr of NRS)
      for (const args of ARGS) {
        const d = { nr: nr | 0, arch, args };
        const x = runBpf(a, d);
        const y = runBpf(b, d);
        if (x !== y) return `arch 0x${arch.toString(16)} nr ${nr} args [${args}]: 0x${x.toString(16)} vs 0x${y.toString(16)}`;
      }
  return null;
}

const DOCKERISH: OciSeccomp = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1,
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [
    { names: ['read', 'write', 'openat', 'close', 'exit_group', 'mmap', 'brk', 'execve', 'getpid', 'futex'], action: 'SCMP_ACT_ALLOW' },
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ', valueTwo: 0 }] },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }] },
    { names: ['kill'], action: 'SCMP_ACT_ERRNO', errnoRet: 3, args: [{ index: 1, value: 9, op: 'SCMP_CMP_EQ' }] },
    { names: ['mount', 'umount2'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
    { names: ['ptrace'], action: 'SCMP_ACT_KILL_PROCESS' },
  ],
};

describe('optimizeFilter', () => {
  const cases: [string, OciSeccomp][] = [
    ['the default profile', defaultSeccompOci()],
    ['the default profile with the compat ABIs (x32, i386)', defaultSeccompOci(process.arch, { compat: true })],
    ['a Docker-like profile: three arches, argument rules, several errnos and a kill', DOCKERISH],
    ['an ALLOW default with a few refusals', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount', 'umount2', 'pivot_root', 'unshare', 'setns', 'bpf'], action: 'SCMP_ACT_ERRNO' }] }],
  ];
  for (const [what, oci] of cases)
    it(`${what}: the rewrite is the same filter, and is kept only when smaller`, () => {
      const before = raw(oci);
      const rewritten = rewrite(decode(before));
      expect(rewritten).toBeDefined();
      expect(firstDifference(before, encode(rewritten!))).toBeNull();
      const after = optimizeFilter(before);
      expect(after.byteLength).toBe(Math.min(before.byteLength, rewritten!.length * 8));
      expect(firstDifference(before, after)).toBeNull();
    });

  it('the default shrinks to under a third of libseccomp\'s program', () => {
    const before = raw(defaultSeccompOci());
    expect(optimizeFilter(before).byteLength * 3).toBeLessThan(before.byteLength);
  });

  it('far targets: 300 syscalls with 300 different errnos go through JA trampolines, still the same filter', () => {
    const names = ['read', 'write', 'open', 'close', 'stat', 'fstat', 'lstat', 'poll', 'lseek', 'mmap', 'mprotect', 'munmap', 'brk', 'rt_sigaction', 'rt_sigprocmask', 'ioctl', 'pread64', 'pwrite64', 'readv', 'writev', 'access', 'pipe', 'select', 'sched_yield', 'mremap', 'msync', 'mincore', 'madvise', 'shmget', 'shmat', 'shmctl', 'dup', 'dup2', 'pause', 'nanosleep', 'getitimer', 'alarm', 'setitimer', 'getpid', 'sendfile'];
    // numbers 0..39 by name, and more by number through the names libseccomp knows for x86_64
    const all = [...names, 'socket', 'connect', 'accept', 'sendto', 'recvfrom', 'sendmsg', 'recvmsg', 'shutdown', 'bind', 'listen', 'getsockname', 'getpeername', 'socketpair', 'setsockopt', 'getsockopt', 'clone', 'fork', 'vfork', 'execve', 'exit', 'wait4', 'kill', 'uname', 'semget', 'semop', 'semctl', 'shmdt', 'msgget', 'msgsnd', 'msgrcv', 'msgctl', 'fcntl', 'flock', 'fsync', 'fdatasync', 'truncate', 'ftruncate', 'getdents', 'getcwd', 'chdir', 'fchdir', 'rename', 'mkdir', 'rmdir', 'creat', 'link', 'unlink', 'symlink', 'readlink', 'chmod', 'fchmod', 'chown', 'fchown', 'lchown', 'umask', 'gettimeofday', 'getrlimit', 'getrusage', 'sysinfo', 'times', 'ptrace', 'getuid', 'syslog', 'getgid', 'setuid', 'setgid', 'geteuid', 'getegid', 'setpgid', 'getppid', 'getpgrp', 'setsid', 'setreuid', 'setregid', 'getgroups', 'setgroups', 'setresuid', 'getresuid', 'setresgid', 'getresgid', 'getpgid', 'setfsuid', 'setfsgid', 'getsid', 'capget', 'capset'];
    const oci: OciSeccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: all.map((n, i) => ({ names: [n], action: 'SCMP_ACT_ERRNO', errnoRet: 100 + i })),
    };
    const before = raw(oci);
    const opt = optimize(decode(before));
    expect(opt).toBeDefined();
    // a conditional jump reaches 255 instructions: this program needed farther ones
    expect(opt!.some((x) => x.code === 0x05)).toBe(true);
    expect(firstDifference(before, encode(opt!))).toBeNull();
  });

  it('the self-check catches a wrong program: one return changed', () => {
    const prog = decode(raw(defaultSeccompOci()));
    const opt = optimize(prog)!;
    const i = opt.findIndex((x) => x.code === 0x06 && x.k === 0x7fff0000);
    const wrong: Insn[] = opt.map((x, j) => (j === i ? { ...x, k: 0x50001 } : x));
    expect(checkEquivalent(prog, opt)).toBe(true);
    expect(checkEquivalent(prog, wrong)).toBe(false);
  });

  it('gives back what it does not model: the X register, a bit test of the number, arithmetic on it', () => {
    const ret: Insn = { code: 0x06, jt: 0, jf: 0, k: 0x7fff0000 };
    const ld = (k: number): Insn => ({ code: 0x20, jt: 0, jf: 0, k });
    const programs: Insn[][] = [
      [ld(0), { code: 0x07, jt: 0, jf: 0, k: 0 } /* TAX */, ret],
      [ld(0), { code: 0x45, jt: 0, jf: 1, k: X32 }, ret, ret],
      [ld(0), { code: 0x54, jt: 0, jf: 0, k: 0xff }, { code: 0x15, jt: 0, jf: 1, k: 2 }, ret, ret],
    ];
    for (const p of programs) {
      expect(optimize(p)).toBeUndefined();
      const bytes = encode(p);
      expect(optimizeFilter(bytes)).toBe(bytes);
    }
  });
});
