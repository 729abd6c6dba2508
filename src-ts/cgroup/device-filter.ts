/**
 * The device allow-list on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program, generated here as
 * data (pure, unit-tested with an interpreter of its own) and loaded by the addon
 * (src-native/parent/devices_bpf.cc). Same semantics as the v1 files: deny by default, then the
 * rules in order, a later rule winning over an earlier one; the program checks them last first.
 */
import { ALWAYS_ALLOWED_DEVICES, type DeviceRule } from './resources.js';

/** struct bpf_cgroup_dev_ctx: access_type = (access << 16) | type, then major, minor. */
export const DEVCG = { DEV_BLOCK: 1, DEV_CHAR: 2, ACC_MKNOD: 1, ACC_READ: 2, ACC_WRITE: 4 } as const;

/** One struct bpf_insn. */
export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const LDX_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV64_X = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV64_K = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT = 0x95; // BPF_JMP | BPF_EXIT
export const OPCODES = { LDX_W, AND32_K, RSH32_K, MOV64_X, MOV64_K, JNE_K, EXIT } as const;

const insn = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });

export function accessBits(access: string): number {
  let a = 0;
  if (access.includes('m')) a |= DEVCG.ACC_MKNOD;
  if (access.includes('r')) a |= DEVCG.ACC_READ;
  if (access.includes('w')) a |= DEVCG.ACC_WRITE;
  return a;
}

/** One rule's block: every condition that fails jumps past it; all met: return allow. */
function ruleBlock(d: DeviceRule): Insn[] {
  const conds: Insn[][] = [];
  if (d.type === 'c' || d.type === 'b') conds.push([insn(JNE_K, 2, 0, 0, d.type === 'c' ? DEVCG.DEV_CHAR : DEVCG.DEV_BLOCK)]);
  const acc = accessBits(d.access ?? 'rwm');
  // Asked for an access the rule does not name: it does not apply.
  if (acc !== 7) conds.push([insn(MOV64_X, 1, 3), insn(AND32_K, 1, 0, 0, ~acc & 7), insn(JNE_K, 1, 0, 0, 0)]);
  if (d.major !== undefined && d.major !== -1) conds.push([insn(JNE_K, 4, 0, 0, d.major)]);
  if (d.minor !== undefined && d.minor !== -1) conds.push([insn(JNE_K, 5, 0, 0, d.minor)]);
  const block = [...conds.flat(), insn(MOV64_K, 0, 0, 0, d.allow ? 1 : 0), insn(EXIT)];
  // Each jump lands just past the block.
  return block.map((x, i) => (x.code === JNE_K ? { ...x, off: block.length - i - 1 } : x));
}

/** The program for `rules` (the user's, then the nodes scratchbox itself makes in /dev). */
export function deviceFilter(rules: readonly DeviceRule[]): Insn[] {
  const prologue = [
    insn(LDX_W, 2, 1, 0), // r2 = type
    insn(AND32_K, 2, 0, 0, 0xffff),
    insn(LDX_W, 3, 1, 0), // r3 = access
    insn(RSH32_K, 3, 0, 0, 16),
    insn(LDX_W, 4, 1, 4), // r4 = major
    insn(LDX_W, 5, 1, 8), // r5 = minor
  ];
  const out = [...prologue];
  for (const d of [...rules, ...ALWAYS_ALLOWED_DEVICES].reverse()) {
    const block = ruleBlock(d);
    out.push(...block);
    // A rule that matches everything decides: what would follow is unreachable (the verifier refuses it).
    if (block.length === 2) return out;
  }
  return [...out, insn(MOV64_K, 0, 0, 0, 0), insn(EXIT)];
}

/** struct bpf_insn[] as the kernel takes it (little-endian hosts; the addon is built for this one). */
export function encodeInsns(insns: readonly Insn[]): Uint8Array {
  const b = Buffer.alloc(insns.length * 8);
  insns.forEach((x, i) => {
    b.writeUInt8(x.code, i * 8);
    b.writeUInt8((x.dst & 0xf) | ((x.src & 0xf) << 4), i * 8 + 1);
    b.writeInt16LE(x.off, i * 8 + 2);
    b.writeInt32LE(x.imm | 0, i * 8 + 4);
  });
  return b;
}

/**
 * Runs a program on one device access, as the kernel would: the instructions above only. For
 * tests (the program's meaning is checked without loading it).
 */
export function runDeviceFilter(insns: readonly Insn[], type: 'c' | 'b', major: number, minor: number, access: string): boolean {
  const ctx = [((accessBits(access) << 16) | (type === 'c' ? DEVCG.DEV_CHAR : DEVCG.DEV_BLOCK)) >>> 0, major, minor];
  const r = new Array<number>(11).fill(0);
  for (let pc = 0; pc < insns.length; pc++) {
    const x = insns[pc]!;
    switch (x.code) {
      case LDX_W:
        r[x.dst] = ctx[x.off / 4]!;
        break;
      case AND32_K:
        r[x.dst] = (r[x.dst]! & x.imm) >>> 0;
        break;
      case RSH32_K:
        r[x.dst] = r[x.dst]! >>> x.imm;
        break;
      case MOV64_X:
        r[x.dst] = r[x.src]!;
        break;
      case MOV64_K:
        r[x.dst] = x.imm;
        break;
      case JNE_K:
        if (r[x.dst] !== x.imm >>> 0) pc += x.off;
        break;
      case EXIT:
        return r[0] === 1;
      default:
        throw new Error(`unknown opcode ${x.code}`);
    }
  }
  throw new Error('fell off the end of the program');
}
