/**
 * Plan → one flat buffer (the layout of src-native/wire.h): a fixed header, fixed-size op records,
 * then a string table. No pointers, so the child can read it with no allocation and the parent
 * can bounds-check it once (src-native/plan.cc).
 */
import type { Op, Plan } from './plan.js';
import { F, H, HEADER_SIZE, NO_STRING, OP, OP_SIZE, STAGES, WIRE_MAGIC, WIRE_VERSION } from './wire.js';

/**
 * Strings (and u32 arrays) laid out back to back; written into the plan buffer in one pass. A
 * string part is written followed by its NUL; a number part is the bytes of zero padding.
 */
class StringTable {
  private parts: (string | number | readonly number[])[] = [];
  private offsets: number[] = [];
  size = 0;
  private index = new Map<string, number>();

  add(s: string): number {
    const hit = this.index.get(s);
    if (hit !== undefined) return hit;
    const off = this.push(s, Buffer.byteLength(s, 'utf8') + 1);
    this.index.set(s, off);
    return off;
  }
  /** Strings stored back to back (argv, envp): returns the first one's offset. */
  addList(list: readonly string[]): number {
    if (list.length === 0) return NO_STRING;
    const off = this.size;
    for (const s of list) this.push(s, Buffer.byteLength(s, 'utf8') + 1);
    return off;
  }
  /** A little-endian u32 array, 4-byte aligned in the table (and so in the buffer). */
  addU32(values: readonly number[]): number {
    if (values.length === 0) return NO_STRING;
    const pad = (4 - (this.size % 4)) % 4;
    if (pad) this.push(pad, pad);
    return this.push(values, values.length * 4);
  }
  private push(p: string | number | readonly number[], bytes: number): number {
    const off = this.size;
    this.parts.push(p);
    this.offsets.push(off);
    this.size += bytes;
    return off;
  }
  /** The table must end in a NUL (the reader relies on it): add one if the last part is not a string. */
  seal(): void {
    if (this.size === 0 || typeof this.parts[this.parts.length - 1] !== 'string') this.push(1, 1);
  }
  writeInto(buf: Buffer, at: number): void {
    for (let i = 0; i < this.parts.length; i++) {
      const p = this.parts[i]!;
      const o = at + this.offsets[i]!;
      if (typeof p === 'string') buf[o + buf.write(p, o, 'utf8')] = 0;
      else if (typeof p === 'number') buf.fill(0, o, o + p);
      else for (let j = 0; j < p.length; j++) buf.writeUInt32LE(p[j]! >>> 0, o + j * 4);
    }
  }
}

const lo = (v: number) => v % 0x100000000;
const hi = (v: number) => Math.floor(v / 0x100000000);

/**
 * Writes one op record (wire.h `struct sbx_op`, 12 u32 words) at word index `i` of `w`: kind and
 * stage, flags, mflags (lo, hi), s[4], n[4]. Straight into the buffer: no record object per op.
 */
function writeOp(w: Uint32Array, i: number, op: Op, st: StringTable): void {
  let kind = 0;
  let flags = 0;
  let mflags = 0;
  w.fill(NO_STRING, i + 4, i + 8); // s[0..3]; n[0..3] stay 0 (a fresh buffer)
  switch (op.kind) {
    case 'clone-tree':
      kind = OP.CLONE_TREE;
      if (op.ignoreMissing) flags |= F.IGNORE_MISSING;
      w[i + 4] = st.add(op.source);
      w[i + 8] = op.recursive ? 1 : 0;
      w[i + 9] = op.slot;
      break;
    case 'unshare':
      kind = OP.UNSHARE;
      mflags = op.flags;
      w[i + 8] = op.sharedNetwork ? 1 : 0;
      break;
    case 'make-private':
      kind = OP.MAKE_PRIVATE;
      mflags = op.flags;
      break;
    case 'root-upper':
      kind = OP.ROOT_UPPER;
      break;
    case 'root-overlay':
      kind = OP.ROOT_OVERLAY;
      if (op.userxattr) flags |= F.USERXATTR;
      break;
    case 'mount':
      kind = OP.MOUNT;
      flags = F.MKDIR;
      mflags = op.flags;
      w[i + 4] = st.add(op.source);
      w[i + 5] = st.add(op.target);
      w[i + 6] = st.add(op.fstype);
      if (op.data) w[i + 7] = st.add(op.data);
      break;
    case 'bind':
      kind = OP.BIND;
      flags = (op.file ? F.MKFILE : F.MKDIR) | (op.ignoreMissing ? F.IGNORE_MISSING : 0);
      mflags = op.attrs;
      w[i + 4] = st.add(op.source);
      w[i + 5] = st.add(op.target);
      w[i + 8] = op.recursive ? 1 : 0;
      w[i + 9] = op.propagation;
      w[i + 10] = op.slot;
      break;
    case 'mknod':
      kind = OP.MKNOD;
      flags = op.bindFallback ? F.BIND_FALLBACK : 0;
      w[i + 4] = st.add(op.path);
      w[i + 5] = st.add(op.hostPath);
      w[i + 8] = op.mode;
      w[i + 9] = op.major;
      w[i + 10] = op.minor;
      break;
    case 'symlink':
      kind = OP.SYMLINK;
      w[i + 4] = st.add(op.target);
      w[i + 5] = st.add(op.path);
      break;
    case 'write-file':
      kind = OP.WRITE_FILE;
      w[i + 4] = st.add(op.path);
      w[i + 5] = st.add(op.content);
      w[i + 8] = op.mode;
      w[i + 9] = Buffer.byteLength(op.content, 'utf8');
      break;
    case 'mkdir':
      kind = OP.MKDIR;
      if (op.file) flags |= F.MKFILE;
      w[i + 4] = st.add(op.path);
      break;
    case 'loopback-up':
      kind = OP.LOOPBACK_UP;
      break;
    case 'sethostname':
      kind = OP.SETHOSTNAME;
      w[i + 4] = st.add(op.hostname);
      w[i + 8] = Buffer.byteLength(op.hostname, 'utf8');
      break;
    case 'enter-root':
      kind = OP.ENTER_ROOT;
      break;
    case 'attach-root':
      kind = OP.ATTACH_ROOT;
      break;
    case 'setuser':
      kind = OP.SETUSER;
      w[i + 4] = st.addU32(op.groups);
      w[i + 8] = op.uid;
      w[i + 9] = op.gid;
      w[i + 10] = op.groups.length;
      break;
    case 'chdir':
      kind = OP.CHDIR;
      w[i + 4] = st.add(op.path);
      break;
    case 'resolve-exec':
      kind = OP.RESOLVE_EXEC;
      w[i + 4] = st.add(op.file);
      if (op.searchPath !== null) w[i + 5] = st.add(op.searchPath);
      break;
    case 'ready':
      kind = OP.READY;
      break;
    case 'wait-start':
      kind = OP.WAIT_START;
      break;
    case 'exec':
      kind = OP.EXEC;
      w[i + 4] = st.addList(op.args);
      w[i + 5] = st.addList(op.env);
      w[i + 8] = op.args.length;
      w[i + 9] = op.env.length;
      w[i + 10] = op.umask;
      break;
  }
  w[i] = kind | (STAGE_INDEX.get(op.stage)! << 16);
  w[i + 1] = flags;
  w[i + 2] = lo(mflags);
  w[i + 3] = hi(mflags);
}

export function encodePlan(plan: Plan): Buffer {
  const st = new StringTable();
  const rootfs = st.add(plan.rootfs);
  const opsOffset = HEADER_SIZE;
  const strtabOffset = opsOffset + plan.ops.length * OP_SIZE;
  // Header and ops through one u32 view; the string table's size is known only after the ops
  // (each op adds its strings), so the buffer gets its final length then. This machine and every
  // target of the addon is little-endian, which the wire format is.
  const head = new Uint32Array(strtabOffset / 4);
  for (let k = 0, i = opsOffset / 4; k < plan.ops.length; k++, i += OP_SIZE / 4) writeOp(head, i, plan.ops[k]!, st);
  st.seal();
  const total = strtabOffset + st.size;
  const w = head;
  w[0] = WIRE_MAGIC;
  w[1] = WIRE_VERSION | (HEADER_SIZE << 16);
  w[2] = OP_SIZE; // | reserved0 << 16
  w[3] = plan.ops.length;
  w[4] = opsOffset;
  w[5] = strtabOffset;
  w[6] = st.size;
  w[7] = total;
  w[8] = (plan.detached ? H.DETACHED : 0) | (plan.trace ? H.TRACE : 0) | (plan.base ? H.BASE : 0);
  w[9] = 0;
  w[10] = lo(plan.cloneFlags);
  w[11] = hi(plan.cloneFlags);
  w[12] = rootfs; // then reserved2[5]
  const buf = Buffer.allocUnsafe(total);
  buf.set(new Uint8Array(head.buffer, 0, strtabOffset), 0);
  st.writeInto(buf, strtabOffset);
  return buf;
}

const STAGE_INDEX = new Map<string, number>(STAGES.map((s, i) => [s, i]));
