import { describe, expect, it } from 'vitest';
import { encodePlan } from '../../src-ts/plan/encode.js';
import { buildPlan, type HostInfo, type Op, type Plan } from '../../src-ts/plan/plan.js';
import { STAGES } from '../../src-ts/plan/wire.js';
import { defaultMounts } from '../../src-ts/spec/mounts.js';
import { buildSpec, type ContainerOptions } from '../../src-ts/spec/spec.js';
import { NO_STRING, WireReader, type WireOp } from './wire-reader.js';

// Numbers from src-native/wire.h, written out here so a change on either side shows.
const K = {
  'clone-tree': 1,
  setns: 2,
  'netns-fresh': 3,
  unshare: 4,
  'make-private': 5,
  'root-upper': 6,
  'root-upper-detached': 7,
  'root-overlay': 8,
  'root-overlay-detached': 9,
  'attach-root': 10,
  mount: 11,
  bind: 12,
  mknod: 13,
  symlink: 14,
  'write-file': 15,
  mkdir: 16,
  sethostname: 17,
  'pivot-root': 18,
  chroot: 19,
  setuser: 20,
  chdir: 21,
  'resolve-exec': 22,
  sync: 23,
  ready: 24,
  'wait-start': 25,
  exec: 26,
  'no-new-privs': 27,
  'cap-bounding': 28,
  'keep-caps': 29,
  capset: 30,
  'cap-ambient': 31,
  'mask-path': 32,
  'readonly-path': 33,
  rlimit: 34,
  sysctl: 36,
  chown: 37,
  'root-readonly': 38,
  seccomp: 50,
  'root-upper-dir': 60,
  join: 70,
  'enter-root': 71,
  'tty-open': 80,
  'exec-init': 90,
  'ipcns-fresh': 100,
  'mount-detached': 110,
  'mask-tmpfs': 111,
} as const;
const STAGE_NO: Record<string, number> = {
  prepare: 1,
  rootfs: 2,
  mount: 3,
  device: 4,
  file: 5,
  network: 6,
  hostname: 7,
  pivot: 8,
  user: 9,
  cwd: 10,
  sync: 11,
  exec: 12,
  security: 13,
};
const F_PREMOUNTED = 0x1;
const F_MKFILE = 0x2;
const F_BIND_FALLBACK = 0x4;
const F_IGNORE_MISSING = 0x8;
const F_USERXATTR = 0x10;

const HOST: HostInfo = { cgroup: 'hybrid', resolvConf: 'nameserver 1.1.1.1\n# café ☕\n', mountMode: 'host' };

function makePlan(o: Partial<ContainerOptions> = {}, host = HOST): Plan {
  const spec = buildSpec({ rootfs: '/srv/rootfs', args: ['/sleep', '1'], ...o } as ContainerOptions, () => '0123456789abcdef');
  return buildPlan(spec, host, { bindSourceIsFile: spec.mounts.map((m) => m.destination === '/etc/app.conf') });
}

/** A hand-made plan of just these ops, encoded and read back. */
function encodeOps(ops: Op[]): WireReader {
  const plan: Plan = { cloneFlags: 0x20000, detached: false, trace: false, base: false, ops };
  return new WireReader(encodePlan(plan));
}

const OPTS: Partial<ContainerOptions> = {
  user: { uid: 1000, gid: 1000, additionalGids: [5, 27, 0x01020304] },
  env: { PATH: '/bin:/usr/bin', LANG: 'C.UTF-8', EMPTY: '' },
  args: ['/bin/sh', '-c', 'echo "héllo"', ''],
  cwd: '/tmp',
  umask: 0o27,
  hostname: 'box',
  mounts: [
    ...defaultMounts,
    { destination: '/data', source: '/srv/data', options: ['rbind', 'ro', 'nosuid', 'rshared'] },
    { destination: '/etc/app.conf', type: 'bind', source: '/srv/app.conf', options: ['ro'] },
  ],
};

describe('encodePlan: header and framing', () => {
  const plan = makePlan(OPTS);
  const buf = encodePlan(plan);
  const r = new WireReader(buf);
  const h = r.header;

  it("magic 'SBX1', version 2, sizes 72 and 48", () => {
    expect(buf.subarray(0, 4).toString('latin1')).toBe('SBX1');
    expect(h.magic).toBe(0x31584253);
    expect(h.version).toBe(2);
    expect(h.headerSize).toBe(72);
    expect(h.opSize).toBe(48);
  });

  it('op count and offsets', () => {
    expect(h.nOps).toBe(plan.ops.length);
    expect(h.opsOffset).toBe(72);
    expect(h.opsOffset % 8).toBe(0);
    expect(h.strtabOffset).toBe(72 + 48 * plan.ops.length);
    expect(h.strtabOffset + h.strtabSize).toBe(buf.length);
  });

  it('total_size is the buffer length', () => {
    expect(h.totalSize).toBe(buf.length);
  });

  it('reserved fields are zero', () => {
    expect(h.reserved0).toBe(0);
    expect(h.reserved1).toBe(0);
    expect(h.reserved2).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('the string table ends with a NUL', () => {
    expect(h.strtabSize).toBeGreaterThan(0);
    expect(buf[buf.length - 1]).toBe(0);
  });

  it('clone flags, the rootfs (as the root ops carry it), detached flag', () => {
    expect(h.cloneFlags).toBe(BigInt(plan.cloneFlags));
    expect(h.cloneFlags).toBe(0x20000000n); // CLONE_NEWPID; the other namespaces are the unshare op
    const upper = r.ops.find((w) => w.kind === K['root-upper'])!;
    expect(r.str(upper.s[0])).toBe('/srv/rootfs');
    const overlay = r.ops.find((w) => w.kind === K['root-overlay'])!;
    expect([r.list(overlay.s[0], overlay.n[0]), overlay.n[0]]).toEqual([['/srv/rootfs'], 1]);
    expect(h.flags).toBe(0);
    const det = new WireReader(encodePlan(makePlan({ ...OPTS, detached: true })));
    expect(det.header.flags).toBe(1);
    const tr = new WireReader(encodePlan(makePlan({ ...OPTS, trace: true, detached: true })));
    expect(tr.header.flags).toBe(0x1 | 0x2); // H_DETACHED | H_TRACE
    expect(new WireReader(encodePlan(makePlan({ trace: true }))).header.flags).toBe(0x2);
    const based = new WireReader(encodePlan(makePlan({}, { ...HOST, mountMode: 'base' })));
    expect(based.header.flags).toBe(0); // the mode is in the ops: setns(base), a detached root, chroot
    const setns = based.ops.find((w) => w.kind === K.setns)!;
    expect([setns.stage, setns.n]).toEqual([STAGE_NO.prepare, [5, 0x20000, 0, 0]]); // FD_BASE_MNTNS, CLONE_NEWNS
    expect(based.ops.some((w) => w.kind === K.chroot) && !based.ops.some((w) => w.kind === K['pivot-root'])).toBe(true);
    const attach = based.ops.find((w) => w.kind === K['attach-root'])!;
    expect([attach.stage, attach.flags, attach.s, attach.n]).toEqual([STAGE_NO.rootfs, 0, [NO_STRING, NO_STRING, NO_STRING, NO_STRING], [0, 0, 0, 0]]);
    const ns = new WireReader(encodePlan(makePlan({ namespaces: { network: false, cgroup: true, time: true } })));
    expect(ns.header.cloneFlags).toBe(BigInt(0x20000000 | 0x80));
    // With a cgroup namespace on this hybrid host the cgroup mount is still a bind: its clone first.
    expect(ns.ops[0]!.kind).toBe(K['clone-tree']);
    expect(ns.ops[1]!.kind).toBe(K.unshare);
    expect(ns.ops[1]!.mflags).toBe(BigInt(0x20000 | 0x8000000 | 0x4000000 | 0x2000000));
  });

  it('every string offset is NO_STRING or inside the table', () => {
    for (const [i, op] of r.ops.entries())
      for (const off of op.s) if (off !== NO_STRING) expect(off, `op ${i}`).toBeLessThan(h.strtabSize);
  });
});

describe('encodePlan: ops', () => {
  const plan = makePlan(OPTS);
  const r = new WireReader(encodePlan(plan));
  const pairs: [Op, WireOp][] = plan.ops.map((op, i) => [op, r.ops[i]!]);
  const of = <T extends Op['kind']>(kind: T) => pairs.filter(([op]) => op.kind === kind) as [Extract<Op, { kind: T }>, WireOp][];
  /** The one wire op of a kind. */
  const one = (kind: Op['kind']): WireOp => {
    const found = of(kind);
    expect(found, kind).toHaveLength(1);
    return found[0]![1];
  };

  it('kind and stage numbers follow wire.h', () => {
    for (const [op, w] of pairs) {
      expect(w.kind, op.kind).toBe(K[op.kind]);
      expect(w.stage, op.kind).toBe(STAGE_NO[op.stage]);
      expect(w.stage).toBe(STAGES.indexOf(op.stage));
      expect(STAGES[w.stage]).toBe(op.stage);
    }
  });

  it('unshare: first op after the clones and the network namespace, stage prepare, CLONE_NEW* flags in mflags', () => {
    const u = one('unshare');
    const before = r.ops.slice(0, r.ops.indexOf(u));
    expect(before.slice(0, -2).every((w) => w.kind === K['clone-tree'])).toBe(true);
    expect(before.slice(-2).map((w) => w.kind)).toEqual([K['netns-fresh'], K['ipcns-fresh']]);
    expect(u.stage).toBe(1);
    expect(u.mflags).toBe(0x04020000n); // NEWNS|NEWUTS (the network and IPC namespaces come pooled)
    expect(u.s).toEqual([NO_STRING, NO_STRING, NO_STRING, NO_STRING]);
    expect(u.n).toEqual([0, 0, 0, 0]);
  });

  it('make-private: MS_REC|MS_PRIVATE in mflags; root-overlay: no flags', () => {
    const mp = one('make-private');
    expect(mp.mflags).toBe(0x44000n);
    expect(mp.s).toEqual([NO_STRING, NO_STRING, NO_STRING, NO_STRING]);
    const ro = one('root-overlay');
    expect(ro.flags).toBe(0);
  });

  it('mount: source, target, fstype, data (or NO_STRING), mflags; sysfs and mqueue premounted', () => {
    const mounts = of('mount');
    expect(mounts).toHaveLength(6);
    for (const [op, w] of mounts) {
      expect(r.str(w.s[0])).toBe(op.source);
      expect(r.str(w.s[1])).toBe(op.target);
      expect(r.str(w.s[2])).toBe(op.fstype);
      if (op.data) expect(r.str(w.s[3])).toBe(op.data);
      else expect(w.s[3]).toBe(NO_STRING);
      expect(w.mflags).toBe(BigInt(op.flags));
      expect(w.flags).toBe(op.fstype === 'sysfs' || op.fstype === 'mqueue' ? F_PREMOUNTED : 0);
      // sysfs: the one the pooled network namespace came with (FD_POOLED_SYSFS), MOUNT_ATTR_* of
      // ro,nosuid,nodev,noexec; mqueue: the one of the pooled IPC namespace (FD_POOLED_MQUEUE), nosuid,nodev,noexec
      expect(w.n).toEqual(op.fstype === 'sysfs' ? [4, 0xf, 0, 0] : op.fstype === 'mqueue' ? [8, 0xe, 0, 0] : [0, 0, 0, 0]);
    }
    const dev = mounts.find(([op]) => op.target === 'dev')![1];
    expect(r.str(dev.s[3])).toBe('mode=755,size=65536k');
    expect(dev.mflags).toBe(0x1000002n);
  });

  it('bind: source, target, recursive, propagation, attrs in mflags, MKFILE/IGNORE_MISSING', () => {
    const binds = of('bind');
    expect(binds.map(([op]) => op.target)).toEqual(['sys/fs/cgroup', 'data', 'etc/app.conf']);
    const [cg, data, file] = binds.map(([, w]) => w) as [WireOp, WireOp, WireOp];
    expect(r.str(cg.s[0])).toBe('/sys/fs/cgroup');
    expect(r.str(cg.s[1])).toBe('sys/fs/cgroup');
    expect(cg.n[0]).toBe(1);
    expect(cg.flags).toBe(F_IGNORE_MISSING);
    expect(cg.mflags).toBe(0xfn);
    expect(r.str(data.s[0])).toBe('/srv/data');
    expect(data.n[0]).toBe(1);
    expect(data.n[1]).toBe(0x100000); // MS_SHARED
    expect(data.mflags).toBe(0x3n); // MOUNT_ATTR_RDONLY|NOSUID
    expect(data.flags).toBe(0);
    expect(r.str(file.s[1])).toBe('etc/app.conf');
    expect(file.n[0]).toBe(0);
    expect(file.flags).toBe(F_MKFILE);
    for (const w of [cg, data, file]) expect([w.s[2], w.s[3]]).toEqual([NO_STRING, NO_STRING]);
    expect([cg.n[2], data.n[2], file.n[2]]).toEqual([0, 1, 2]); // slots
  });

  it('clone-tree: source, recursive, slot, IGNORE_MISSING; one per bind, before unshare', () => {
    const clones = of('clone-tree');
    expect(clones.map(([, w]) => [r.str(w.s[0]), w.n[0], w.n[1], w.flags])).toEqual([
      ['/sys/fs/cgroup', 1, 0, F_IGNORE_MISSING],
      ['/srv/data', 1, 1, 0],
      ['/srv/app.conf', 0, 2, 0],
    ]);
    for (const [, w] of clones) {
      expect(w.stage).toBe(STAGE_NO.mount);
      expect([w.s[1], w.s[2], w.s[3], w.n[2], w.n[3]]).toEqual([NO_STRING, NO_STRING, NO_STRING, 0, 0]);
      expect(r.ops.indexOf(w)).toBeLessThan(r.ops.indexOf(one('unshare')));
    }
  });

  it('mknod: path, host path, mode, major, minor', () => {
    const nodes = of('mknod');
    expect(nodes.map(([, w]) => [r.str(w.s[0]), r.str(w.s[1]), ...w.n])).toEqual([
      ['dev/null', '/dev/null', 0o20666, 1, 3, 0],
      ['dev/zero', '/dev/zero', 0o20666, 1, 5, 0],
      ['dev/full', '/dev/full', 0o20666, 1, 7, 0],
      ['dev/random', '/dev/random', 0o20666, 1, 8, 0],
      ['dev/urandom', '/dev/urandom', 0o20666, 1, 9, 0],
      ['dev/tty', '/dev/tty', 0o20666, 5, 0, 0],
    ]);
    for (const [, w] of nodes) expect(w.flags & F_BIND_FALLBACK).toBe(0);
  });

  it('symlink: s0 target, s1 path', () => {
    expect(of('symlink').map(([, w]) => [r.str(w.s[0]), r.str(w.s[1])])).toEqual([
      ['/proc/mounts', 'etc/mtab'],
      ['/proc/self/fd', 'dev/fd'],
      ['/proc/self/fd/0', 'dev/stdin'],
      ['/proc/self/fd/1', 'dev/stdout'],
      ['/proc/self/fd/2', 'dev/stderr'],
      ['pts/ptmx', 'dev/ptmx'],
      ['/proc/kcore', 'dev/core'],
    ]);
  });

  it('write-file: path, exact content, mode, byte length (multibyte content)', () => {
    const files = of('write-file');
    expect(files.map(([, w]) => r.str(w.s[0]))).toEqual(['etc/hostname', 'etc/hosts', 'etc/resolv.conf']);
    expect(files.map(([, w]) => r.str(w.s[1]))).toEqual([
      'box\n',
      '127.0.0.1\tlocalhost box\n::1\tlocalhost ip6-localhost ip6-loopback\n',
      'nameserver 1.1.1.1\n# café ☕\n',
    ]);
    for (const [op, w] of files) {
      expect(w.n[0]).toBe(0o644);
      expect(w.n[1]).toBe(Buffer.byteLength(op.content, 'utf8'));
    }
    const resolv = files[2]![1];
    expect(resolv.n[1]).toBe('nameserver 1.1.1.1\n# café ☕\n'.length + 1 + 2); // é 2 bytes, ☕ 3 bytes
  });

  it('an empty required string is an empty string, not NO_STRING (a host without /etc/resolv.conf); an empty optional one is none', () => {
    const p = makePlan({}, { ...HOST, resolvConf: '' });
    const w = new WireReader(encodePlan(p));
    const i = p.ops.findIndex((o) => o.kind === 'write-file' && o.path === 'etc/resolv.conf');
    expect(w.ops[i]!.s[1]).not.toBe(NO_STRING);
    expect(w.str(w.ops[i]!.s[1])).toBe('');
    expect(w.ops[i]!.n[1]).toBe(0);
    const mq = p.ops.findIndex((o) => o.kind === 'mount' && o.fstype === 'mqueue'); // data: '' (optional)
    expect(w.ops[mq]!.s[3]).toBe(NO_STRING);
  });

  it('mkdir: path; the mount points made in the upper layer; F_MKFILE for a file bind', () => {
    const dirs = of('mkdir');
    expect(dirs.map(([, w]) => [r.str(w.s[0]), w.flags])).toEqual([
      ['etc', 0],
      ['proc', 0],
      ['dev', 0],
      ['sys', 0],
      ['data', 0],
      ['etc/app.conf', 0x2], // a file bind: made as an empty file
    ]);
    const withFile = buildPlan(
      buildSpec({ rootfs: '/srv/rootfs', args: ['/x'], mounts: [{ destination: '/etc/hosts', type: 'bind', source: '/h' }] }, () => 'fileid'),
      HOST,
      { bindSourceIsFile: [true] },
    );
    const rr = new WireReader(encodePlan(withFile));
    const mk = rr.ops.filter((w) => w.kind === K.mkdir);
    expect(mk.map((w) => [rr.str(w.s[0]), w.flags])).toEqual([
      ['etc', 0],
      ['etc/hosts', 0x2],
    ]);
  });

  it('sethostname: s0 hostname, n0 its byte length', () => {
    const w = one('sethostname');
    expect(r.str(w.s[0])).toBe('box');
    expect(w.n[0]).toBe(3);
  });

  it('setuser: uid, gid, count; groups as an aligned u32 array', () => {
    const w = one('setuser');
    expect(w.n).toEqual([1000, 1000, 3, 0]);
    expect(w.s[0] % 4).toBe(0);
    expect((r.header.strtabOffset + w.s[0]) % 4).toBe(0);
    expect(w.s[0] + 12).toBeLessThanOrEqual(r.header.strtabSize);
    expect(r.u32s(w.s[0], 3)).toEqual([5, 27, 0x01020304]);
  });

  it('setuser groups are aligned whatever the strings before them', () => {
    for (const hostname of ['a', 'ab', 'abc', 'abcd']) {
      const rr = new WireReader(encodePlan(makePlan({ ...OPTS, hostname })));
      const w = rr.ops.find((o) => o.kind === K.setuser)!;
      expect(w.s[0] % 4, hostname).toBe(0);
      expect(rr.u32s(w.s[0], 3)).toEqual([5, 27, 0x01020304]);
    }
  });

  it('setuser without groups: NO_STRING and count 0', () => {
    const rr = new WireReader(encodePlan(makePlan()));
    const w = rr.ops.find((o) => o.kind === K.setuser)!;
    expect(w.s[0]).toBe(NO_STRING);
    expect(w.n).toEqual([0, 0, 0, 0]);
  });

  it('chdir and resolve-exec', () => {
    const cd = one('chdir');
    expect(r.str(cd.s[0])).toBe('/tmp');
    const re = one('resolve-exec');
    expect(r.str(re.s[0])).toBe('/bin/sh');
    expect(r.str(re.s[1])).toBe('/bin:/usr/bin');
  });

  it('resolve-exec without PATH: NO_STRING', () => {
    const rr = encodeOps([
      { stage: 'exec', kind: 'resolve-exec', file: 'x', searchPath: null },
      { stage: 'exec', kind: 'exec', args: ['x'], env: [], umask: 0 },
    ]);
    expect(rr.ops[0]!.s[1]).toBe(NO_STRING);
    // empty env: NO_STRING and count 0
    expect(rr.ops[1]!.s[1]).toBe(NO_STRING);
    expect(rr.ops[1]!.n[1]).toBe(0);
  });

  it('exec: argv and envp lists decode back; n0/n1 counts, n2 umask; last op', () => {
    const last = r.ops.at(-1)!;
    expect(last.kind).toBe(K.exec);
    expect(last.n).toEqual([4, 3, 0o27, 0]);
    expect(r.list(last.s[0], last.n[0])).toEqual(['/bin/sh', '-c', 'echo "héllo"', '']);
    expect(r.list(last.s[1], last.n[1])).toEqual(['PATH=/bin:/usr/bin', 'LANG=C.UTF-8', 'EMPTY=']);
  });

  it('capabilities: masks above 32 bits in mflags (u64) and as capset words in n[]', () => {
    const all = 2 ** 41 - 1; // capabilities 0..40
    const r = encodeOps([
      { stage: 'security', kind: 'cap-bounding', keep: 2 ** 40 + 2 ** 5, last: 40 },
      { stage: 'security', kind: 'capset', effectiveLo: 0x20000420, effectiveHi: 0x100, permittedLo: 0xffffffff, permittedHi: 0x1ff, inheritable: all },
      { stage: 'security', kind: 'cap-ambient', ambient: 2 ** 34 },
      { stage: 'exec', kind: 'exec', args: ['/x'], env: [], umask: 0 },
    ]);
    const [b, c, a] = r.ops;
    expect([b!.kind, b!.stage, b!.mflags, b!.n]).toEqual([28, 13, (1n << 40n) | 32n, [40, 0, 0, 0]]);
    expect([c!.kind, c!.mflags, c!.n]).toEqual([30, (1n << 41n) - 1n, [0x20000420, 0x100, 0xffffffff, 0x1ff]]);
    expect([a!.kind, a!.mflags, a!.n]).toEqual([31, 1n << 34n, [0, 0, 0, 0]]);
    for (const w of [b!, c!, a!]) expect(w.s).toEqual([NO_STRING, NO_STRING, NO_STRING, NO_STRING]);
  });

  it('ops without operands have NO_STRING slots and zero numbers', () => {
    for (const kind of ['netns-fresh', 'pivot-root', 'no-new-privs', 'keep-caps', 'ready', 'wait-start'] as const) {
      const w = one(kind);
      expect(w.s, kind).toEqual([NO_STRING, NO_STRING, NO_STRING, NO_STRING]);
      expect(w.n, kind).toEqual([0, 0, 0, 0]);
      expect(w.flags).toBe(0);
      expect(w.mflags).toBe(0n);
    }
  });

  it('bind fallback and userxattr flags', () => {
    const rr = encodeOps([
      { stage: 'rootfs', kind: 'root-overlay', lowers: ['/r'], userxattr: true },
      { stage: 'device', kind: 'mknod', path: 'dev/null', mode: 0o20666, major: 1, minor: 3, hostPath: '/dev/null', bindFallback: true },
      { stage: 'exec', kind: 'exec', args: ['x'], env: ['A=1'], umask: 0 },
    ]);
    expect(rr.ops[0]!.flags).toBe(F_USERXATTR);
    expect(rr.ops[1]!.flags).toBe(F_BIND_FALLBACK);
  });
});

describe('encodePlan: root-upper-dir (keep)', () => {
  it('s0 the kept directory; s1 the directory to attach it on, or NO_STRING when it stays detached', () => {
    const rr = encodeOps([
      { stage: 'rootfs', kind: 'root-upper-dir', dir: '/store/containers/x' },
      { stage: 'rootfs', kind: 'root-upper-dir', dir: '/store/containers/y', attach: '/srv/rootfs' },
      { stage: 'exec', kind: 'exec', args: ['x'], env: [], umask: 0 },
    ]);
    const [detached, attached] = rr.ops;
    expect([detached!.kind, detached!.stage, rr.str(detached!.s[0]), detached!.s[1]]).toEqual([60, STAGE_NO.rootfs, '/store/containers/x', NO_STRING]);
    expect([rr.str(attached!.s[0]), rr.str(attached!.s[1])]).toEqual(['/store/containers/y', '/srv/rootfs']);
  });
});

describe('encodePlan: bytes (the seccomp program)', () => {
  it('are copied 8-byte aligned whatever comes before, with n0 instructions and n1 flags', () => {
    for (const hostname of ['a', 'ab', 'abc']) {
      const bpf = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
      const rr = encodeOps([
        { stage: 'hostname', kind: 'sethostname', hostname },
        { stage: 'security', kind: 'seccomp', bpf, instructions: 2, flags: 4 },
        { stage: 'exec', kind: 'exec', args: ['x'], env: [], umask: 0 },
      ]);
      const w = rr.ops[1]!;
      expect([w.kind, w.stage, w.n]).toEqual([K.seccomp, 13, [2, 4, 0, 0]]);
      expect(w.s[0] % 8, hostname).toBe(0);
      expect((rr.header.strtabOffset + w.s[0]) % 8).toBe(0);
      expect([...rr.buf.subarray(rr.header.strtabOffset + w.s[0], rr.header.strtabOffset + w.s[0] + 16)]).toEqual([...bpf]);
    }
  });
});

describe('encodePlan: string table', () => {
  it('identical strings are stored once', () => {
    const plan = makePlan();
    const r = new WireReader(encodePlan(plan));
    const procMount = r.ops[plan.ops.findIndex((o) => o.kind === 'mount' && o.target === 'proc')]!;
    expect(procMount.s[0]).toBe(procMount.s[1]); // source 'proc' and target 'proc'
    const devMount = r.ops[plan.ops.findIndex((o) => o.kind === 'mount' && o.target === 'dev')]!;
    expect(devMount.s[0]).toBe(devMount.s[2]); // source and fstype 'tmpfs'
    const shm = r.ops[plan.ops.findIndex((o) => o.kind === 'mount' && o.target === 'dev/shm')]!;
    expect(shm.s[2]).toBe(devMount.s[2]); // fstype 'tmpfs' across ops
    const flat = r.ops.flatMap((o) => o.s.filter((s) => s !== NO_STRING));
    // every distinct (non-list) string appears at one offset only
    const byText = new Map<string, Set<number>>();
    for (const o of r.ops) {
      if (o.kind === K.exec || o.kind === K.setuser || o.kind === K['root-overlay']) continue; // lists
      for (const off of o.s)
        if (off !== NO_STRING) {
          const t = r.str(off);
          byText.set(t, (byText.get(t) ?? new Set()).add(off));
        }
    }
    for (const [t, offs] of byText) expect(offs.size, t).toBe(1);
    expect(flat.length).toBeGreaterThan(byText.size);
  });

  it('ends with a NUL even when the last item is a u32 array ending in a non-zero byte', () => {
    const plan: Plan = {
      cloneFlags: 0x20000,
      detached: false,
      trace: false,
      base: false,
      ops: [{ stage: 'user', kind: 'setuser', uid: 1, gid: 2, groups: [0x01020304, 0xff000000] }],
    };
    const buf = encodePlan(plan);
    const r = new WireReader(buf);
    expect(buf[buf.length - 1]).toBe(0);
    expect(r.header.totalSize).toBe(buf.length);
    expect(r.u32s(r.ops[0]!.s[0], 2)).toEqual([0x01020304, 0xff000000]);
  });

  it('large mount flags survive as u64', () => {
    const plan: Plan = {
      cloneFlags: 0x7e020080,
      detached: true,
      trace: false,
      base: false,
      ops: [
        { stage: 'mount', kind: 'mount', source: 's', target: 't', fstype: 'tmpfs', flags: 0x1000000 | 0x2000000, data: '' },
        { stage: 'exec', kind: 'exec', args: ['x'], env: [], umask: 0 },
      ],
    };
    const r = new WireReader(encodePlan(plan));
    expect(r.ops[0]!.mflags).toBe(0x3000000n);
    expect(r.header.cloneFlags).toBe(0x7e020080n);
    expect(r.header.flags).toBe(1);
  });
});
