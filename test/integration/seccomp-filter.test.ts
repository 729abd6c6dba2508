/**
 * The seccomp filters themselves, without containers: test/fixtures/seccomp-run loads a
 * compiled filter (no_new_privs, then seccomp(2), as the container's process does before execve)
 * and reports what each syscall returns under it. Each refused call is also run without a
 * filter, to show that the EPERM comes from the filter and not from the kernel.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { seccompFilter } from '../../src-ts/security/seccomp.js';
import { parseSeccomp } from '../../src-ts/security/seccomp-profile.js';
import { defaultSeccompOci } from '../../src-ts/security/default-seccomp.js';
import { buildDir, isRoot } from './helpers.js';

const EPERM = 1;
const EACCES = 13;
const ENOSYS = 38;
const runner = `${buildDir}seccomp-run`;
const dir = mkdtempSync(`${tmpdir()}/sbx-seccomp-`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** Writes the filter's bytes to a file the runner reads; '-' runs without a filter. */
function filterFile(profile?: object | null): string {
  if (profile === null) return '-';
  const path = `${dir}/${files++}.bpf`;
  writeFileSync(path, seccompFilter(profile === undefined ? undefined : parseSeccomp(profile)).bpf);
  return path;
}

interface Run {
  results: Record<string, number>;
  signal: NodeJS.Signals | null;
  status: number | null;
  stderr: string;
}

function run(filter: string, calls: string[], flags = 0): Run {
  const r = spawnSync(runner, [`--flags=${flags}`, filter, ...calls], { encoding: 'utf8' });
  const results: Record<string, number> = {};
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [call, errno] = line.split(' ');
    results[call!] = Number(errno);
  }
  return { results, signal: r.signal, status: r.status, stderr: r.stderr };
}

/** Runs the calls, expects a clean exit, returns call → errno (0 = success). */
function results(filter: string, calls: string[], flags = 0): Record<string, number> {
  const r = run(filter, calls, flags);
  expect(r.stderr).toBe('');
  expect([r.status, r.signal]).toEqual([0, null]);
  return r.results;
}

const [major = 0, minor = 0] = release().split('.').map(Number);
const atLeast = (a: number, b: number) => major > a || (major === a && minor >= b);

// Root for the unfiltered baseline: unshare, setns and clone(CLONE_NEWUSER) must succeed there.
describe.skipIf(!isRoot)('seccomp filters, loaded by seccomp-run (needs root: the unfiltered baseline unshares and setns)', () => {
  describe('the default profile', () => {
    const filter = filterFile();

    it('lets a process work: getpid, read, write, openat, mmap, execve, execveat, fork, personality(0), socket(AF_INET)', () => {
      const works = ['getpid', 'read', 'write', 'openat', 'mmap', 'execve', 'execveat', 'fork', 'personality:0', 'personality:0xffffffff', 'socket:2', 'socket:10'];
      expect(results(filter, works)).toEqual(Object.fromEntries(works.map((c) => [c, 0])));
    });

    const refused = [
      'clone_newuser', 'clone_newns', 'clone_newnet', 'unshare', 'setns', 'mount', 'umount2', 'pivot_root',
      'kexec_load', 'init_module', 'finit_module', 'bpf', 'open_by_handle_at', 'keyctl', 'add_key', 'ptrace',
      'perf_event_open', 'userfaultfd', 'io_uring_setup', 'clock_settime', 'reboot', 'swapon', 'acct',
      'personality:0x400000', 'personality:0x40000', 'socket:40',
    ];

    it('refuses namespaces, mounts, modules, kexec, bpf, keys, ptrace, io_uring, clocks … with EPERM', () => {
      expect(results(filter, refused)).toEqual(Object.fromEntries(refused.map((c) => [c, EPERM])));
    });

    it('…and without the filter the kernel answers those calls otherwise (the EPERM is the filter\'s)', () => {
      const baseline = results('-', refused);
      expect(Object.entries(baseline).filter(([, errno]) => errno === EPERM)).toEqual([]);
      expect(baseline).toMatchObject({ clone_newuser: 0, unshare: 0, setns: 0, mount: 2, 'personality:0x400000': 0 });
    });

    it('gives clone3 ENOSYS, so that libc falls back to clone, whose flags the filter sees', () => {
      expect(results(filter, ['clone3'])).toEqual({ clone3: ENOSYS });
      expect(results('-', ['clone3'])).toEqual({ clone3: 22 }); // EINVAL: the kernel has it
    });

    it('gives ENOSYS to numbers above every syscall the profile names (1000, and mseal, 462)', () => {
      expect(results(filter, ['nr:1000', 'nr:462'])).toEqual({ 'nr:1000': ENOSYS, 'nr:462': ENOSYS });
    });

    it.skipIf(!atLeast(6, 10))('…while the kernel has mseal (462) (needs Linux 6.10+ for mseal)', () => {
      expect(results('-', ['nr:462'])).toEqual({ 'nr:462': 0 });
    });

    it.skipIf(process.arch !== 'x64')('with compat: covers the i386 entry of a 64-bit process (int 0x80) (x86_64 only)', () => {
      // i386: getpid 20, unshare 310; the kernel reports AUDIT_ARCH_I386 to the filter
      const compat = filterFile(defaultSeccompOci('x64', { compat: true }));
      expect(results(compat, ['i386:20', 'i386:310', 'i386:1000'])).toEqual({ 'i386:20': 0, 'i386:310': EPERM, 'i386:1000': ENOSYS });
      expect(results('-', ['i386:310'])).toEqual({ 'i386:310': 0 });
    });

    it.skipIf(process.arch !== 'x64')('with compat: covers x32 numbers (bit 30) on x86_64 (x86_64 only)', () => {
      // x32 unshare is 272 | bit 30; 500 lies between x86_64's numbers and x32's own (512…)
      const compat = filterFile(defaultSeccompOci('x64', { compat: true }));
      expect(results(compat, ['x32:272', 'x32:500', 'x32:1000'])).toEqual({ 'x32:272': EPERM, 'x32:500': ENOSYS, 'x32:1000': EPERM });
    });

    it.skipIf(process.arch !== 'x64')('by default (native ABI only): an i386 system call kills the process (x86_64 only)', () => {
      expect(run(filter, ['i386:20']).signal).toBe('SIGSYS');
    });
  });

  describe('real programs under the default profile (seccomp-run --exec)', () => {
    const filter = filterFile();
    const exec = (file: string, ...args: string[]) => spawnSync(runner, [filter, '--exec', file, ...args], { encoding: 'utf8' });

    it('Node starts, listens on a socket, writes a file and runs a child process', () => {
      const script = `
        require('fs').writeFileSync(${JSON.stringify(`${dir}/node-wrote`)}, 'x');
        require('child_process').execFileSync('/bin/sh', ['-c', 'exit 0']);
        require('net').createServer().listen(0, '127.0.0.1', function () { console.log('listening'); this.close(); });`;
      const r = exec(process.execPath, '-e', script);
      expect([r.status, r.signal, r.stdout.trim(), r.stderr]).toEqual([0, null, 'listening', '']);
      expect(existsSync(`${dir}/node-wrote`)).toBe(true);
    });

    it('a shell pipeline works', () => {
      const r = exec('/bin/sh', '-c', 'ls / | wc -l >/dev/null && echo ok');
      expect([r.status, r.stdout.trim()]).toEqual([0, 'ok']);
    });

    it.skipIf(!existsSync('/usr/bin/python3'))('Python starts threads and makes a socket (needs /usr/bin/python3)', () => {
      const r = exec('/usr/bin/python3', '-c', 'import socket, threading; t = threading.Thread(target=print, args=("thread",)); t.start(); t.join(); socket.socket().close()');
      expect([r.status, r.stdout.trim(), r.stderr]).toEqual([0, 'thread', '']);
    });

    it.skipIf(!existsSync('/usr/bin/unshare'))('unshare(1) cannot make a user namespace (needs util-linux unshare)', () => {
      const r = exec('/usr/bin/unshare', '-U', '/bin/true');
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/Operation not permitted/);
    });
  });

  describe('custom profiles', () => {
    it('one that refuses getpid with errnoRet 38 takes effect, and leaves the rest alone', () => {
      const f = filterFile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }] });
      expect(results(f, ['getpid', 'unshare', 'nr:462'])).toEqual({ getpid: ENOSYS, unshare: 0, 'nr:462': atLeast(6, 10) ? 0 : ENOSYS });
    });

    it('KILL (thread) and KILL_PROCESS kill the process with SIGSYS at that call', () => {
      for (const action of ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS']) {
        const f = filterFile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action }] });
        const r = run(f, ['read', 'getpid', 'write']);
        expect([r.signal, r.results], action).toEqual(['SIGSYS', { read: 0 }]);
      }
    });

    it('TRAP raises SIGSYS', () => {
      const f = filterFile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_TRAP' }] });
      expect(run(f, ['getpid']).signal).toBe('SIGSYS');
    });

    it('an allow-list: unnamed calls get defaultErrnoRet, calls above the highest it names ENOSYS', () => {
      // The highest named on x86_64 is exit_group (231): openat (257) is "newer", getppid (110) is not.
      const f = filterFile({
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: EACCES,
        syscalls: [{ names: ['read', 'write', 'getpid', 'exit_group'], action: 'SCMP_ACT_ALLOW' }],
      });
      const calls = process.arch === 'x64' ? ['getpid', 'read', 'nr:110', 'openat'] : ['getpid', 'read'];
      const want: Record<string, number> = { getpid: 0, read: 0, 'nr:110': EACCES, openat: ENOSYS };
      expect(results(f, calls)).toEqual(Object.fromEntries(calls.map((c) => [c, want[c]])));
    });

    it('argument comparisons: MASKED_EQ and NE pick by value', () => {
      const f = filterFile({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: EACCES, args: [{ index: 0, value: 0x400000, valueTwo: 0x400000, op: 'SCMP_CMP_MASKED_EQ' }] },
          { names: ['socket'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 2, op: 'SCMP_CMP_NE' }] },
        ],
      });
      expect(results(f, ['personality:0', 'personality:0x400008', 'socket:2', 'socket:10'])).toEqual({
        'personality:0': 0,
        'personality:0x400008': EACCES,
        'socket:2': 0,
        'socket:10': EPERM,
      });
    });

    it('SECCOMP_FILTER_FLAG_LOG reaches seccomp(2): the filter loads with it', () => {
      const profile = { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG'], syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ERRNO' }] };
      const { flags } = seccompFilter(parseSeccomp(profile));
      expect(results(filterFile(profile), ['getpid'], flags)).toEqual({ getpid: EPERM });
    });
  });
});
