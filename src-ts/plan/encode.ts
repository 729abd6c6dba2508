/**
 * Plan → one flat buffer (the layout of src-native/wire.h): a fixed header, fixed-size op records,
 * then a string table. No pointers, so the child can read it with no allocation and the parent
 * can bounds-check it once (src-native/plan.cc).
 */
import type { Op, Plan } from './plan.js';
import { F, H, HEADER_SIZE, NO_STRING, OP, OP_SIZE, STAGES, WIRE_MAGIC, WIRE_VERSION } from './wire.js';

/** Strings (and u32 arrays) laid out back to back; written into the plan buffer in one pass. */
class StringTable {
  private parts: (string | readonly number[])[] = [];
  private offsets: number[] = [];
  size = 0;
  private index = new Map<string, number>();

  add(s: string): number {
    const hit = this.index.get(s);
    if (hit !== undefined) return hit;
    const off = this.push(s + '\0', Buffer.byteLength(s, 'utf8') + 1);
    this.index.set(s, off);
    return off;
  }
  /** Strings stored back to back (argv, envp): returns the first one's offset. */
  addList(list: readonly string[]): number {
    if (list.length === 0) return NO_STRING;
    const off = this.size;
    for (const s of list) this.push(s + '\0', Buffer.byteLength(s, 'utf8') + 1);
    return off;
  }
  /** A little-endian u32 array, 4-byte aligned in the table (and so in the buffer). */
  addU32(values: readonly number[]): number {
    if (values.length === 0) return NO_STRING;
    const pad = (4 - (this.size % 4)) % 4;
    if (pad) this.push('\0'.repeat(pad), pad);
    return this.push(values, values.length * 4);
  }
  private push(p: string | readonly number[], bytes: number): number {
    const off = this.size;
    this.parts.push(p);
    this.offsets.push(off);
    this.size += bytes;
    return off;
  }
  /** The table must end in a NUL (the reader relies on it): add one if the last part is not a string. */
  seal(): void {
    if (this.size === 0 || typeof this.parts[this.parts.length - 1] !== 'string') this.push('\0', 1);
  }
  writeInto(buf: Buffer, at: number): void {
    this.parts.forEach((p, i) => {
      const o = at + this.offsets[i]!;
      if (typeof p === 'string') buf.write(p, o, 'utf8');
      else p.forEach((v, j) => buf.writeUInt32LE(v >>> 0, o + j * 4));
    });
  }
}

interface Rec {
  kind: number;
  flags: number;
  mflags: number;
  s: [number, number, number, number];
  n: [number, number, number, number];
}

function record(op: Op, st: StringTable): Rec {
  const r: Rec = { kind: 0, flags: 0, mflags: 0, s: [NO_STRING, NO_STRING, NO_STRING, NO_STRING], n: [0, 0, 0, 0] };
  const s = (v: string) => st.add(v);
  switch (op.kind) {
    case 'unshare':
      r.kind = OP.UNSHARE;
      r.mflags = op.flags;
      r.n[0] = op.sharedNetwork ? 1 : 0;
      break;
    case 'clone-tree':
      r.kind = OP.CLONE_TREE;
      if (op.ignoreMissing) r.flags |= F.IGNORE_MISSING;
      r.s[0] = s(op.source);
      r.n[0] = op.recursive ? 1 : 0;
      r.n[1] = op.slot;
      break;
    case 'make-private':
      r.kind = OP.MAKE_PRIVATE;
      r.mflags = op.flags;
      break;
    case 'root-upper':
      r.kind = OP.ROOT_UPPER;
      break;
    case 'root-overlay':
      r.kind = OP.ROOT_OVERLAY;
      if (op.userxattr) r.flags |= F.USERXATTR;
      break;
    case 'mount':
      r.kind = OP.MOUNT;
      r.flags = F.MKDIR;
      r.mflags = op.flags;
      r.s = [s(op.source), s(op.target), s(op.fstype), op.data ? s(op.data) : NO_STRING];
      break;
    case 'bind':
      r.kind = OP.BIND;
      r.flags = (op.file ? F.MKFILE : F.MKDIR) | (op.ignoreMissing ? F.IGNORE_MISSING : 0);
      r.mflags = op.attrs;
      r.s[0] = s(op.source);
      r.s[1] = s(op.target);
      r.n[0] = op.recursive ? 1 : 0;
      r.n[1] = op.propagation;
      r.n[2] = op.slot;
      break;
    case 'mknod':
      r.kind = OP.MKNOD;
      r.flags = op.bindFallback ? F.BIND_FALLBACK : 0;
      r.s[0] = s(op.path);
      r.s[1] = s(op.hostPath);
      r.n = [op.mode, op.major, op.minor, 0];
      break;
    case 'symlink':
      r.kind = OP.SYMLINK;
      r.s[0] = s(op.target);
      r.s[1] = s(op.path);
      break;
    case 'write-file':
      r.kind = OP.WRITE_FILE;
      r.s[0] = s(op.path);
      r.s[1] = s(op.content);
      r.n[0] = op.mode;
      r.n[1] = Buffer.byteLength(op.content, 'utf8');
      break;
    case 'mkdir':
      r.kind = OP.MKDIR;
      if (op.file) r.flags |= F.MKFILE;
      r.s[0] = s(op.path);
      break;
    case 'loopback-up':
      r.kind = OP.LOOPBACK_UP;
      break;
    case 'sethostname':
      r.kind = OP.SETHOSTNAME;
      r.s[0] = s(op.hostname);
      r.n[0] = Buffer.byteLength(op.hostname, 'utf8');
      break;
    case 'enter-root':
      r.kind = OP.ENTER_ROOT;
      break;
    case 'setuser':
      r.kind = OP.SETUSER;
      r.s[0] = st.addU32(op.groups);
      r.n = [op.uid, op.gid, op.groups.length, 0];
      break;
    case 'chdir':
      r.kind = OP.CHDIR;
      r.s[0] = s(op.path);
      break;
    case 'resolve-exec':
      r.kind = OP.RESOLVE_EXEC;
      r.s[0] = s(op.file);
      r.s[1] = op.searchPath === null ? NO_STRING : s(op.searchPath);
      break;
    case 'ready':
      r.kind = OP.READY;
      break;
    case 'wait-start':
      r.kind = OP.WAIT_START;
      break;
    case 'exec':
      r.kind = OP.EXEC;
      r.s[0] = st.addList(op.args);
      r.s[1] = st.addList(op.env);
      r.n = [op.args.length, op.env.length, op.umask, 0];
      break;
  }
  return r;
}

export function encodePlan(plan: Plan): Buffer {
  const st = new StringTable();
  const rootfs = st.add(plan.rootfs);
  const recs = plan.ops.map((op) => record(op, st));
  st.seal();
  const opsOffset = HEADER_SIZE;
  const strtabOffset = opsOffset + recs.length * OP_SIZE;
  const total = strtabOffset + st.size;
  // Header and ops through one u32 view of a fresh (so aligned) ArrayBuffer; this machine and
  // every target of the addon is little-endian, which the wire format is.
  const ab = new ArrayBuffer(total + ((4 - (total % 4)) % 4));
  const w = new Uint32Array(ab, 0, strtabOffset / 4);
  const lo = (v: number) => v % 0x100000000;
  const hi = (v: number) => Math.floor(v / 0x100000000);
  w[0] = WIRE_MAGIC;
  w[1] = WIRE_VERSION | (HEADER_SIZE << 16);
  w[2] = OP_SIZE; // | reserved0 << 16
  w[3] = recs.length;
  w[4] = opsOffset;
  w[5] = strtabOffset;
  w[6] = st.size;
  w[7] = total;
  w[8] = (plan.detached ? H.DETACHED : 0) | (plan.trace ? H.TRACE : 0);
  w[9] = 0;
  w[10] = lo(plan.cloneFlags);
  w[11] = hi(plan.cloneFlags);
  w[12] = rootfs; // then reserved2[5]
  let i = opsOffset / 4;
  for (let k = 0; k < recs.length; k++) {
    const r = recs[k]!;
    w[i] = r.kind | (STAGE_INDEX.get(plan.ops[k]!.stage)! << 16);
    w[i + 1] = r.flags;
    w[i + 2] = lo(r.mflags);
    w[i + 3] = hi(r.mflags);
    w[i + 4] = r.s[0];
    w[i + 5] = r.s[1];
    w[i + 6] = r.s[2];
    w[i + 7] = r.s[3];
    w[i + 8] = r.n[0];
    w[i + 9] = r.n[1];
    w[i + 10] = r.n[2];
    w[i + 11] = r.n[3];
    i += OP_SIZE / 4;
  }
  const buf = Buffer.from(ab, 0, total);
  st.writeInto(buf, strtabOffset);
  return buf;
}

const STAGE_INDEX = new Map<string, number>(STAGES.map((s, i) => [s, i]));
