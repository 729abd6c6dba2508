/**
 * Plan → one flat buffer (the layout of src-native/wire.h): a fixed header, fixed-size op records,
 * then a string table. No pointers, so the child can read it with no allocation and the parent
 * can bounds-check it once (src-native/plan.cc).
 */
import type { Op, Plan } from './plan.js';
import { OP_TABLE, STAGE_INDEX, type AnyOpShape } from './ops.js';
import { H, HEADER_SIZE, NO_STRING, OP_SIZE, WIRE_MAGIC, WIRE_VERSION } from './wire.js';

/**
 * Strings (and u32 arrays) laid out back to back; written into the plan buffer in one pass. A
 * string part is written followed by its NUL; a number part is the bytes of zero padding.
 */
class StringTable {
  private parts: (string | number | readonly number[] | Uint8Array)[] = [];
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
  /** Bytes, 8-byte aligned in the table (and so in the buffer: the table starts 8-aligned). */
  addBytes(bytes: Uint8Array): number {
    if (bytes.length === 0) return NO_STRING;
    const pad = (8 - (this.size % 8)) % 8;
    if (pad) this.push(pad, pad);
    return this.push(bytes, bytes.length);
  }
  private push(p: string | number | readonly number[] | Uint8Array, bytes: number): number {
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
      else if (p instanceof Uint8Array) buf.set(p, o);
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
type Writer = (w: Uint32Array, i: number, op: Op, st: StringTable) => void;

/** A slot's value as the table names it: a field, or '#field' / '@field'. */
function numberOf(word: string): (op: Record<string, unknown>) => number {
  const field = word.slice(1);
  if (word.startsWith('#')) return (op) => (op[field] as readonly unknown[]).length;
  if (word.startsWith('@')) return (op) => Buffer.byteLength(op[field] as string, 'utf8');
  return (op) => {
    const v = op[word];
    return v === true ? 1 : typeof v === 'number' ? v : 0;
  };
}

function stringOf(word: string): (op: Record<string, unknown>, st: StringTable) => number {
  const optional = word.endsWith('?');
  const field = optional ? word.slice(0, -1) : word;
  return (op, st) => {
    const v = op[field];
    // An empty required string is one (a write-file's content: /etc/resolv.conf of a host that
    // has none); only an optional one becomes NO_STRING.
    if (v === undefined || v === null || (v === '' && optional)) return NO_STRING;
    if (typeof v === 'string') return st.add(v);
    if (v instanceof Uint8Array) return st.addBytes(v);
    const list = v as readonly (string | number)[];
    if (list.length === 0) return NO_STRING;
    return typeof list[0] === 'number' ? st.addU32(list as readonly number[]) : st.addList(list as readonly string[]);
  };
}

/** One writer per op kind, made once from the op table. */
function compile(shape: AnyOpShape): Writer {
  const strings = (shape.s ?? []).map(stringOf);
  const numbers = (shape.n ?? []).map(numberOf);
  const flags = Object.entries(shape.flags ?? {}) as [string, number][];
  const mflags = shape.mflags;
  const code = shape.code;
  return (w, i, opIn, st) => {
    const op = opIn as unknown as Record<string, unknown>;
    w.fill(NO_STRING, i + 4, i + 8); // s[0..3]; n[0..3] stay 0 (a fresh buffer)
    for (let k = 0; k < strings.length; k++) w[i + 4 + k] = strings[k]!(op, st);
    for (let k = 0; k < numbers.length; k++) w[i + 8 + k] = numbers[k]!(op);
    let f = 0;
    for (const [field, bit] of flags) if (op[field] !== undefined && op[field] !== false) f |= bit;
    const m = mflags ? (op[mflags] as number) : 0;
    w[i] = code | (STAGE_INDEX.get(opIn.stage)! << 16);
    w[i + 1] = f;
    w[i + 2] = lo(m);
    w[i + 3] = hi(m);
  };
}

const WRITERS = new Map<string, Writer>(Object.entries(OP_TABLE).map(([kind, shape]) => [kind, compile(shape as AnyOpShape)]));

function writeOp(w: Uint32Array, i: number, op: Op, st: StringTable): void {
  const write = WRITERS.get(op.kind);
  if (!write) throw new TypeError(`encodePlan: unknown op kind ${JSON.stringify(op.kind)}`);
  write(w, i, op, st);
}

export function encodePlan(plan: Plan): Buffer {
  const st = new StringTable();
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
  w[8] = (plan.detached ? H.DETACHED : 0) | (plan.trace ? H.TRACE : 0);
  w[9] = 0;
  w[10] = lo(plan.cloneFlags);
  w[11] = hi(plan.cloneFlags);
  // w[12..17]: reserved2, left 0
  const buf = Buffer.allocUnsafe(total);
  buf.set(new Uint8Array(head.buffer, 0, strtabOffset), 0);
  st.writeInto(buf, strtabOffset);
  return buf;
}

