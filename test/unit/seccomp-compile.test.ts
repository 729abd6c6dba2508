/**
 * seccompFilter and the addon's compileSeccomp (libseccomp): what comes out, how errors come
 * back, and the cache. No root: nothing is loaded here (test/integration/seccomp-filter.test.ts
 * runs the filters).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { native } from '../../src-ts/native/addon.js';
import { ContainerError } from '../../src-ts/errors.js';
import { flattenSeccomp, seccompFilter } from '../../src-ts/security/seccomp.js';
import { parseSeccomp, SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_OPS, type SeccompProfile } from '../../src-ts/security/seccomp-profile.js';
import { defaultSeccompProfile } from '../../src-ts/security/default-seccomp.js';
import { thrown } from './helpers.js';
import { runBpf } from './bpf-run.js';

const BPF_MAXINSNS = 4096;
const INSN = 8; // sizeof(struct sock_filter)
const SECCOMP_RET_ERRNO = 0x00050000;
const ENOSYS = 38;

/** The instructions as [code, jt, jf, k] (host byte order, little-endian here). */
function insns(bpf: Uint8Array): [number, number, number, number][] {
  const v = new DataView(bpf.buffer, bpf.byteOffset, bpf.byteLength);
  const out: [number, number, number, number][] = [];
  for (let o = 0; o < bpf.byteLength; o += INSN) out.push([v.getUint16(o, true), v.getUint8(o + 2), v.getUint8(o + 3), v.getUint32(o + 4, true)]);
  return out;
}
const BPF_RET_K = 0x06;

let seq = 0;
/** A profile no other test compiled (the cache is per process). */
function fresh(extra: object = {}): SeccompProfile {
  return parseSeccomp({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [{ names: ['read', 'write', 'exit_group'], action: 'SCMP_ACT_ALLOW' }, { names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 + (seq++ % 4000) }],
    ...extra,
  });
}

describe('compileSeccomp', () => {
  it('compiles the default profile: every name known to libseccomp, within the kernel limit', () => {
    const f = seccompFilter();
    expect(f.unknownSyscalls).toEqual([]);
    expect(f.flags).toBe(0);
    expect(f.bpf.byteLength % INSN).toBe(0);
    expect(f.bpf.byteLength / INSN).toBeGreaterThan(50); // rewritten (bpf-optimize.ts): ~90, libseccomp gives ~400
    expect(f.bpf.byteLength / INSN).toBeLessThan(BPF_MAXINSNS);
  });

  it('puts the ENOSYS prefix first under a refusing default, not under ALLOW', () => {
    const refusing = insns(seccompFilter(fresh()).bpf);
    // ld [arch]; jeq …; ja; per arch: ld [nr]; jgt max → ENOSYS … ; ret ERRNO(ENOSYS)
    expect(refusing[0]).toEqual([0x20, 0, 0, 4]);
    expect(refusing.slice(0, 16).some(([code, , , k]) => code === BPF_RET_K && k === (SECCOMP_RET_ERRNO | ENOSYS))).toBe(true);
    const allowing = insns(seccompFilter(fresh({ defaultAction: 'SCMP_ACT_ALLOW' })).bpf);
    expect(allowing.some(([code, , , k]) => code === BPF_RET_K && k === (SECCOMP_RET_ERRNO | ENOSYS))).toBe(false);
    expect(flattenSeccomp(fresh({ defaultAction: 'SCMP_ACT_LOG' })).enosys).toBe(false);
    expect(flattenSeccomp(fresh({ defaultAction: 'SCMP_ACT_KILL' })).enosys).toBe(true);
  });

  it('maps the flags to seccomp(2) bits: LOG 2, SPEC_ALLOW 4', () => {
    expect(seccompFilter(fresh({ flags: ['SECCOMP_FILTER_FLAG_LOG'] })).flags).toBe(2);
    expect(seccompFilter(fresh({ flags: ['SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_LOG'] })).flags).toBe(6);
  });

  it('knows every architecture, action and operator parseSeccomp accepts (the two lists agree)', () => {
    const skipped = SECCOMP_ARCHES.filter((arch) => seccompFilter(fresh({ architectures: [arch] })).skippedArchitectures.length > 0);
    // This host is little-endian: the big-endian ones cannot share its filter.
    expect(skipped).toEqual(['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64']);
    for (const action of SECCOMP_ACTIONS.filter((a) => a !== 'SCMP_ACT_NOTIFY'))
      expect(() => seccompFilter(fresh({ defaultAction: action === 'SCMP_ACT_ALLOW' ? 'SCMP_ACT_LOG' : 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action }] })), action).not.toThrow();
    SECCOMP_OPS.forEach((op, i) =>
      expect(() => seccompFilter(fresh({ syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW', args: [{ index: i % 6, value: 1, valueTwo: 1, op }] }] })), op).not.toThrow(),
    );
  });

  it('skips syscall names libseccomp does not know, and says which (as runc does)', () => {
    const f = seccompFilter(fresh({ syscalls: [{ names: ['read', 'no_such_call', 'write'], action: 'SCMP_ACT_ALLOW' }] }));
    expect(f.unknownSyscalls).toEqual(['no_such_call']);
  });

  it("turns libseccomp's refusal into a ContainerError naming the rule", () => {
    // The same call with the same comparison twice, with two actions: libseccomp says EEXIST.
    const cmp = [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }];
    const p = fresh({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ERRNO', args: cmp }, { names: ['getpid'], action: 'SCMP_ACT_KILL', args: cmp }] });
    const err = thrown(() => seccompFilter(p, 'linux.seccomp'));
    expect(err).toBeInstanceOf(ContainerError);
    expect(err).toMatchObject({ code: 'EEXIST', errno: 17, stage: 'validate', option: 'linux.seccomp.syscalls[1]' });
    expect(err.message).toContain('getpid');
  });

  it('validates a profile it did not get from parseSeccomp', () => {
    const raw = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOPE' }] } as never;
    expect(thrown(() => seccompFilter(raw))).toMatchObject({ code: 'EINVAL', option: 'seccomp.syscalls[0].action' });
  });
});

describe('the compiled program, run by an interpreter (every architecture branch)', () => {
  const AUDIT = { X86_64: 0xc000003e, I386: 0x40000003, AARCH64: 0xc00000b7, ARM: 0x40000028, RISCV64: 0xc00000f3, PPC64LE: 0xc0000015 };
  const ALLOW = 0x7fff0000, KILL_THREAD = 0, ERRNO = (e: number) => SECCOMP_RET_ERRNO | e;
  const filter = seccompFilter(
    parseSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 13,
      architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM', 'SCMP_ARCH_RISCV64'],
      syscalls: [
        { names: ['read', 'write', 'getpid', 'exit_group'], action: 'SCMP_ACT_ALLOW' },
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
        { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x10000000, op: 'SCMP_CMP_MASKED_EQ' }] },
      ],
    }),
  ).bpf;
  const run = (arch: number, nr: number, ...args: bigint[]) => runBpf(filter, { arch, nr, args });

  it('aarch64 and riscv64 (getpid 172, personality 92, clone 220; the highest named is clone)', () => {
    for (const arch of [AUDIT.AARCH64, AUDIT.RISCV64]) {
      expect([run(arch, 172), run(arch, 63), run(arch, 93)]).toEqual([ALLOW, ALLOW, ERRNO(13)]); // getpid, read allowed; exit is not named
      expect([run(arch, 92, 8n), run(arch, 92, 0x400000n)]).toEqual([ALLOW, ERRNO(13)]);
      expect([run(arch, 220, 0x11n), run(arch, 220, 0x10000011n)]).toEqual([ALLOW, ERRNO(13)]);
      expect([run(arch, 221), run(arch, 1000)]).toEqual([ERRNO(ENOSYS), ERRNO(ENOSYS)]); // execve (221) is newer than clone here
    }
  });

  it('arm (getpid 20, clone 120, exit_group 248)', () => {
    expect([run(AUDIT.ARM, 20), run(AUDIT.ARM, 120, 0n), run(AUDIT.ARM, 248), run(AUDIT.ARM, 249), run(AUDIT.ARM, 1)]).toEqual([ALLOW, ALLOW, ALLOW, ERRNO(ENOSYS), ERRNO(13)]);
  });

  it('x86_64, i386 and x32 numbers on the x86_64 entry', () => {
    expect([run(AUDIT.X86_64, 39), run(AUDIT.X86_64, 110), run(AUDIT.X86_64, 232)]).toEqual([ALLOW, ERRNO(13), ERRNO(ENOSYS)]);
    expect([run(AUDIT.I386, 20), run(AUDIT.I386, 252), run(AUDIT.I386, 253)]).toEqual([ALLOW, ALLOW, ERRNO(ENOSYS)]);
    // x32 is not in this profile: its numbers go to libseccomp's program, which refuses them
    expect(run(AUDIT.X86_64, 0x40000000 + 39)).not.toBe(ALLOW);
  });

  it('an architecture not in the filter gets libseccomp\'s bad-architecture action (kill)', () => {
    expect(run(AUDIT.PPC64LE, 20)).toBe(KILL_THREAD);
  });
});

describe('seccompFilter cache', () => {
  afterEach(() => vi.restoreAllMocks());
  const count = () => vi.spyOn(native(), 'compileSeccomp');

  it('compiles the same profile once: the same object, or an equal one parsed again', () => {
    const spy = count();
    const oci = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ALLOW' }], architectures: ['SCMP_ARCH_X86'] };
    const a = seccompFilter(parseSeccomp(oci));
    expect(seccompFilter(parseSeccomp(oci))).toBe(a);
    const p = parseSeccomp(structuredClone(oci));
    expect(seccompFilter(p)).toBe(a);
    expect(seccompFilter(p)).toBe(a);
    expect(spy).toHaveBeenCalledTimes(1);
    seccompFilter(parseSeccomp({ ...oci, defaultErrnoRet: 13 }));
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it('compiles the default profile once per process, when first asked for', async () => {
    vi.resetModules(); // a fresh cache; the addon itself stays loaded (require's cache)
    const fresh = await import('../../src-ts/security/seccomp.js');
    const spy = count();
    expect(spy).not.toHaveBeenCalled();
    const a = fresh.seccompFilter();
    expect(fresh.seccompFilter()).toBe(a);
    expect(fresh.seccompFilter(undefined)).toBe(a);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('keeps a bounded number of user profiles, dropping the least recently used', () => {
    const first = fresh();
    const keep = fresh();
    seccompFilter(first);
    seccompFilter(keep);
    for (let i = 0; i < 70; i++) {
      seccompFilter(fresh());
      seccompFilter(parseSeccomp(oci(keep))); // an equal profile: a hit, which keeps it in
    }
    const spy = count();
    seccompFilter(parseSeccomp(oci(keep)));
    expect(spy).not.toHaveBeenCalled();
    seccompFilter(parseSeccomp(oci(first))); // evicted by the 70 others
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('answers a hit in microseconds (it runs on every create())', () => {
    const p = fresh();
    seccompFilter(p);
    seccompFilter();
    const time = (fn: () => unknown, n: number) => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) fn();
      return Number(process.hrtime.bigint() - t) / n / 1000;
    };
    const sameObject = time(() => seccompFilter(p), 20_000);
    const defaultProfile = time(() => seccompFilter(), 20_000);
    const reparsed = defaultSeccompProfile(); // an equal, separately parsed profile goes through the key
    const equalProfile = time(() => seccompFilter(parseSeccomp(oci(reparsed))), 200);
    console.log(`seccompFilter hit: same object ${sameObject.toFixed(3)} µs, default ${defaultProfile.toFixed(3)} µs, equal default profile parsed again ${equalProfile.toFixed(1)} µs (parse included)`);
    expect(sameObject).toBeLessThan(5);
    expect(defaultProfile).toBeLessThan(5);
  });
});

/** A normalised profile back in OCI form (bigints stay bigints: parseSeccomp takes them). */
function oci(p: SeccompProfile): object {
  return {
    ...p,
    syscalls: p.syscalls.map((r) => ({ ...r, names: [...r.names], args: r.args.map((a) => ({ ...a })) })),
    architectures: [...p.architectures],
    flags: [...p.flags],
  };
}

describe('the default filter compiled at install (seccomp-cache.ts)', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const tmp = () => {
    const d = mkdtempSync(`${tmpdir()}/sbx-seccomp-cache-`);
    dirs.push(d);
    return d;
  };

  it('reads back what a fresh compile gives, byte for byte; for another profile, nothing', async () => {
    const { writeDefaultFilterCache, flattenSeccomp } = await import('../../src-ts/security/seccomp.js');
    const { readCachedFilter } = await import('../../src-ts/security/seccomp-cache.js');
    const { defaultSeccompProfile } = await import('../../src-ts/security/default-seccomp.js');
    const dir = tmp();
    const path = writeDefaultFilterCache(dir);
    expect(path).toBe(`${dir}/default-seccomp.${process.arch}.json`);
    const flat = flattenSeccomp(defaultSeccompProfile());
    const cached = readCachedFilter(flat, dir)!;
    const fresh = seccompFilter();
    expect(Buffer.from(cached.bpf).equals(Buffer.from(fresh.bpf))).toBe(true);
    expect({ ...cached, bpf: null }).toEqual({ bpf: null, flags: fresh.flags, unknownSyscalls: [...fresh.unknownSyscalls], skippedArchitectures: [...fresh.skippedArchitectures] });
    // Another profile (one rule more), a corrupt file, no file: compiled again.
    expect(readCachedFilter({ ...flat, rules: [...flat.rules, flat.rules[0]!] }, dir)).toBeUndefined();
    writeFileSync(path, '{"key": 1');
    expect(readCachedFilter(flat, dir)).toBeUndefined();
    expect(readCachedFilter(flat, tmp())).toBeUndefined();
  });

  it('dist/ has one after npm ci, and a process\'s first default filter is read from it, not compiled', async () => {
    const { execFileSync } = await import('node:child_process');
    const dist = new URL('../../dist/', import.meta.url).href;
    // In a fresh process, as a user's: the addon's compile made to throw, the default filter asked for.
    const script = `
      import { native } from '${dist}native/addon.js';
      native().compileSeccomp = () => { throw new Error('compiled, not read from the cache'); };
      const { seccompFilter } = await import('${dist}security/seccomp.js');
      process.stdout.write(Buffer.from(seccompFilter().bpf).toString('base64'));`;
    let out: string;
    try {
      out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      throw new Error(`no usable dist/security/default-seccomp.${process.arch}.json (npm ci makes it; after a rebuild: node scripts/seccomp-cache.mjs): ${(e as { stderr?: string }).stderr}`);
    }
    expect(out).toBe(Buffer.from(seccompFilter().bpf).toString('base64'));
  });
});
