/**
 * The constants of src-native/wire/wire.h and the op table of src-native/wire/ops.h (as the
 * compiled addon exports them) against their TypeScript halves in src-ts/plan/wire.ts,
 * src-ts/plan/ops.ts and src-ts/native/addon.ts.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { EV, STDIO } from '../../src-ts/native/addon.js';
import type { NativeOpRow } from '../../src-ts/native/addon.js';
import { OP_TABLE, stringMasks, type AnyOpShape } from '../../src-ts/plan/ops.js';
import { F, FD, H, HEADER_SIZE, MAX_SLOTS, MSG_SIZE, OP_SIZE, STAGES, WIRE_MAGIC, WIRE_VERSION } from '../../src-ts/plan/wire.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const addonPath = `${root}build/Release/scratchbox.node`;

let constants: Record<string, number>;
let opTable: readonly NativeOpRow[];

beforeAll(() => {
  let load: (dir: string) => { constants: Record<string, number>; opTable: readonly NativeOpRow[] };
  try {
    load = createRequire(import.meta.url)('node-gyp-build');
    ({ constants, opTable } = load(root));
  } catch (e) {
    throw new Error(
      `the native addon is not built (${addonPath} ${existsSync(addonPath) ? 'exists but failed to load' : 'is missing'}): ` +
        `run \`npm ci\` (or \`npm run build:native\`) first. Cause: ${(e as Error).message}`,
    );
  }
  if (!constants || typeof constants !== 'object') throw new Error(`the addon at ${root} exports no 'constants' object`);
});

/** What the addon must export, computed from the TypeScript side. */
function expected(): Record<string, number> {
  const want: Record<string, number> = {
    WIRE_MAGIC,
    WIRE_VERSION,
    HEADER_SIZE,
    OP_SIZE,
    MSG_SIZE,
    MAX_SLOTS,
  };
  STAGES.forEach((name, i) => {
    if (name !== 'none') want[`STAGE_${name.toUpperCase()}`] = i;
  });
  for (const [k, v] of Object.entries(F)) want[`F_${k}`] = v;
  for (const [k, v] of Object.entries(H)) want[`H_${k}`] = v;
  for (const [k, v] of Object.entries(FD)) want[`FD_${k}`] = v;
  for (const [k, v] of Object.entries(EV)) want[`EV_${k}`] = v;
  for (const [k, v] of Object.entries(STDIO)) want[`STDIO_${k}`] = v;
  return want;
}

describe('wire constants: addon vs TypeScript', () => {
  it('the addon exports exactly the expected set of names', () => {
    expect(Object.keys(constants).sort()).toEqual(Object.keys(expected()).sort());
  });

  it('every constant has the same value on both sides', () => {
    const want = expected();
    for (const [name, value] of Object.entries(constants)) expect(value, name).toBe(want[name]);
    expect(constants).toEqual(want);
  });

  it('sizes and magic', () => {
    expect(constants.HEADER_SIZE).toBe(72);
    expect(constants.OP_SIZE).toBe(48);
    expect(constants.MSG_SIZE).toBe(16);
    expect(constants.WIRE_MAGIC).toBe(0x31584253);
    expect(Buffer.from(Uint32Array.of(constants.WIRE_MAGIC!).buffer).toString('latin1')).toBe('SBX1');
  });

  it('stages 1..13 in STAGES order', () => {
    const stages = Object.entries(constants)
      .filter(([k]) => k.startsWith('STAGE_'))
      .sort(([, a], [, b]) => a - b)
      .map(([k]) => k.slice(6).toLowerCase());
    expect(['none', ...stages]).toEqual([...STAGES]);
  });
});

describe('the op table: src-native/wire/ops.h vs src-ts/plan/ops.ts', () => {
  const ts = Object.entries(OP_TABLE as Record<string, AnyOpShape>);

  it('the same kinds, by name, with the same codes, in ascending order (gaps allowed: a code is never reused)', () => {
    const native = opTable.map((r) => [r.name, r.code]);
    expect(ts.map(([name, shape]) => [name, shape.code])).toEqual(native);
    const codes = native.map(([, code]) => code as number);
    expect(codes[0]).toBe(1);
    for (let i = 1; i < codes.length; i++) expect(codes[i]!, `code after ${codes[i - 1]}`).toBeGreaterThan(codes[i - 1]!);
    expect(codes.at(-1)!).toBeLessThan(256);
  });

  it('each kind reports the same default stage', () => {
    for (const row of opTable) expect(STAGES[row.stage], row.name).toBe(OP_TABLE[row.name as keyof typeof OP_TABLE].stage);
  });

  it('each kind carries the same required and optional strings (what the parent checks)', () => {
    for (const row of opTable) {
      const shape = OP_TABLE[row.name as keyof typeof OP_TABLE] as AnyOpShape;
      expect(stringMasks(shape), row.name).toEqual({ required: row.required, optional: row.optional });
    }
  });

  it('the TypeScript half uses at most four string and four number slots, and known flag bits', () => {
    const bits = new Set<number>(Object.values(F));
    for (const [name, shape] of ts) {
      expect((shape.s ?? []).length, name).toBeLessThanOrEqual(4);
      expect((shape.n ?? []).length, name).toBeLessThanOrEqual(4);
      for (const bit of Object.values(shape.flags ?? {})) expect(bits.has(bit), `${name} flag ${bit}`).toBe(true);
    }
  });
});
