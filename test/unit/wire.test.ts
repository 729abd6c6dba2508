/**
 * The constants of src-native/wire.h (as the compiled addon exports them) against their
 * TypeScript copies in src-ts/plan/wire.ts and src-ts/native/addon.ts.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { EV, STDIO } from '../../src-ts/native/addon.js';
import { F, H, HEADER_SIZE, MAX_SLOTS, MSG_SIZE, OP, OP_SIZE, STAGES, WIRE_MAGIC, WIRE_VERSION } from '../../src-ts/plan/wire.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const addonPath = `${root}build/Release/scratchbox.node`;

let constants: Record<string, number>;

beforeAll(() => {
  let load: (dir: string) => { constants: Record<string, number> };
  try {
    load = createRequire(import.meta.url)('node-gyp-build');
    constants = load(root).constants;
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
  for (const [k, v] of Object.entries(OP)) want[`OP_${k}`] = v;
  STAGES.forEach((name, i) => {
    if (name !== 'none') want[`STAGE_${name.toUpperCase()}`] = i;
  });
  for (const [k, v] of Object.entries(F)) want[`F_${k}`] = v;
  for (const [k, v] of Object.entries(H)) want[`H_${k}`] = v;
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

  it('op kinds are 1..n with no gaps; stages 1..12 in STAGES order', () => {
    const ops = Object.entries(constants).filter(([k]) => k.startsWith('OP_') && k !== 'OP_SIZE').map(([, v]) => v).sort((a, b) => a - b);
    expect(ops.length).toBeGreaterThanOrEqual(17);
    expect(ops).toEqual(Array.from({ length: ops.length }, (_, i) => i + 1));
    expect(ops).toEqual(Object.values(OP).sort((a, b) => a - b));
    const stages = Object.entries(constants)
      .filter(([k]) => k.startsWith('STAGE_'))
      .sort(([, a], [, b]) => a - b)
      .map(([k]) => k.slice(6).toLowerCase());
    expect(['none', ...stages]).toEqual([...STAGES]);
  });
});
