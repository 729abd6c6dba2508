import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkExec } from '../../src-ts/spec/check.js';
import { defaultMounts, type MountSpec } from '../../src-ts/spec/mounts.js';
import { buildSpec, type ContainerOptions } from '../../src-ts/spec/spec.js';
import { thrown } from './helpers.js';

/** A minimal ELF file: one program header, PT_INTERP naming `interp`, or PT_LOAD without one. */
function elf(interp: string | null, opts: { bits?: 32 | 64; bigEndian?: boolean; pad?: number } = {}): Buffer {
  const is64 = (opts.bits ?? 64) === 64;
  const le = !opts.bigEndian;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const text = Buffer.from(`${interp ?? ''}\0`, 'latin1');
  const ph = ehsize + (opts.pad ?? 0); // where the program header is
  const b = Buffer.alloc(ph + phentsize + text.length);
  const u16 = (v: number, o: number) => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const u32 = (v: number, o: number) => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  const word = (v: number, o: number) => (is64 ? (le ? b.writeBigUInt64LE(BigInt(v), o) : b.writeBigUInt64BE(BigInt(v), o)) : u32(v, o));
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = is64 ? 2 : 1;
  b[5] = le ? 1 : 2;
  b[6] = 1;
  u16(2, 16); // ET_EXEC
  word(ph, is64 ? 32 : 28); // e_phoff
  u16(phentsize, is64 ? 54 : 42);
  u16(1, is64 ? 56 : 44);
  u32(interp === null ? 1 : 3, ph); // PT_LOAD or PT_INTERP
  word(ph + phentsize, ph + (is64 ? 8 : 4)); // p_offset
  word(text.length, ph + (is64 ? 32 : 16)); // p_filesz
  text.copy(b, ph + phentsize);
  return b;
}

let tmp: string;
let root: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'sbx-exec-'));
  root = join(tmp, 'rootfs');
  mkdirSync(root);
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const put = (rel: string, content: string | Buffer = '', mode = 0o755) => {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), content);
  chmodSync(join(root, rel), mode);
};
const link = (rel: string, target: string) => {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  symlinkSync(target, join(root, rel));
};
const check = (args: string[], o: Partial<ContainerOptions> = {}) =>
  checkExec(buildSpec({ rootfs: root, args, ...o }, () => '0123456789abcdef'));
const fails = (args: string[], o: Partial<ContainerOptions> = {}) => thrown(() => check(args, o));

describe('checkExec: the ELF interpreter', () => {
  it('a static binary needs nothing', () => {
    put('sleep', elf(null));
    expect(() => check(['/sleep'])).not.toThrow();
  });

  it('a missing loader is ENOENT at stage exec, naming both, from option args', () => {
    put('bin/ls', elf('/lib64/ld-linux-x86-64.so.2'));
    const e = fails(['/bin/ls']);
    expect(e).toMatchObject({ code: 'ENOENT', errno: 2, stage: 'exec', option: 'args', path: '/lib64/ld-linux-x86-64.so.2', containerId: '0123456789abcdef' });
    expect(e.message).toBe('/bin/ls needs /lib64/ld-linux-x86-64.so.2, which the rootfs lacks');
    put('lib64/ld-linux-x86-64.so.2', '');
    expect(() => check(['/bin/ls'])).not.toThrow();
  });

  it('reads 32-bit and big-endian ELF files too', () => {
    put('a', elf('/lib/ld-32.so', { bits: 32 }));
    put('b', elf('/lib/ld-be.so', { bigEndian: true }));
    put('c', elf('/lib/ld-32be.so', { bits: 32, bigEndian: true }));
    expect(fails(['/a']).path).toBe('/lib/ld-32.so');
    expect(fails(['/b']).path).toBe('/lib/ld-be.so');
    expect(fails(['/c']).path).toBe('/lib/ld-32be.so');
    put('d', elf('/lib/ld-far.so', { pad: 5000 })); // program headers beyond the first read
    expect(fails(['/d']).path).toBe('/lib/ld-far.so');
  });

  it("a real dynamically linked binary (this host's /bin/true)", () => {
    put('true', execFileSync('cat', ['/bin/true']));
    expect(fails(['/true']).path).toMatch(/^\/lib.*\/ld-[^/]+\.so\.\d$/);
  });

  it('symlinks resolve inside the rootfs, as if it were /: never on the host', () => {
    put('bin/ls', elf('/lib64/ld-linux-x86-64.so.2'));
    // Absolute link: /lib64 of the rootfs, not the host's (which has the loader).
    link('lib64', '/usr/lib64');
    expect(fails(['/bin/ls']).path).toBe('/lib64/ld-linux-x86-64.so.2');
    put('usr/lib64/ld-linux-x86-64.so.2', '');
    expect(() => check(['/bin/ls'])).not.toThrow();
    // '..' stops at the rootfs's root.
    put('bin/up', elf('/../../../../../lib64/ld-linux-x86-64.so.2'));
    expect(() => check(['/bin/up'])).not.toThrow();
    // The host has /etc/passwd; the rootfs has not: neither '..' nor a relative link reaches the host's.
    put('bin/out', elf('/../../../../../../../etc/passwd'));
    expect(fails(['/bin/out']).path).toBe('/../../../../../../../etc/passwd');
    link('lib/ld.so', '../../../../../../../../etc/passwd');
    put('bin/rel', elf('/lib/ld.so'));
    expect(fails(['/bin/rel']).path).toBe('/lib/ld.so');
  });

  it('args[0] reached through symlinks (usr-merge /bin -> usr/bin, relative links)', () => {
    link('bin', 'usr/bin');
    put('usr/bin/busy', elf('/lib/ld.so'));
    link('usr/bin/sh', 'busy');
    expect(fails(['/bin/sh']).message).toBe('/usr/bin/busy needs /lib/ld.so, which the rootfs lacks');
  });

  it('a symlink loop or a missing args[0] is left to the child (its ENOENT, ELOOP)', () => {
    link('loop', 'loop');
    expect(() => check(['/loop'])).not.toThrow();
    expect(() => check(['/nope'])).not.toThrow();
  });

  it('a file that is not executable, a directory or a FIFO is left to the child (EACCES), and never read', () => {
    put('noexec', elf('/lib/ld.so'), 0o644);
    expect(() => check(['/noexec'])).not.toThrow();
    mkdirSync(join(root, 'dir'));
    expect(() => check(['/dir'])).not.toThrow();
    execFileSync('mkfifo', [join(root, 'fifo')]);
    expect(() => check(['/fifo'])).not.toThrow();
  });

  it('a relative args[0] is found from cwd', () => {
    put('work/prog', elf('/lib/ld.so'));
    expect(fails(['./prog'], { cwd: '/work' }).message).toBe('/work/prog needs /lib/ld.so, which the rootfs lacks');
  });
});

describe('checkExec: PATH search', () => {
  it("a name without '/' is looked up in the container's PATH, in order", () => {
    put('b/prog', elf('/lib/ld.so'));
    const e = fails(['prog'], { env: { PATH: '/a:/b' } });
    expect(e.message).toBe('/b/prog needs /lib/ld.so, which the rootfs lacks');
    put('a/prog', elf(null)); // found first: static
    expect(() => check(['prog'], { env: { PATH: '/a:/b' } })).not.toThrow();
  });

  it('a non-executable match is skipped, as execvp does', () => {
    put('a/prog', elf(null), 0o644);
    put('b/prog', elf('/lib/ld.so'));
    expect(fails(['prog'], { env: { PATH: '/a:/b' } }).path).toBe('/lib/ld.so');
  });

  it('the default PATH when env has none', () => {
    put('usr/bin/prog', elf('/lib/ld.so'));
    expect(fails(['prog']).path).toBe('/lib/ld.so');
  });
});

describe('checkExec: scripts', () => {
  it("a #! interpreter that is missing; spaces and arguments on the line", () => {
    put('run.sh', '#! /bin/bash -e\necho hi\n');
    expect(fails(['/run.sh'])).toMatchObject({ path: '/bin/bash', message: '/run.sh needs /bin/bash, which the rootfs lacks' });
    put('bin/bash', elf(null));
    expect(() => check(['/run.sh'])).not.toThrow();
  });

  it('an interpreter that is itself dynamically linked without its loader', () => {
    put('run.sh', '#!/bin/sh\n');
    put('bin/sh', elf('/lib/ld-musl.so.1'));
    expect(fails(['/run.sh']).message).toBe('/run.sh runs /bin/sh, which needs /lib/ld-musl.so.1, which the rootfs lacks');
  });

  it('a file with neither ELF magic nor #! is left to the child (ENOEXEC at start)', () => {
    put('garbage', 'hello\n');
    expect(() => check(['/garbage'])).not.toThrow();
  });
});

describe('checkExec: mounts of the spec are not in the rootfs', () => {
  const tmpfsAt = (destination: string): MountSpec[] => [...defaultMounts, { destination, type: 'tmpfs' }];

  it('a loader under a mount destination is not checked', () => {
    put('bin/ls', elf('/lib64/ld-linux-x86-64.so.2'));
    expect(() => check(['/bin/ls'], { mounts: tmpfsAt('/lib64') })).not.toThrow();
  });

  it('args[0] under a mount destination is not checked (the rootfs has another file there)', () => {
    put('opt/tool', elf('/lib/ld.so'));
    expect(() => check(['/opt/tool'], { mounts: tmpfsAt('/opt') })).not.toThrow();
  });

  it('a PATH entry under a mount before the match: the child decides', () => {
    put('b/prog', elf('/lib/ld.so'));
    expect(() => check(['prog'], { env: { PATH: '/a:/b' }, mounts: tmpfsAt('/a') })).not.toThrow();
  });

  it('a symlink that leads under a mount', () => {
    put('bin/ls', elf('/lib64/ld-linux-x86-64.so.2'));
    link('lib64', '/data/lib');
    expect(() => check(['/bin/ls'], { mounts: tmpfsAt('/data') })).not.toThrow();
  });
});
