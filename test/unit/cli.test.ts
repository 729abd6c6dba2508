import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useColor } from '../../src-ts/cli/demo.js';
import { COMMANDS, main } from '../../src-ts/cli/main.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string; bin: { scratchbox: string } };
const bin = new URL(`../../${pkg.bin.scratchbox}`, import.meta.url).pathname;

/** Runs main() with stdout and stderr captured. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await main(argv), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('scratchbox (cli/main.ts)', () => {
  it.each([['--help'], ['-h'], ['help'], []])('%s prints the usage on stdout, exit 0', async (...argv) => {
    const r = await cli(...(argv as string[]));
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/^usage: scratchbox /);
    for (const name of Object.keys(COMMANDS)) expect(r.out).toContain(`  ${name} `);
  });

  it.each([['--version'], ['-V']])("%s prints package.json's version", async (flag) => {
    expect(await cli(flag)).toEqual({ code: 0, out: `${pkg.version}\n`, err: '' });
  });

  it('an unknown option or command: what was wrong, and the usage, on stderr; exit 2', async () => {
    const o = await cli('--bogus');
    expect(o).toMatchObject({ code: 2, out: '' });
    expect(o.err).toMatch(/^scratchbox: unknown option '--bogus'\n\nusage: scratchbox /);
    const c = await cli('frobnicate');
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/^scratchbox: unknown command 'frobnicate'/);
    expect((await cli('constructor')).code).toBe(2); // not a command, though every object has it
  });

  it("demo's own options: --help (exit 0), anything else is a usage error (exit 2)", async () => {
    const h = await cli('demo', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/^usage: scratchbox demo/);
    const bad = await cli('demo', '--fast');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("'--fast'");
    expect(bad.err).toContain('usage: scratchbox demo');
  });

  it('the installed command (dist/cli.js): --help, --version, and no stack trace for an unknown option', async () => {
    const run = promisify(execFile);
    expect((await run(process.execPath, [bin, '--help'])).stdout).toMatch(/^usage: scratchbox /);
    expect((await run(process.execPath, [bin, '-V'])).stdout).toBe(`${pkg.version}\n`);
    const e = await run(process.execPath, [bin, '--bogus']).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(e?.code).toBe(2);
    expect(e?.stderr).toMatch(/^scratchbox: unknown option '--bogus'/);
    expect(e?.stderr).not.toMatch(/ERR_PARSE_ARGS|\n\s+at /);
  });
});

describe('the demo colours only a terminal', () => {
  it('colour for a TTY; none for a pipe or a file; none with NO_COLOR set (to anything but empty)', () => {
    expect(useColor({ isTTY: true }, {})).toBe(true);
    expect(useColor({ isTTY: false }, {})).toBe(false);
    expect(useColor({}, {})).toBe(false);
    expect(useColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(useColor({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
  });
});
