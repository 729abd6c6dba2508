/**
 * A reader of the plan wire format, written from src-native/wire.h (not from encode.ts), so the
 * encode tests check the buffer against the C layout.
 */
export const NO_STRING = 0xffffffff;

export interface WireHeader {
  magic: number;
  version: number;
  headerSize: number;
  opSize: number;
  reserved0: number;
  nOps: number;
  opsOffset: number;
  strtabOffset: number;
  strtabSize: number;
  totalSize: number;
  flags: number;
  reserved1: number;
  cloneFlags: bigint;
  reserved2: number[];
}

export interface WireOp {
  kind: number;
  stage: number;
  flags: number;
  mflags: bigint;
  s: [number, number, number, number];
  n: [number, number, number, number];
}

export class WireReader {
  readonly view: DataView;
  readonly header: WireHeader;
  readonly ops: WireOp[];
  readonly strtab: Uint8Array;

  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const v = this.view;
    this.header = {
      magic: v.getUint32(0, true),
      version: v.getUint16(4, true),
      headerSize: v.getUint16(6, true),
      opSize: v.getUint16(8, true),
      reserved0: v.getUint16(10, true),
      nOps: v.getUint32(12, true),
      opsOffset: v.getUint32(16, true),
      strtabOffset: v.getUint32(20, true),
      strtabSize: v.getUint32(24, true),
      totalSize: v.getUint32(28, true),
      flags: v.getUint32(32, true),
      reserved1: v.getUint32(36, true),
      cloneFlags: v.getBigUint64(40, true),
      reserved2: [0, 1, 2, 3, 4, 5].map((i) => v.getUint32(48 + 4 * i, true)),
    };
    const h = this.header;
    this.ops = [];
    for (let i = 0; i < h.nOps; i++) {
      const o = h.opsOffset + i * 48;
      this.ops.push({
        kind: v.getUint16(o, true),
        stage: v.getUint16(o + 2, true),
        flags: v.getUint32(o + 4, true),
        mflags: v.getBigUint64(o + 8, true),
        s: [0, 1, 2, 3].map((j) => v.getUint32(o + 16 + 4 * j, true)) as WireOp['s'],
        n: [0, 1, 2, 3].map((j) => v.getUint32(o + 32 + 4 * j, true)) as WireOp['n'],
      });
    }
    this.strtab = buf.subarray(h.strtabOffset, h.strtabOffset + h.strtabSize);
  }

  /** The NUL-terminated string at `off` in the string table. */
  str(off: number): string {
    if (off === NO_STRING) throw new Error('NO_STRING');
    if (off >= this.strtab.length) throw new Error(`string offset ${off} outside the table (${this.strtab.length})`);
    const end = this.strtab.indexOf(0, off);
    if (end < 0) throw new Error(`string at ${off} is not NUL-terminated`);
    return Buffer.from(this.strtab.subarray(off, end)).toString('utf8');
  }

  /** `count` strings stored back to back from `off`. */
  list(off: number, count: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const s = this.str(off);
      out.push(s);
      off += Buffer.byteLength(s, 'utf8') + 1;
    }
    return out;
  }

  /** `count` little-endian u32 in the string table from `off`. */
  u32s(off: number, count: number): number[] {
    const base = this.header.strtabOffset + off;
    return Array.from({ length: count }, (_, i) => this.view.getUint32(base + 4 * i, true));
  }
}
