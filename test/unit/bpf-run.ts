/**
 * A classic-BPF interpreter for seccomp filters (not a test file): runs a compiled filter on a
 * made-up struct seccomp_data, so that the branches for architectures this machine cannot run
 * (aarch64, arm, riscv64) are checked too. Only the instructions libseccomp and the ENOSYS
 * prefix emit; any other throws, so a new one cannot pass unnoticed.
 */
export interface SeccompData {
  nr: number;
  arch: number;
  args?: readonly bigint[];
}

const LD_W_ABS = 0x20, JA = 0x05, JEQ = 0x15, JGT = 0x25, JGE = 0x35, JSET = 0x45, AND = 0x54, RET = 0x06;

/** struct seccomp_data as the kernel lays it out, little-endian: nr, arch, ip, args[6]. */
function dataBytes(d: SeccompData): DataView {
  const v = new DataView(new ArrayBuffer(64));
  v.setInt32(0, d.nr, true);
  v.setUint32(4, d.arch, true);
  (d.args ?? []).forEach((a, i) => v.setBigUint64(16 + 8 * i, a, true));
  return v;
}

/** The 32-bit value the filter returns (SECCOMP_RET_*). */
export function runBpf(bpf: Uint8Array, d: SeccompData): number {
  const prog = new DataView(bpf.buffer, bpf.byteOffset, bpf.byteLength);
  const data = dataBytes(d);
  let a = 0;
  for (let pc = 0; pc * 8 < bpf.byteLength; pc++) {
    const o = pc * 8;
    const code = prog.getUint16(o, true), jt = prog.getUint8(o + 2), jf = prog.getUint8(o + 3), k = prog.getUint32(o + 4, true);
    const branch = (taken: boolean) => (pc += taken ? jt : jf);
    switch (code) {
      case LD_W_ABS: a = data.getUint32(k, true); break;
      case AND: a = (a & k) >>> 0; break;
      case JA: pc += k; break;
      case JEQ: branch(a === k); break;
      case JGT: branch(a > k); break;
      case JGE: branch(a >= k); break;
      case JSET: branch((a & k) !== 0); break;
      case RET: return k;
      default: throw new Error(`BPF instruction 0x${code.toString(16)} at ${pc} is not interpreted`);
    }
  }
  throw new Error('the filter ran off its end');
}
