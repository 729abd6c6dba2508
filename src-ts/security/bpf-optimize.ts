/**
 * Rewrites libseccomp's program into an equivalent, smaller one: the kernel's cost to load a
 * filter (checking it, converting it to eBPF, JIT-compiling it, and emulating it once per syscall
 * number to fill its allow-cache) grows with the instruction count, and every container pays it.
 *
 * libseccomp 2.5 compares the syscall number with one constant per named syscall, so an allow-list
 * of 300 names is ~400 instructions even as a binary tree. But the outcome is piecewise constant
 * over the numbers: the default profile has ~70 runs of "allow", "EPERM", "ENOSYS" or "look at the
 * arguments". This pass finds those runs by evaluating the program, and emits a binary search over
 * them whose leaves jump to shared return instructions (and to the argument checks, which are kept
 * as libseccomp wrote them, with every test of the number or architecture on their path folded).
 *
 * How it stays exact: the program only compares the number and the architecture with constants
 * (checked: anything else, such as arithmetic on them, the X register or scratch memory, makes the
 * pass give the program back unchanged). Between two consecutive constants (K, K+1 for = and >; K
 * for >=) every comparison has the same outcome, so evaluating one number per interval covers all
 * of them. Arguments and the instruction pointer stay unknown; the instructions that read them are
 * kept. The result is still only comparisons with constants and returns, which is what the
 * kernel's allow-cache can evaluate (seccomp_cache_prepare). `checkEquivalent` compares the two
 * programs on every interval and on sampled arguments; compile() runs it and keeps libseccomp's
 * program if it ever disagrees.
 */

const BPF_LD_W_ABS = 0x20;
const BPF_RET_K = 0x06;
const BPF_JA = 0x05;
const JMP_K = new Set([0x15, 0x25, 0x35, 0x45]); // JEQ, JGT, JGE, JSET with K
const JEQ = 0x15;
const JGT = 0x25;
const JGE = 0x35;
/** ALU with K on the accumulator: ADD SUB MUL DIV OR AND LSH RSH MOD XOR (NEG is 0x84). */
const ALU_K = new Set([0x04, 0x14, 0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0x94, 0xa4, 0x84]);
const OFF_NR = 0;
const OFF_ARCH = 4;
/** sizeof(struct seccomp_data): nr, arch, instruction_pointer, args[6]. */
const DATA_SIZE = 64;
const MAX_INSNS = 4096;

export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export function decode(bpf: Uint8Array): Insn[] {
  const dv = new DataView(bpf.buffer, bpf.byteOffset, bpf.byteLength);
  const out: Insn[] = [];
  for (let i = 0; i + 8 <= bpf.byteLength; i += 8) out.push({ code: dv.getUint16(i, true), jt: dv.getUint8(i + 2), jf: dv.getUint8(i + 3), k: dv.getUint32(i + 4, true) });
  return out;
}

export function encode(prog: readonly Insn[]): Uint8Array {
  const out = new Uint8Array(prog.length * 8);
  const dv = new DataView(out.buffer);
  prog.forEach((x, i) => {
    dv.setUint16(i * 8, x.code, true);
    dv.setUint8(i * 8 + 2, x.jt);
    dv.setUint8(i * 8 + 3, x.jf);
    dv.setUint32(i * 8 + 4, x.k, true);
  });
  return out;
}

function alu(code: number, a: number, k: number): number | undefined {
  switch (code) {
    case 0x04: return (a + k) >>> 0;
    case 0x14: return (a - k) >>> 0;
    case 0x24: return Math.imul(a, k) >>> 0;
    case 0x34: return k === 0 ? undefined : Math.floor(a / k) >>> 0;
    case 0x44: return (a | k) >>> 0;
    case 0x54: return (a & k) >>> 0;
    case 0x64: return k >= 32 ? 0 : (a << k) >>> 0;
    case 0x74: return k >= 32 ? 0 : a >>> k;
    case 0x94: return k === 0 ? undefined : (a % k) >>> 0;
    case 0xa4: return (a ^ k) >>> 0;
    case 0x84: return -a >>> 0;
  }
  return undefined;
}

function test(code: number, a: number, k: number): boolean {
  switch (code) {
    case JEQ: return a === k;
    case JGT: return a > k;
    case JGE: return a >= k;
    default: return (a & k) !== 0; // JSET
  }
}

/** Set by run(): whether the last run read an argument or the instruction pointer. */
let readOther = false;

/** The program's result for one input: an interpreter for the check, of programs analyse() accepted (it reads every jump and ALU as its K form). */
export function run(prog: readonly Insn[], data: Uint32Array): number {
  let a = 0;
  readOther = false;
  for (let pc = 0, steps = 0; pc < prog.length && steps <= prog.length; steps++) {
    const x = prog[pc]!;
    const code = x.code;
    if (code === BPF_LD_W_ABS) {
      if (x.k > OFF_ARCH) readOther = true;
      a = data[x.k >>> 2]!;
      pc++;
    } else if (code === BPF_RET_K) return x.k;
    else if (code === BPF_JA) pc += 1 + x.k;
    else if ((code & 0x07) === 0x05) pc += 1 + (test(code, a, x.k) ? x.jt : x.jf);
    else if ((code & 0x07) === 0x04) {
      const r = alu(code, a, x.k);
      if (r === undefined) throw new Error(`bpf: ALU 0x${code.toString(16)} not interpreted`);
      a = r;
      pc++;
    } else throw new Error(`bpf: instruction 0x${code.toString(16)} not interpreted`);
  }
  throw new Error('bpf: fell off the end');
}

/** What the accumulator holds at an instruction, as far as the pass can tell. */
type Content = 'nr' | 'arch' | 'other';

/**
 * Checks the program is of the subset this pass reasons about (forward jumps in range, aligned
 * loads of seccomp_data, returns, compares and ALU with constants), and collects, per field, the
 * constants it is compared with. undefined: not of the subset.
 */
function analyse(prog: readonly Insn[]): { nr: Set<number>; arch: Set<number> } | undefined {
  const held: Set<Content>[] = prog.map(() => new Set());
  const consts = { nr: new Set<number>(), arch: new Set<number>() };
  held[0]?.add('other');
  const flow = (to: number, what: Iterable<Content>): boolean => {
    if (to >= prog.length) return false;
    for (const c of what) held[to]!.add(c);
    return true;
  };
  for (let pc = 0; pc < prog.length; pc++) {
    const x = prog[pc]!;
    const here = held[pc]!;
    if (here.size === 0) continue; // unreachable
    if (x.code === BPF_LD_W_ABS) {
      if (x.k % 4 !== 0 || x.k >= DATA_SIZE) return undefined;
      if (!flow(pc + 1, [x.k === OFF_NR ? 'nr' : x.k === OFF_ARCH ? 'arch' : 'other'])) return undefined;
    } else if (x.code === BPF_RET_K) {
      continue;
    } else if (x.code === BPF_JA) {
      if (!flow(pc + 1 + x.k, here)) return undefined;
    } else if (JMP_K.has(x.code)) {
      for (const c of here) {
        if (c === 'other') continue;
        if (x.code === 0x45) return undefined; // a bit test of the number or arch: not modelled
        const set = consts[c];
        set.add(x.k);
        if (x.code !== JGE && x.k < 0xffffffff) set.add(x.k + 1);
      }
      if (!flow(pc + 1 + x.jt, here) || !flow(pc + 1 + x.jf, here)) return undefined;
    } else if (ALU_K.has(x.code)) {
      if (here.has('nr') || here.has('arch')) return undefined; // arithmetic on them: not modelled
      if ((x.code === 0x34 || x.code === 0x94) && x.k === 0) return undefined;
      if (!flow(pc + 1, ['other'])) return undefined;
    } else {
      return undefined;
    }
  }
  return consts;
}

/** Sorted starts of the intervals over which the field's comparisons do not change. */
function starts(consts: Set<number>): number[] {
  return [...new Set([0, ...consts])].sort((x, y) => x - y);
}

/** The residual program as a hash-consed DAG: every node a string key, children by id. */
type Node =
  | { op: 'ret'; k: number }
  | { op: 'ld'; k: number; next: number }
  | { op: 'alu'; code: number; k: number; next: number }
  | { op: 'jmp'; code: number; k: number; t: number; f: number };

class Dag {
  readonly nodes: Node[] = [];
  readonly #ids = new Map<string, number>();
  add(n: Node): number {
    const key = JSON.stringify(n);
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.nodes.length;
      this.nodes.push(n);
      this.#ids.set(key, id);
    }
    return id;
  }
}

/**
 * The program specialised to one architecture and number: tests of those folded, what reads the
 * rest kept. Returns the DAG node it starts at.
 */
function specialise(prog: readonly Insn[], dag: Dag, arch: number, nr: number): number {
  const memo = new Map<string, number>();
  const go = (pc: number, a: number | null): number => {
    const key = `${pc}/${a}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let id: number;
    const x = prog[pc]!;
    if (x.code === BPF_LD_W_ABS) {
      if (x.k === OFF_NR) id = go(pc + 1, nr);
      else if (x.k === OFF_ARCH) id = go(pc + 1, arch);
      else id = dag.add({ op: 'ld', k: x.k, next: go(pc + 1, null) });
    } else if (x.code === BPF_RET_K) {
      id = dag.add({ op: 'ret', k: x.k });
    } else if (x.code === BPF_JA) {
      id = go(pc + 1 + x.k, a);
    } else if (JMP_K.has(x.code)) {
      if (a !== null) id = go(pc + 1 + (test(x.code, a, x.k) ? x.jt : x.jf), a);
      else {
        const t = go(pc + 1 + x.jt, null);
        const f = go(pc + 1 + x.jf, null);
        id = t === f ? t : dag.add({ op: 'jmp', code: x.code, k: x.k, t, f });
      }
    } else {
      // ALU (analyse() allowed it only on what is neither the number nor the arch)
      id = a !== null ? go(pc + 1, alu(x.code, a, x.k)!) : dag.add({ op: 'alu', code: x.code, k: x.k, next: go(pc + 1, null) });
    }
    memo.set(key, id);
    return id;
  };
  return go(0, null);
}

/** An interval tree over one field: the starts of runs, and what each run leads to. */
interface Runs {
  field: number; // OFF_NR or OFF_ARCH
  starts: number[];
  targets: Target[];
}
type Target = { dag: number } | { runs: Runs };

function runsOf(field: number, points: number[], targetAt: (v: number, i: number) => Target, same: (x: Target, y: Target) => boolean): Runs {
  const r: Runs = { field, starts: [], targets: [] };
  for (const [i, p] of points.entries()) {
    const t = targetAt(p, i);
    if (r.targets.length > 0 && same(r.targets.at(-1)!, t)) continue;
    r.starts.push(p);
    r.targets.push(t);
  }
  return r;
}

// An assembler with labels: conditional jumps reach 255 instructions, farther ones go through a
// JA placed right after them (added until the layout settles).
type Item =
  | { kind: 'label'; id: number }
  | { kind: 'insn'; code: number; k: number; jt?: number; jf?: number; ja?: number };

function assemble(items: Item[]): Insn[] | undefined {
  const far = new Set<number>(); // index*2 (+1 for jf) of jumps needing a trampoline
  for (let round = 0; round < 64; round++) {
    const pos = new Map<number, number>();
    let n = 0;
    items.forEach((it, i) => {
      if (it.kind === 'label') pos.set(it.id, n);
      else n += 1 + (far.has(i * 2) ? 1 : 0) + (far.has(i * 2 + 1) ? 1 : 0);
    });
    if (n > MAX_INSNS) return undefined;
    const out: Insn[] = [];
    let grew = false;
    items.forEach((it, i) => {
      if (it.kind === 'label') return;
      const at = out.length;
      if (it.ja !== undefined) {
        out.push({ code: BPF_JA, jt: 0, jf: 0, k: pos.get(it.ja)! - at - 1 });
        return;
      }
      if (it.jt === undefined) {
        out.push({ code: it.code, jt: 0, jf: 0, k: it.k });
        return;
      }
      const tFar = far.has(i * 2);
      const fFar = far.has(i * 2 + 1);
      const next = at + 1 + (tFar ? 1 : 0) + (fFar ? 1 : 0);
      const tAt = pos.get(it.jt)!;
      const fAt = pos.get(it.jf!)!;
      const jt = tFar ? 0 : tAt - at - 1;
      const jf = fFar ? (tFar ? 1 : 0) : fAt - at - 1;
      if (!tFar && jt > 255) (far.add(i * 2), (grew = true));
      if (!fFar && jf > 255) (far.add(i * 2 + 1), (grew = true));
      out.push({ code: it.code, jt: Math.min(jt, 255), jf: Math.min(jf, 255), k: it.k });
      if (tFar) out.push({ code: BPF_JA, jt: 0, jf: 0, k: tAt - (out.length) - 1 });
      if (fFar) out.push({ code: BPF_JA, jt: 0, jf: 0, k: fAt - (out.length) - 1 });
      if (out.length !== next) throw new Error('bpf assembler: layout');
    });
    if (!grew) return out;
  }
  return undefined;
}

/** The smaller equivalent program, or undefined when the pass does not apply or gains nothing. */
export function optimize(prog: readonly Insn[]): Insn[] | undefined {
  const out = rewrite(prog);
  return out && out.length < prog.length ? out : undefined;
}

/** The program rewritten (whatever its size), or undefined when the pass does not apply. */
export function rewrite(prog: readonly Insn[]): Insn[] | undefined {
  const consts = analyse(prog);
  if (!consts) return undefined;
  const dag = new Dag();
  const nrPoints = starts(consts.nr);
  const archPoints = starts(consts.arch);
  if (nrPoints.length * archPoints.length > 200_000) return undefined;
  const sameDag = (x: Target, y: Target) => 'dag' in x && 'dag' in y && x.dag === y.dag;
  const treeKey = (r: Runs) => `${r.starts.join(',')}|${r.targets.map((t) => ('dag' in t ? t.dag : '?')).join(',')}`;
  const byArch = archPoints.map((a) => runsOf(OFF_NR, nrPoints, (n) => ({ dag: specialise(prog, dag, a, n) }), sameDag));
  const sameRuns = (x: Target, y: Target) => 'runs' in x && 'runs' in y && treeKey(x.runs) === treeKey(y.runs);
  const top = runsOf(OFF_ARCH, archPoints, (_, i) => ({ runs: byArch[i]! }), sameRuns);

  let labels = 0;
  const items: Item[] = [];
  const dagLabel = new Map<number, number>();
  const labelOfDag = (id: number) => {
    let l = dagLabel.get(id);
    if (l === undefined) dagLabel.set(id, (l = labels++));
    return l;
  };
  // A tree: LD of its field, then a balanced search over the runs' starts; a run's target is a
  // label (a DAG node, or a nested tree emitted after this one).
  const pending: { label: number; runs: Runs }[] = [];
  const targetLabel = (t: Target): number => {
    if ('dag' in t) return labelOfDag(t.dag);
    if (t.runs.targets.length === 1) return targetLabel(t.runs.targets[0]!);
    const label = labels++;
    pending.push({ label, runs: t.runs });
    return label;
  };
  const emitTree = (runs: Runs, label: number) => {
    items.push({ kind: 'label', id: label });
    items.push({ kind: 'insn', code: BPF_LD_W_ABS, k: runs.field });
    const node = (lo: number, hi: number, here?: number): void => {
      // runs [lo, hi), at least two; `here` the label this node starts at
      if (here !== undefined) items.push({ kind: 'label', id: here });
      const mid = (lo + hi) >> 1;
      const side = (a: number, b: number) => {
        if (b - a === 1) return { label: targetLabel(runs.targets[a]!), a, b, leaf: true };
        return { label: labels++, a, b, leaf: false };
      };
      const left = side(lo, mid);
      const right = side(mid, hi);
      items.push({ kind: 'insn', code: JGE, k: runs.starts[mid]!, jt: right.label, jf: left.label });
      if (!left.leaf) node(left.a, left.b, left.label);
      if (!right.leaf) node(right.a, right.b, right.label);
    };
    if (runs.targets.length === 1) items.push({ kind: 'insn', code: BPF_JA, k: 0, ja: targetLabel(runs.targets[0]!) });
    else node(0, runs.targets.length);
  };
  const entry = labels++;
  if (top.targets.length === 1) {
    const only = top.targets[0]!;
    if ('runs' in only && only.runs.targets.length > 1) emitTree(only.runs, entry);
    else items.push({ kind: 'label', id: entry }, { kind: 'insn', code: BPF_JA, k: 0, ja: targetLabel(only) });
  } else {
    emitTree(top, entry);
  }
  while (pending.length > 0) {
    const p = pending.shift()!;
    emitTree(p.runs, p.label);
  }
  // The DAG, parents before children (reverse post-order from the nodes the trees reach).
  const order: number[] = [];
  const seen = new Set<number>();
  const visit = (id: number) => {
    if (seen.has(id)) return;
    seen.add(id);
    const n = dag.nodes[id]!;
    if (n.op === 'jmp') (visit(n.f), visit(n.t));
    else if (n.op !== 'ret') visit(n.next);
    order.push(id);
  };
  for (const id of [...dagLabel.keys()]) visit(id);
  order.reverse();
  for (const id of order) {
    const n = dag.nodes[id]!;
    items.push({ kind: 'label', id: labelOfDag(id) });
    if (n.op === 'ret') items.push({ kind: 'insn', code: BPF_RET_K, k: n.k });
    else if (n.op === 'jmp') items.push({ kind: 'insn', code: n.code, k: n.k, jt: labelOfDag(n.t), jf: labelOfDag(n.f) });
    else {
      items.push({ kind: 'insn', code: n.op === 'ld' ? BPF_LD_W_ABS : n.code, k: n.k });
      items.push({ kind: 'insn', code: BPF_JA, k: 0, ja: labelOfDag(n.next) });
    }
  }
  const out = assemble(items);
  if (!out) return undefined;
  return dropJumpsToNext(out);
}

/** Removes `JA +0` (the layout often puts a node's successor right after it). */
function dropJumpsToNext(prog: Insn[]): Insn[] {
  const keep = prog.map((x) => !(x.code === BPF_JA && x.k === 0));
  const newIndex: number[] = [];
  let n = 0;
  for (let i = 0; i <= prog.length; i++) {
    newIndex.push(n);
    if (i < prog.length && keep[i]) n++;
  }
  const out: Insn[] = [];
  prog.forEach((x, i) => {
    if (!keep[i]) return;
    const at = newIndex[i]!;
    const to = (off: number) => newIndex[i + 1 + off]! - at - 1;
    if (x.code === BPF_JA) out.push({ ...x, k: to(x.k) });
    else if (JMP_K.has(x.code)) out.push({ ...x, jt: to(x.jt), jf: to(x.jf) });
    else out.push(x);
  });
  // Removing instructions only shortens jumps: every offset still fits.
  return out;
}

/**
 * Compares two programs: every interval of the number and architecture (with zero arguments), and
 * for each, `samples` argument vectors drawn from the constants the programs use (and their
 * neighbours). A deterministic generator: the same inputs every run.
 */
export function checkEquivalent(a: readonly Insn[], b: readonly Insn[], samples = 64): boolean {
  const ka = analyse(a);
  const kb = analyse(b);
  if (!ka || !kb) return false;
  const nrs = starts(new Set([...ka.nr, ...kb.nr]));
  const arches = starts(new Set([...ka.arch, ...kb.arch]));
  const pool = new Set<number>([0, 1, 0xffffffff, 0x7fffffff, 0x80000000]);
  for (const p of [a, b])
    for (const x of p)
      if (JMP_K.has(x.code) || ALU_K.has(x.code)) for (const v of [x.k, (x.k + 1) >>> 0, (x.k - 1) >>> 0]) pool.add(v);
  const values = [...pool];
  let seed = 0x9e3779b9;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % values.length;
  };
  const data = new Uint32Array(DATA_SIZE / 4);
  for (const arch of arches)
    for (const nr of nrs) {
      data.fill(0);
      data[0] = nr;
      data[1] = arch;
      if (run(a, data) !== run(b, data)) return false;
      // An outcome that depends on the arguments: sampled (both programs, either may read them).
      let depends = readOther;
      run(a, data);
      depends ||= readOther;
      for (let s = 0; depends && s < samples; s++) {
        for (let w = 2; w < data.length; w++) data[w] = values[rand()]!;
        if (run(a, data) !== run(b, data)) return false;
      }
    }
  return true;
}

/** libseccomp's program, made smaller when that is provably the same filter; else as it was. */
export function optimizeFilter(bpf: Uint8Array): Uint8Array {
  const prog = decode(bpf);
  let better: Insn[] | undefined;
  try {
    better = optimize(prog);
  } catch {
    return bpf;
  }
  if (!better || !checkEquivalent(prog, better)) return bpf;
  return encode(better);
}
